// Boost.Beast HTTP on the configured address: /healthz (the process is up), /readyz (the XMPP
// stream is authenticated and the database answers), /metrics (Prometheus text).
// Every connection has a read deadline and a request size limit; at most `max_connections`
// are served at once (more are closed on accept), and an accept that fails (EMFILE: out of
// file descriptors) backs off instead of spinning.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <string>

#include "server/metrics.hpp"

namespace multiend::server {

namespace asio = boost::asio;

class HealthServer {
 public:
  HealthServer(asio::any_io_executor ex, const std::string& address, Metrics& metrics, std::function<bool()> ready,
               std::size_t max_connections = 64);
  asio::awaitable<void> run();
  void stop();
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  asio::awaitable<void> serve(asio::ip::tcp::socket socket);

  asio::ip::tcp::acceptor acceptor_;
  Metrics& metrics_;
  std::function<bool()> ready_;
  std::size_t max_connections_;
  std::size_t connections_ = 0;
};

}  // namespace multiend::server
