// Internal to client/xmpp (not part of the C2sConnection API; include only from its .cpp files):
// the private state of a C2sConnection, shared by the files that implement it.
//
// Impl owns the socket and the TLS session, the stream parser, the write queue, the inbox of
// received stanzas and the iq requests waiting for an answer. It is shared (shared_ptr) between
// the C2sConnection and the reader, writer and linger coroutines, so it outlives the object
// while those finish. Its members are defined where their concern lives:
//   c2s_io.cpp           construction, ending the connection, raw I/O, the reader and writer
//                        loops, routing of received stanzas (iq answers, pings from our server)
//   c2s_negotiation.cpp  TCP connect, stream headers and features, resource binding, negotiate()
//   c2s_tls.cpp          the TLS context and STARTTLS with certificate and name checks
//   c2s_sasl.cpp         SASL: SCRAM-SHA-256, SCRAM-SHA-1, PLAIN
//   c2s_connection.cpp   the public C2sConnection members, on top of the above
// Like C2sConnection, every member runs on the connection's single-threaded executor.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "client/xmpp/c2s_connection.hpp"
#include "protocol/jid.hpp"
#include "protocol/xml/element.hpp"
#include "protocol/xml/stream_parser.hpp"
#include "protocol/xmpp/scram.hpp"

namespace multiend::client {

namespace c2s_detail {
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

inline constexpr std::size_t kReadChunk = 16 * 1024;
}  // namespace c2s_detail

struct C2sConnection::Impl : std::enable_shared_from_this<C2sConnection::Impl> {
  using tcp = c2s_detail::tcp;
  using Clock = c2s_detail::Clock;

  enum class State { idle, connecting, up, closing, closed };

  struct PendingIq {
    explicit PendingIq(const asio::any_io_executor& ex) : wake(ex) { wake.expires_at(Clock::time_point::max()); }
    std::optional<xml::Element> response;
    std::string to;  // the request's 'to', "" if none
    asio::steady_timer wake;
  };

  explicit Impl(asio::any_io_executor executor);

  asio::any_io_executor ex;
  tcp::socket socket;  // before STARTTLS; moved into `tls` after <proceed/>
  std::optional<asio::ssl::context> ssl_ctx;
  std::optional<asio::ssl::stream<tcp::socket>> tls;
  xml::StreamParser parser;  // limits set in negotiate(): max_stanza_bytes, depth 32
  std::size_t max_stanza_bytes = 256 * 1024;
  std::string buf = std::string(c2s_detail::kReadChunk, '\0');

  State state = State::idle;
  std::optional<C2sError> error;
  std::optional<Jid> jid;
  std::string domain, bare, local, mechanism, phase;
  Clock::duration timeout = std::chrono::seconds(15);
  Clock::duration keepalive = std::chrono::seconds(60);
  std::size_t max_queued = 1000;

  std::deque<std::string> out;
  asio::steady_timer write_signal;
  bool close_queued = false;

  std::deque<xml::Element> inbox;
  asio::steady_timer inbox_signal;
  asio::steady_timer reader_signal;  // the reader waits here while the inbox is full
  asio::steady_timer linger_timer;
  std::map<std::string, std::shared_ptr<PendingIq>> pending;
  std::string id_prefix;
  std::uint64_t id_counter = 0;

  tcp::socket& lowest() { return tls ? tls->next_layer() : socket; }
  std::string during() const { return phase.empty() ? std::string() : " during " + phase; }
  std::string new_id() { return id_prefix + "-" + std::to_string(++id_counter); }

  // ---- ending (c2s_io.cpp) ------------------------------------------------------------------
  void wake_all();
  void shutdown(const C2sError& err);
  void begin_close(const C2sError& err);
  asio::awaitable<void> linger(std::shared_ptr<Impl> self);
  C2sError network_error(const boost::system::error_code& ec) const;
  void throw_if_down() const;

  // ---- raw I/O (c2s_io.cpp) -----------------------------------------------------------------
  asio::awaitable<std::size_t> raw_read_some();
  asio::awaitable<void> raw_write(std::string_view data);
  std::string describe_bad_input(boost::system::error_code ec) const;

  // ---- after connect (c2s_io.cpp) -----------------------------------------------------------
  bool from_own_account_or_server(std::optional<std::string_view> from) const;
  bool response_from_matches(const PendingIq& p, std::optional<std::string_view> from) const;
  void handle_stanza(xml::Element el);
  asio::awaitable<void> reader(std::shared_ptr<Impl> keep_alive);
  asio::awaitable<void> writer(std::shared_ptr<Impl> keep_alive);
  asio::awaitable<void> wait_response(std::shared_ptr<PendingIq> p);

  // ---- negotiation (c2s_negotiation.cpp) ----------------------------------------------------
  C2sError timeout_error() const;
  asio::awaitable<void> write_timed(std::string_view data);
  asio::awaitable<std::size_t> read_timed();
  void feed(std::size_t n);
  asio::awaitable<xml::StreamEvent> next_event();
  asio::awaitable<xml::Element> next_element();
  void check_stream_header(const xml::StreamOpened& opened) const;
  asio::awaitable<xml::Element> open_stream();
  void restart_stream(const char* after);
  asio::awaitable<void> tcp_connect(const std::string& host, std::uint16_t port);
  asio::awaitable<xml::Element> negotiation_iq(const std::string& id);
  asio::awaitable<Jid> bind(const std::string& resource, const xml::Element& features);
  asio::awaitable<Jid> negotiate(const ConnectOptions& o);

  // ---- TLS (c2s_tls.cpp) --------------------------------------------------------------------
  void setup_tls_context(const std::optional<std::string>& ca_file);
  asio::awaitable<void> starttls();

  // ---- SASL (c2s_sasl.cpp) ------------------------------------------------------------------
  asio::awaitable<void> authenticate(const ConnectOptions& o, const xml::Element& features);
  [[noreturn]] void sasl_failed(const xml::Element& failure);
  asio::awaitable<xml::Element> next_sasl_element();
  std::string decoded_payload(const xml::Element& el);
  asio::awaitable<void> authenticate_scram(const ConnectOptions& o, xmpp::ScramHash hash);
  asio::awaitable<void> verify_scram_final(xmpp::ScramClient& scram, const std::string& server_final);
  asio::awaitable<void> authenticate_plain(const ConnectOptions& o);
};

}  // namespace multiend::client
