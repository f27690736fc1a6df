// The XEP-0114 connection to the XMPP server: connect, open the stream, authenticate with the
// handshake digest (never logged), then read stanzas and write queued ones. On any failure it
// reconnects with exponential backoff, forever, until stop(). Every wait has a timeout.
// Input the parser refuses ends the stream with the matching RFC 6120 stream error
// (restricted-xml, policy-violation, not-well-formed) and </stream:stream>, then reconnects.
// Runs on one single-threaded io_context: that thread is the connection's strand.
// Knows nothing of what the stanzas mean: they go to the handler.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <functional>
#include <optional>
#include <string>

#include "protocol/xml/element.hpp"
#include "server/config.hpp"
#include "server/metrics.hpp"

namespace multiend::server {

namespace asio = boost::asio;

class ComponentStream {
 public:
  using StanzaHandler = std::function<void(xml::Element)>;

  ComponentStream(asio::io_context& ioc, const Config& config, Metrics& metrics);

  void on_stanza(StanzaHandler h) { on_stanza_ = std::move(h); }
  // Called after every successful handshake (used to resume pending fan-out).
  void on_connected(std::function<void()> h) { on_connected_ = std::move(h); }

  asio::awaitable<void> run();
  void stop();

  // Where a queued stanza stands in the stream: written once written_through() reaches `seq`
  // within the same connection `generation`; lost if the generation moved on first.
  struct Ticket {
    std::uint64_t generation = 0;
    std::uint64_t seq = 0;
  };

  // Queues a stanza (serialised in the stream's namespace). Returns nullopt, dropping it, when
  // the stream is not authenticated: callers that must not lose it keep their own record.
  std::optional<Ticket> send(const xml::Element& stanza, const char* kind);
  bool authenticated() const noexcept { return authenticated_; }
  std::uint64_t generation() const noexcept { return generation_; }
  // Stanzas of the current generation written to the socket so far.
  std::uint64_t written_through() const noexcept { return written_; }
  bool idle() const noexcept { return out_.empty() && !writing_; }

 private:
  asio::awaitable<void> session();
  asio::awaitable<void> writer();
  // Sends a stream error and </stream:stream> after what is queued, then closes the socket.
  asio::awaitable<void> end_with_error(std::string_view condition);
  void close_socket();

  asio::io_context& ioc_;
  const Config& config_;
  Metrics& metrics_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer write_signal_;
  std::deque<std::string> out_;
  std::uint64_t generation_ = 0;  // +1 per connection
  std::uint64_t queued_ = 0;      // stanzas queued in this generation
  std::uint64_t written_ = 0;     // stanzas written in this generation
  StanzaHandler on_stanza_;
  std::function<void()> on_connected_;
  bool authenticated_ = false;
  bool stopping_ = false;
  bool closing_ = false;  // this connection is being ended by us after bad input
  bool writing_ = false;
};

}  // namespace multiend::server
