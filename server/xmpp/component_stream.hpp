// The XEP-0114 connection to the XMPP server: connect, open the stream, authenticate with the
// handshake digest (never logged), then read stanzas and write queued ones. On any failure it
// reconnects with exponential backoff, forever, until stop(). Every wait has a timeout.
// Input the parser refuses ends the stream with the matching RFC 6120 stream error
// (restricted-xml, policy-violation, not-well-formed) and </stream:stream>, then reconnects.
// Output is bounded in bytes (Config::output_buffer_bytes): above it the component stops
// reading from the server until half of it is written; at twice it, or when one write takes
// longer than request_timeout_seconds, the stream counts as stalled: it is closed and
// reconnected (whoever needs a stanza delivered keeps its own record, see Ticket).
// writable() is false while a write has been pending for a third of that timeout.
// Runs on one single-threaded io_context: that thread is the connection's strand.
// Knows nothing of what the stanzas mean: they go to the handler.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
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
  // The same for a stanza serialised already (xml/splice.hpp: a stored message in its wrapper),
  // in this stream's namespace. One over max_output_stanza_bytes is not sent (nullopt).
  std::optional<Ticket> send_serialized(std::string bytes, const char* kind);
  // Waits, first come first served, until `bytes` more fit in the output buffer (or the queue
  // is empty): producers of bulk output (fan-out, MAM pages, the resume after a restart) are
  // paced by the writer instead of piling up. False when the stream went down meanwhile:
  // nothing may be sent for that connection.
  asio::awaitable<bool> wait_for_room(std::size_t bytes);
  bool authenticated() const noexcept { return authenticated_; }
  std::uint64_t generation() const noexcept { return generation_; }
  // Stanzas of the current generation written to the socket so far.
  std::uint64_t written_through() const noexcept { return written_; }
  bool idle() const noexcept { return out_.empty() && !writing_; }
  // Authenticated, and not stuck in a write: what /readyz reports.
  bool writable() const noexcept;
  std::size_t queued_bytes() const noexcept { return out_bytes_; }

 private:
  asio::awaitable<void> session();
  asio::awaitable<void> writer();
  // Sends a stream error and </stream:stream> after what is queued, then closes the socket.
  asio::awaitable<void> end_with_error(std::string_view condition);
  void close_socket();
  void enqueue(std::string bytes);
  Ticket queue(std::string bytes, const char* kind);

  asio::io_context& ioc_;
  const Config& config_;
  Metrics& metrics_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer write_signal_;
  std::deque<std::string> out_;
  std::size_t out_bytes_ = 0;
  asio::steady_timer drained_;  // cancelled when the queue falls to half the buffer
  std::optional<std::chrono::steady_clock::time_point> write_started_;
  std::deque<std::uint64_t> room_waiters_;  // wait_for_room callers, in arrival order
  std::uint64_t room_tickets_ = 0;
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
