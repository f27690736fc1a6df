#include "server/xmpp/component_stream.hpp"

#include <spdlog/spdlog.h>

#include <sodium.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <algorithm>
#include <chrono>

#include "protocol/crypto/sha1_hex.hpp"
#include "protocol/xml/serializer.hpp"
#include "protocol/xml/stream_parser.hpp"
#include "protocol/xmpp/namespaces.hpp"
#include "protocol/xmpp/stanza.hpp"
#include "protocol/xmpp/stream_error.hpp"

namespace multiend::server {

using namespace asio::experimental::awaitable_operators;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

constexpr std::size_t kReadChunk = 16 * 1024;

asio::awaitable<void> sleep_for(std::chrono::steady_clock::duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

// Races `op` against a timer; the loser is cancelled. `op` must report failure through `ec`
// (redirect_error), not by throwing: Asio's `||` waits for the first *success*, so a throwing
// operation would leave the race to the timer and a failed read would look like a timeout.
template <typename T>
asio::awaitable<T> timed(asio::awaitable<T> op, const boost::system::error_code& ec,
                         std::chrono::steady_clock::duration d, const char* what) {
  auto r = co_await (std::move(op) || sleep_for(d));
  if (r.index() == 1) throw std::runtime_error(std::string("timeout: ") + what);
  if (ec) throw boost::system::system_error(ec, what);
  co_return std::get<0>(std::move(r));
}

}  // namespace

ComponentStream::ComponentStream(asio::io_context& ioc, const Config& config, Metrics& metrics)
    : ioc_(ioc), config_(config), metrics_(metrics), socket_(ioc), write_signal_(ioc), drained_(ioc) {
  write_signal_.expires_at(std::chrono::steady_clock::time_point::max());
}

bool ComponentStream::writable() const noexcept {
  if (!authenticated_) return false;
  const auto stall = seconds(std::max<std::int64_t>(1, config_.request_timeout_seconds / 3));
  return !write_started_ || std::chrono::steady_clock::now() - *write_started_ < stall;
}

void ComponentStream::enqueue(std::string bytes) {
  out_bytes_ += bytes.size();
  out_.push_back(std::move(bytes));
  write_signal_.cancel();
}

void ComponentStream::stop() {
  stopping_ = true;
  if (authenticated_ && socket_.is_open()) {
    // Close the stream politely after what is queued; the writer closes the socket.
    enqueue("</stream:stream>");
  } else {
    asio::post(ioc_, [this] { close_socket(); });
  }
}

void ComponentStream::close_socket() {
  boost::system::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  write_signal_.cancel();
}

std::optional<ComponentStream::Ticket> ComponentStream::send(const xml::Element& stanza, const char* kind) {
  if (!authenticated_ || stopping_ || closing_) {
    metrics_.error("stream-down-dropped");
    return std::nullopt;
  }
  std::string s;
  xml::serialize_to(stanza, s, xmpp::kComponentNs);
  if (s.size() > config_.max_output_stanza_bytes) {
    // The XMPP server would close our stream for it (Prosody: not-well-formed), cutting off
    // every user: never write it. An iq answer becomes an error the requester can act on.
    metrics_.limit("max_output_stanza_bytes");
    spdlog::error("component stream: a {} stanza of {} bytes exceeds max_output_stanza_bytes ({}); not sent", kind,
                  s.size(), config_.max_output_stanza_bytes);
    if (stanza.name() != "iq" || stanza.attr("type") != "result") return std::nullopt;
    xml::Element request("iq", stanza.ns());
    request.set_attr("type", "get");
    if (auto v = stanza.attr("to")) request.set_attr("from", std::string(*v));
    if (auto v = stanza.attr("from")) request.set_attr("to", std::string(*v));
    if (auto v = stanza.attr("id")) request.set_attr("id", std::string(*v));
    s.clear();
    xml::serialize_to(xmpp::make_error_reply(request, {xmpp::ErrorType::wait, "resource-constraint",
                                                       "the answer exceeds max_output_stanza_bytes (" +
                                                           std::to_string(config_.max_output_stanza_bytes) + " bytes)",
                                                       std::nullopt}),
                      s, xmpp::kComponentNs);
    kind = "error";
  }
  return queue(std::move(s), kind);
}

std::optional<ComponentStream::Ticket> ComponentStream::send_serialized(std::string bytes, const char* kind) {
  if (!authenticated_ || stopping_ || closing_) {
    metrics_.error("stream-down-dropped");
    return std::nullopt;
  }
  if (bytes.size() > config_.max_output_stanza_bytes) {
    metrics_.limit("max_output_stanza_bytes");
    spdlog::error("component stream: a {} stanza of {} bytes exceeds max_output_stanza_bytes ({}); not sent", kind,
                  bytes.size(), config_.max_output_stanza_bytes);
    return std::nullopt;
  }
  return queue(std::move(bytes), kind);
}

ComponentStream::Ticket ComponentStream::queue(std::string bytes, const char* kind) {
  enqueue(std::move(bytes));
  metrics_.stanza_out(kind);
  const Ticket ticket{generation_, ++queued_};
  if (out_bytes_ > 2 * config_.output_buffer_bytes) {
    // Reading stopped long ago and the server still does not take our output: it is stalled.
    // Drop the connection; the reconnect starts a new generation (pending fan-out resumes).
    spdlog::warn("component stream: {} bytes queued for the XMPP server; dropping the stalled stream", out_bytes_);
    metrics_.error("stream-output-overflow");
    close_socket();
  }
  return ticket;
}

asio::awaitable<bool> ComponentStream::wait_for_room(std::size_t bytes) {
  auto fits = [&] { return out_bytes_ == 0 || out_bytes_ + bytes <= config_.output_buffer_bytes; };
  auto up = [&](std::uint64_t gen) { return authenticated_ && !stopping_ && !closing_ && generation_ == gen; };
  const std::uint64_t gen = generation_;
  if (!up(gen)) co_return false;
  if (room_waiters_.empty() && fits()) co_return true;
  const std::uint64_t me = ++room_tickets_;
  room_waiters_.push_back(me);
  asio::steady_timer t(ioc_);
  bool ok = false;
  for (;;) {
    if (!up(gen)) break;
    if (room_waiters_.front() == me && fits()) {
      ok = true;
      break;
    }
    // Polled: the writer frees room in steps of up to 256 KiB, and waiters exist only while
    // output is backed up, so a short poll costs nothing when the stream keeps up.
    boost::system::error_code ec;
    t.expires_after(milliseconds(5));
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  room_waiters_.erase(std::find(room_waiters_.begin(), room_waiters_.end(), me));
  co_return ok;
}

asio::awaitable<void> ComponentStream::run() {
  int attempt = 0;
  while (!stopping_) {
    try {
      co_await session();
      attempt = 0;  // a session that authenticated and then ended: retry at once
    } catch (const std::exception& e) {
      if (!stopping_) spdlog::warn("component stream: {}", e.what());
    }
    const bool was_up = authenticated_;
    authenticated_ = false;
    metrics_.xmpp_connected.Set(0);
    out_.clear();
    out_bytes_ = 0;
    write_started_.reset();
    close_socket();
    if (stopping_) break;
    if (was_up) attempt = 0;
    // Doubles up to the configured cap (validated 1..3600, so 2^12 > cap is enough).
    const auto backoff = std::min<std::int64_t>(config_.reconnect_max_backoff_seconds, 1LL << std::min(attempt, 12));
    ++attempt;
    spdlog::info("component stream: reconnecting in {} s", backoff);
    co_await sleep_for(seconds(backoff));
  }
}

asio::awaitable<void> ComponentStream::session() {
  auto ex = co_await asio::this_coro::executor;
  asio::ip::tcp::resolver resolver(ex);
  const auto timeout = seconds(config_.connect_timeout_seconds);
  boost::system::error_code ec;
  auto endpoints = co_await timed(resolver.async_resolve(config_.xmpp_host, std::to_string(config_.component_port),
                                                         asio::redirect_error(asio::use_awaitable, ec)),
                                  ec, timeout, "resolve");
  socket_ = asio::ip::tcp::socket(ex);
  co_await timed(asio::async_connect(socket_, endpoints, asio::redirect_error(asio::use_awaitable, ec)), ec, timeout,
                 "connect");
  socket_.set_option(asio::ip::tcp::no_delay(true));
  spdlog::info("component stream: connected to {}:{}", config_.xmpp_host, config_.component_port);

  const std::string header = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
                             "xmlns:stream='http://etherx.jabber.org/streams' to='" +
                             config_.component_domain + "'>";
  co_await timed(asio::async_write(socket_, asio::buffer(header), asio::redirect_error(asio::use_awaitable, ec)), ec,
                 timeout, "write");

  // Stanzas up to twice the configured limit plus 64 KiB of slack are parsed, so that one over
  // max_stanza_bytes (measured re-serialised, which need not match its size on the wire) is
  // still answered with a stanza error; beyond that the stream itself is at fault.
  xml::StreamParser parser({.max_stanza_bytes = config_.max_stanza_bytes * 2 + 64 * 1024, .max_depth = 32});
  std::string buf(kReadChunk, '\0');
  bool handshake_sent = false;
  closing_ = false;
  // Set when the parser refuses input. Events it queued before the fault are still handled
  // (they were valid stanzas), then the stream is ended with the matching stream error.
  std::optional<boost::system::error_code> bad_input;

  auto read_more = [&]() -> asio::awaitable<void> {
    std::size_t n = 0;
    if (authenticated_) {
      n = co_await socket_.async_read_some(asio::buffer(buf), asio::use_awaitable);
    } else {
      n = co_await timed(socket_.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec)),
                         ec, timeout, "handshake");
    }
    if (auto fed = parser.feed(std::string_view(buf.data(), n)); !fed) bad_input = fed.error();
  };

  for (;;) {
    while (auto ev = parser.next()) {
      if (auto* opened = std::get_if<xml::StreamOpened>(&*ev)) {
        std::string id;
        for (const auto& [k, v] : opened->attrs)
          if (k == "id") id = v;
        if (id.empty()) throw std::runtime_error("stream header without id");
        std::string hs = "<handshake>" + crypto::component_handshake_digest(id, config_.component_secret) +
                         "</handshake>";
        co_await timed(asio::async_write(socket_, asio::buffer(hs), asio::redirect_error(asio::use_awaitable, ec)), ec,
                       timeout, "write");
        sodium_memzero(hs.data(), hs.size());  // the digest is a credential
        handshake_sent = true;
      } else if (std::holds_alternative<xml::StreamClosed>(*ev)) {
        throw std::runtime_error("the server closed the stream");
      } else {
        xml::Element stanza = std::move(std::get<xml::StanzaEvent>(*ev).stanza);
        if (stanza.ns() == xml::kStreamNs && stanza.name() == "error") {
          std::string cond = "unknown";
          for (const auto* c : stanza.element_children()) cond = c->name() == "text" ? cond : c->name();
          throw std::runtime_error("stream error from the server: " + cond);
        }
        if (!authenticated_) {
          if (handshake_sent && stanza.name() == "handshake") {
            ++generation_;
            queued_ = written_ = 0;
            authenticated_ = true;
            metrics_.xmpp_connected.Set(1);
            spdlog::info("component stream: authenticated as {}", config_.component_domain);
            asio::co_spawn(ex, writer(), asio::detached);
            if (on_connected_) on_connected_();
            continue;
          }
          throw std::runtime_error("unexpected <" + stanza.name() + "/> before the handshake completed");
        }
        if (on_stanza_) on_stanza_(std::move(stanza));
      }
    }
    if (bad_input) {
      const std::string_view condition = xmpp::stream_error_condition(*bad_input);
      // Labelled by condition: a small fixed set, unlike the parser's messages.
      metrics_.error("stream-" + std::string(condition));
      co_await end_with_error(condition);
      throw std::runtime_error("bad input from the server (" + std::string(condition) + "): " + bad_input->message());
    }
    if (out_bytes_ > config_.output_buffer_bytes) {
      // Backpressure: read nothing more (so nothing more is answered) until the writer has
      // caught up. If the server never reads, the writer's timeout closes the socket.
      metrics_.error("stream-backpressure");
      while (out_bytes_ > config_.output_buffer_bytes / 2 && authenticated_ && socket_.is_open()) {
        boost::system::error_code wait_ec;
        drained_.expires_after(milliseconds(100));
        co_await drained_.async_wait(asio::redirect_error(asio::use_awaitable, wait_ec));
      }
      if (!socket_.is_open()) throw std::runtime_error("the stream stalled");
    }
    co_await read_more();
  }
}

asio::awaitable<void> ComponentStream::writer() {
  if (writing_) co_return;
  writing_ = true;
  const std::uint64_t generation = generation_;
  try {
    while ((authenticated_ || stopping_) && generation == generation_) {
      if (out_.empty()) {
        if (stopping_ || closing_) break;
        boost::system::error_code ec;
        write_signal_.expires_at(std::chrono::steady_clock::time_point::max());
        co_await write_signal_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      // Coalesce queued stanzas into one write.
      std::string batch;
      std::uint64_t count = 0;
      while (!out_.empty() && batch.size() < 256 * 1024) {
        batch += out_.front();
        out_bytes_ -= std::min(out_bytes_, out_.front().size());
        out_.pop_front();
        ++count;
      }
      boost::system::error_code ec;
      write_started_ = std::chrono::steady_clock::now();
      co_await timed(asio::async_write(socket_, asio::buffer(batch), asio::redirect_error(asio::use_awaitable, ec)),
                     ec, seconds(config_.request_timeout_seconds), "write");
      write_started_.reset();
      if (generation == generation_) written_ += count;
      if (out_bytes_ <= config_.output_buffer_bytes / 2) drained_.cancel();
    }
  } catch (const std::exception& e) {
    // A write that failed or timed out leaves the stream in an unknown state: close it, so the
    // reader fails too and the session reconnects (it used to go on reading, never writing).
    spdlog::warn("component stream: write failed: {}; closing the stream", e.what());
    write_started_.reset();
    if (generation == generation_) close_socket();
    writing_ = false;
    co_return;
  }
  if (stopping_ || closing_ || generation != generation_ || !authenticated_) close_socket();
  writing_ = false;
}

asio::awaitable<void> ComponentStream::end_with_error(std::string_view condition) {
  std::string bytes = xmpp::stream_error_and_close(condition);
  const auto timeout = seconds(config_.request_timeout_seconds);
  closing_ = true;
  if (writing_) {
    // The writer owns the socket's write side: queue behind what it has, so no bytes
    // interleave with a batch in progress; it closes the socket once the queue is empty.
    enqueue(std::move(bytes));
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (writing_ && std::chrono::steady_clock::now() < until) co_await sleep_for(milliseconds(10));
    co_return;
  }
  // Before the handshake completed there is no writer yet.
  boost::system::error_code ec;
  try {
    co_await timed(asio::async_write(socket_, asio::buffer(bytes), asio::redirect_error(asio::use_awaitable, ec)), ec,
                   timeout, "write");
  } catch (const std::exception&) {
    // The connection is dropped either way; the caller reports the bad input itself.
  }
}

}  // namespace multiend::server
