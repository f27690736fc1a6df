#include "server/http/health_server.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <stdexcept>

#include "server/http/address.hpp"

namespace multiend::server {

namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// The configuration was validated with the same parser; this only guards other callers.
asio::ip::tcp::endpoint endpoint_of(const std::string& address) {
  auto r = parse_http_address(address);
  if (!r) throw std::invalid_argument("http_address " + r.error());
  return *r;
}

}  // namespace

HealthServer::HealthServer(asio::any_io_executor ex, const std::string& address, Metrics& metrics,
                           std::function<bool()> ready, std::size_t max_connections)
    : acceptor_(ex, endpoint_of(address)),
      metrics_(metrics),
      ready_(std::move(ready)),
      max_connections_(max_connections) {}

void HealthServer::stop() {
  boost::system::error_code ec;
  acceptor_.close(ec);
}

asio::awaitable<void> HealthServer::run() {
  for (;;) {
    boost::system::error_code ec;
    auto socket = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (!acceptor_.is_open()) co_return;
      // EMFILE/ENFILE/ENOBUFS leave the connection in the backlog: accepting again at once
      // would spin on the same error. Give other work (closing sockets) a moment.
      metrics_.error("http-accept-failed");
      asio::steady_timer t(acceptor_.get_executor(), std::chrono::milliseconds(100));
      boost::system::error_code wait_ec;
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, wait_ec));
      continue;
    }
    if (connections_ >= max_connections_) {
      metrics_.limit("max_http_connections");
      boost::system::error_code close_ec;
      socket.close(close_ec);
      continue;
    }
    ++connections_;
    asio::co_spawn(acceptor_.get_executor(), serve(std::move(socket)), [this](std::exception_ptr) { --connections_; });
  }
}

asio::awaitable<void> HealthServer::serve(asio::ip::tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer(8192);
  try {
    for (int requests = 0; requests < 100; ++requests) {
      stream.expires_after(std::chrono::seconds(10));
      http::request_parser<http::empty_body> parser;
      parser.header_limit(8192);
      co_await http::async_read(stream, buffer, parser, asio::use_awaitable);
      const auto& req = parser.get();
      http::response<http::string_body> res;
      res.version(req.version());
      res.keep_alive(req.keep_alive());
      res.set(http::field::server, "multiend-component");
      res.set(http::field::content_type, "text/plain; charset=utf-8");
      const std::string target(req.target());
      if (req.method() != http::verb::get && req.method() != http::verb::head) {
        res.result(http::status::method_not_allowed);
        res.body() = "GET only\n";
      } else if (target == "/healthz") {
        res.result(http::status::ok);
        res.body() = "ok\n";
      } else if (target == "/readyz") {
        const bool ok = ready_();
        res.result(ok ? http::status::ok : http::status::service_unavailable);
        res.body() = ok ? "ready\n" : "not ready\n";
      } else if (target == "/metrics") {
        res.result(http::status::ok);
        res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        metrics_.ready.Set(ready_() ? 1 : 0);
        res.body() = metrics_.render();
      } else {
        res.result(http::status::not_found);
        res.body() = "not found\n";
      }
      res.prepare_payload();
      stream.expires_after(std::chrono::seconds(10));
      co_await http::async_write(stream, res, asio::use_awaitable);
      if (!res.keep_alive()) break;
    }
  } catch (const std::exception&) {
    // A client that went away or timed out: nothing to do.
  }
  beast::error_code ec;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
}

}  // namespace multiend::server
