#include "client/xmpp/c2s_connection.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <algorithm>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <utility>
#include <variant>

#include "protocol/crypto/base64.hpp"
#include "protocol/crypto/random.hpp"
#include "protocol/xml/serializer.hpp"
#include "protocol/xml/stream_parser.hpp"
#include "protocol/xmpp/namespaces.hpp"
#include "protocol/xmpp/scram.hpp"
#include "protocol/xmpp/stanza.hpp"

namespace multiend::client {

using namespace asio::experimental::awaitable_operators;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::string_view kTlsNs = "urn:ietf:params:xml:ns:xmpp-tls";
constexpr std::string_view kSaslNs = "urn:ietf:params:xml:ns:xmpp-sasl";
constexpr std::string_view kBindNs = "urn:ietf:params:xml:ns:xmpp-bind";
constexpr std::string_view kSessionNs = "urn:ietf:params:xml:ns:xmpp-session";
constexpr std::string_view kStreamErrorNs = "urn:ietf:params:xml:ns:xmpp-streams";
constexpr std::string_view kPingNs = "urn:xmpp:ping";

constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::size_t kMaxFeatures = 64;
constexpr std::size_t kMaxMechanisms = 64;
constexpr std::size_t kMaxStanzasBeforeBind = 16;
constexpr std::size_t kMaxWriteBatch = 256 * 1024;
constexpr auto kCloseLinger = std::chrono::seconds(5);

class ConnectCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "multiend.c2s"; }
  std::string message(int ev) const override {
    switch (static_cast<ConnectError>(ev)) {
      case ConnectError::unreachable: return "server unreachable";
      case ConnectError::timeout: return "timeout";
      case ConnectError::tls_failed: return "TLS failed";
      case ConnectError::certificate_untrusted: return "certificate not trusted";
      case ConnectError::hostname_mismatch: return "certificate does not match the server name";
      case ConnectError::auth_failed: return "authentication failed";
      case ConnectError::no_supported_mechanism: return "no supported authentication mechanism";
      case ConnectError::stream_error: return "stream error";
      case ConnectError::bind_failed: return "resource binding failed";
      case ConnectError::disconnected: return "disconnected";
      case ConnectError::protocol_violation: return "protocol violation by the server";
      case ConnectError::tls_required: return "the server requires TLS";
    }
    return "unknown c2s error";
  }
};

std::string seconds_text(Clock::duration d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  return std::to_string(ms) + " ms";
}

// Text from the server, fit for an error message: printable ASCII, at most `max` bytes.
std::string sanitize(std::string_view s, std::size_t max = 200) {
  std::string out;
  for (char c : s) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    const auto u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7F) ? c : (c == '\n' || c == '\t' ? ' ' : '?');
  }
  return out;
}

// "<condition> (<text>)" from an element holding one condition element and an optional <text/>
// in namespace `ns`.
std::string describe_condition(const xml::Element& e, std::string_view ns) {
  std::string cond;
  std::string text;
  for (const xml::Element* c : e.element_children()) {
    if (c->ns() != ns) continue;
    if (c->name() == "text") {
      if (text.empty()) text = sanitize(c->text());
    } else if (cond.empty()) {
      cond = c->name();
    }
  }
  if (cond.empty()) cond = "undefined-condition";
  return text.empty() ? cond : cond + " (" + text + ")";
}

std::string describe_stanza_error(const xml::Element& stanza) {
  auto err = xmpp::parse_stanza_error(stanza);
  if (!err) return "malformed error reply";
  std::string out = err->condition;
  if (!err->text.empty()) out += " (" + sanitize(err->text) + ")";
  return out;
}

std::string element_name(const xml::Element& e) {
  return "<" + sanitize(e.name(), 64) + (e.ns().empty() ? "" : " xmlns='" + sanitize(e.ns(), 100) + "'") + "/>";
}

bool is_ip_literal(std::string_view host) {
  boost::system::error_code ec;
  (void)asio::ip::make_address(std::string(host), ec);
  return !ec;
}

std::string strip_brackets(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') return std::string(host.substr(1, host.size() - 2));
  return std::string(host);
}

// Zeroes a string on scope exit (credentials on their way to the socket).
class WipeString {
 public:
  explicit WipeString(std::string& s) : s_(s) {}
  ~WipeString() {
    if (!s_.empty()) sodium_memzero(s_.data(), s_.size());
  }
  WipeString(const WipeString&) = delete;
  WipeString& operator=(const WipeString&) = delete;

 private:
  std::string& s_;
};

std::string stream_header(const std::string& domain, const std::string& from) {
  std::string h =
      "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
      "xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xml:lang='en' to='" +
      domain + "'";
  if (!from.empty()) h += " from='" + from + "'";
  h += ">";
  return h;
}

std::string bind_request(const std::string& id, const std::string& resource) {
  xml::Element iq("iq", std::string(xmpp::kClientNs));
  iq.set_attr("type", "set");
  iq.set_attr("id", id);
  xml::Element& bind = iq.add_child(xml::Element("bind", std::string(kBindNs)));
  if (!resource.empty()) bind.add_child(xml::Element("resource", std::string(kBindNs))).add_text(resource);
  return xml::serialize(iq);
}

std::string session_request(const std::string& id) {
  xml::Element iq("iq", std::string(xmpp::kClientNs));
  iq.set_attr("type", "set");
  iq.set_attr("id", id);
  iq.add_child(xml::Element("session", std::string(kSessionNs)));
  return xml::serialize(iq);
}

std::string sasl_auth(std::string_view mechanism, const std::string& payload_b64) {
  return "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='" + std::string(mechanism) + "'>" +
         (payload_b64.empty() ? std::string("=") : payload_b64) + "</auth>";
}

std::string sasl_response(const std::string& payload_b64) {
  if (payload_b64.empty()) return "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
  return "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + payload_b64 + "</response>";
}

// The decoded payload of a <challenge/> or <success/>: "" for no data or "=" (RFC 6120 §6.4.2).
std::optional<std::string> sasl_payload(const xml::Element& e) {
  std::string text = e.text();
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return std::string();
  text = text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
  if (text == "=") return std::string();
  auto bytes = crypto::base64_decode(text, 8 * 1024);
  if (!bytes) return std::nullopt;
  return std::string(bytes->begin(), bytes->end());
}

std::string random_token(std::size_t bytes) {
  crypto::SodiumRng rng;
  crypto::Bytes b(bytes);
  rng.fill(b);
  return crypto::base64_encode(b);
}

asio::awaitable<void> sleep_for(Clock::duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  boost::system::error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (ec) throw boost::system::system_error(ec);  // cancelled: the other branch won
}

asio::awaitable<void> sleep_then(Clock::duration d, std::function<void()>* on_expire) {
  co_await sleep_for(d);
  if (on_expire && *on_expire) (*on_expire)();
}

// `||` waits for the first branch to *succeed*: an operation that throws would otherwise be
// reported only when the deadline expires. These wrappers turn its exception into a value.
template <class T>
asio::awaitable<std::optional<T>> capture(asio::awaitable<T> op, std::exception_ptr& error) {
  try {
    co_return co_await std::move(op);
  } catch (...) {
    error = std::current_exception();
  }
  co_return std::nullopt;
}

asio::awaitable<bool> capture_void(asio::awaitable<void> op, std::exception_ptr& error) {
  try {
    co_await std::move(op);
  } catch (...) {
    error = std::current_exception();
  }
  co_return true;
}

// Runs `op` until `d` elapses. nullopt on timeout (after calling *on_expire, if given, which
// must make a non-cancellable `op` finish); the operation's own exception is rethrown at once.
template <class T>
asio::awaitable<std::optional<T>> with_timeout(asio::awaitable<T> op, Clock::duration d,
                                               std::function<void()>* on_expire = nullptr) {
  std::exception_ptr error;
  auto r = co_await (capture(std::move(op), error) || sleep_then(d, on_expire));
  if (r.index() == 1) co_return std::nullopt;
  if (error) std::rethrow_exception(error);
  co_return std::move(std::get<0>(r));
}

// The same for an operation without a value: false on timeout.
asio::awaitable<bool> with_timeout_void(asio::awaitable<void> op, Clock::duration d,
                                        std::function<void()>* on_expire = nullptr) {
  std::exception_ptr error;
  auto r = co_await (capture_void(std::move(op), error) || sleep_then(d, on_expire));
  if (r.index() == 1) co_return false;
  if (error) std::rethrow_exception(error);
  co_return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

const boost::system::error_category& connect_category() noexcept {
  static const ConnectCategory cat;
  return cat;
}

boost::system::error_code make_error_code(ConnectError e) noexcept {
  return {static_cast<int>(e), connect_category()};
}

C2sError::C2sError(ConnectError code, const std::string& detail)
    : std::runtime_error(detail.empty() ? connect_category().message(static_cast<int>(code))
                                        : connect_category().message(static_cast<int>(code)) + ": " + detail),
      code_(code),
      detail_(detail) {}

crypto::SecretBytes password_from(std::string_view password) {
  return crypto::SecretBytes(crypto::ByteView(reinterpret_cast<const std::uint8_t*>(password.data()), password.size()));
}

// ---------------------------------------------------------------------------------------------

struct C2sConnection::Impl : std::enable_shared_from_this<C2sConnection::Impl> {
  enum class State { idle, connecting, up, closing, closed };

  struct PendingIq {
    explicit PendingIq(const asio::any_io_executor& ex) : wake(ex) { wake.expires_at(Clock::time_point::max()); }
    std::optional<xml::Element> response;
    std::string to;  // the request's 'to', "" if none
    asio::steady_timer wake;
  };

  explicit Impl(asio::any_io_executor executor)
      : ex(std::move(executor)), socket(ex), write_signal(ex), inbox_signal(ex), reader_signal(ex), linger_timer(ex) {
    // Waiters sleep on these until cancel(): the expiry is never changed again, so waking one
    // waiter never disturbs another.
    inbox_signal.expires_at(Clock::time_point::max());
    reader_signal.expires_at(Clock::time_point::max());
    id_prefix = random_token(6);
    for (char& c : id_prefix)
      if (c == '+' || c == '/') c = 'x';
  }

  asio::any_io_executor ex;
  tcp::socket socket;  // before STARTTLS; moved into `tls` after <proceed/>
  std::optional<asio::ssl::context> ssl_ctx;
  std::optional<asio::ssl::stream<tcp::socket>> tls;
  xml::StreamParser parser;  // limits set in negotiate(): max_stanza_bytes, depth 32
  std::size_t max_stanza_bytes = 256 * 1024;
  std::string buf = std::string(kReadChunk, '\0');

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

  // ---- ending --------------------------------------------------------------------------------

  void wake_all() {
    if (state == State::closed) linger_timer.cancel();
    write_signal.cancel();
    inbox_signal.cancel();
    reader_signal.cancel();
    for (auto& [id, p] : pending) p->wake.cancel();
  }

  // Ends the connection at once. The first error recorded is the one reported.
  void shutdown(const C2sError& err) {
    if (!error) error.emplace(err);
    if (state == State::closed) return;
    state = State::closed;
    boost::system::error_code ec;
    lowest().shutdown(tcp::socket::shutdown_both, ec);
    lowest().close(ec);
    wake_all();
  }

  // Ends the stream politely: </stream:stream> after what is queued, then the socket closes
  // when the server closes its stream or after kCloseLinger.
  void begin_close(const C2sError& err) {
    if (state == State::closing) return;  // already on its way
    if (state != State::up) {
      shutdown(err);
      return;
    }
    if (!error) error.emplace(err);
    state = State::closing;
    if (!close_queued) {
      out.push_back("</stream:stream>");
      close_queued = true;
    }
    wake_all();
    asio::co_spawn(ex, linger(shared_from_this()), asio::detached);
  }

  // Bounds the polite close; shutdown() cancels the timer, so nothing keeps the executor busy
  // once the server has closed its side.
  asio::awaitable<void> linger(std::shared_ptr<Impl> self) {
    if (self->state == State::closed) co_return;  // ended before we started
    self->linger_timer.expires_after(kCloseLinger);
    boost::system::error_code ec;
    co_await self->linger_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    self->shutdown(C2sError(ConnectError::disconnected, "connection closed"));
  }

  C2sError network_error(const boost::system::error_code& ec) const {
    if (state == State::closed && error) return *error;
    if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated || ec == asio::error::connection_reset ||
        ec == asio::error::broken_pipe || ec == asio::error::connection_aborted)
      return C2sError(ConnectError::disconnected, "the server closed the connection" + during());
    return C2sError(ConnectError::disconnected, "network error" + during() + ": " + ec.message());
  }

  C2sError timeout_error() const {
    return C2sError(ConnectError::timeout, "no answer from the server within " + seconds_text(timeout) + during());
  }

  // ---- raw I/O -------------------------------------------------------------------------------

  asio::awaitable<std::size_t> raw_read_some() {
    if (tls) co_return co_await tls->async_read_some(asio::buffer(buf), asio::use_awaitable);
    co_return co_await socket.async_read_some(asio::buffer(buf), asio::use_awaitable);
  }

  asio::awaitable<void> raw_write(std::string_view data) {
    if (tls)
      co_await asio::async_write(*tls, asio::buffer(data.data(), data.size()), asio::use_awaitable);
    else
      co_await asio::async_write(socket, asio::buffer(data.data(), data.size()), asio::use_awaitable);
  }

  // Negotiation I/O: bounded by `timeout`.
  asio::awaitable<void> write_timed(std::string_view data) {
    std::function<void()> on_expire = [this] {
      boost::system::error_code ec;
      lowest().cancel(ec);
    };
    if (!co_await with_timeout_void(raw_write(data), timeout, &on_expire))
      throw C2sError(ConnectError::timeout, "writing to the server stalled for " + seconds_text(timeout) + during());
  }

  asio::awaitable<std::size_t> read_timed() {
    std::function<void()> on_expire = [this] {
      boost::system::error_code ec;
      lowest().cancel(ec);
    };
    auto n = co_await with_timeout(raw_read_some(), timeout, &on_expire);
    if (!n) throw timeout_error();
    co_return *n;
  }

  std::string describe_bad_input(boost::system::error_code ec) const {
    if (ec == Errc::xml_too_large)
      return "a stanza from the server is too large (limit " + std::to_string(max_stanza_bytes) + " bytes)";
    if (ec == Errc::xml_too_deep) return "a stanza from the server is nested too deeply";
    return "bad XML from the server: " + ec.message();
  }

  void feed(std::size_t n) {
    auto fed = parser.feed(std::string_view(buf.data(), n));
    if (!fed) {
      throw C2sError(ConnectError::protocol_violation, describe_bad_input(fed.error()) + during());
    }
  }

  asio::awaitable<xml::StreamEvent> next_event() {
    for (;;) {
      if (auto ev = parser.next()) co_return std::move(*ev);
      const std::size_t n = co_await read_timed();
      feed(n);
    }
  }

  // The next first-level element during negotiation; stream errors and ends become C2sError.
  asio::awaitable<xml::Element> next_element() {
    xml::StreamEvent ev = co_await next_event();
    if (std::holds_alternative<xml::StreamOpened>(ev))
      throw C2sError(ConnectError::protocol_violation, "a second stream header" + during());
    if (std::holds_alternative<xml::StreamClosed>(ev))
      throw C2sError(ConnectError::disconnected, "the server closed the stream" + during());
    xml::Element el = std::move(std::get<xml::StanzaEvent>(ev).stanza);
    if (el.ns() == xml::kStreamNs && el.name() == "error")
      throw C2sError(ConnectError::stream_error, describe_condition(el, kStreamErrorNs));
    co_return el;
  }

  void check_stream_header(const xml::StreamOpened& opened) const {
    if (opened.default_ns != xmpp::kClientNs)
      throw C2sError(ConnectError::protocol_violation,
                     "the stream's namespace is '" + sanitize(opened.default_ns, 100) + "', not jabber:client");
    std::string version, from;
    for (const auto& [k, v] : opened.attrs) {
      if (k == "version") version = v;
      if (k == "from") from = v;
    }
    if (version.empty() || version[0] < '1' || version[0] > '9')
      throw C2sError(ConnectError::protocol_violation,
                     "the server does not speak XMPP 1.0 (version='" + sanitize(version, 20) + "')");
    if (!from.empty()) {
      auto j = Jid::parse(from);
      if (!j || j->to_string() != domain)
        throw C2sError(ConnectError::protocol_violation, "the stream is from '" + sanitize(from, 100) + "', not " + domain);
    }
  }

  // Sends our stream header, reads the server's, then its features.
  asio::awaitable<xml::Element> open_stream() {
    // GCC 12: no temporaries with destructors inside a co_await expression; name them.
    std::string from;
    if (tls) from = bare;
    const std::string header = stream_header(domain, from);
    co_await write_timed(header);
    xml::StreamEvent ev = co_await next_event();
    if (auto* opened = std::get_if<xml::StreamOpened>(&ev)) {
      check_stream_header(*opened);
    } else if (std::holds_alternative<xml::StreamClosed>(ev)) {
      throw C2sError(ConnectError::disconnected, "the server closed the stream" + during());
    } else {
      // The parser reports a first element before any header as xml_bad_stream; be safe anyway.
      throw C2sError(ConnectError::protocol_violation, "no stream header from the server");
    }
    xml::Element features = co_await next_element();
    if (features.ns() != xml::kStreamNs || features.name() != "features")
      throw C2sError(ConnectError::protocol_violation,
                     "expected <stream:features/>, got " + element_name(features) + during());
    if (features.element_children().size() > kMaxFeatures)
      throw C2sError(ConnectError::protocol_violation, "more than " + std::to_string(kMaxFeatures) + " stream features");
    co_return features;
  }

  // Nothing may follow <proceed/> or <success/> before the new stream: such bytes would be
  // read as part of the next stream (plaintext injected ahead of TLS, or a confused server).
  void restart_stream(const char* after) {
    if (parser.pending_bytes() != 0 || parser.next())
      throw C2sError(ConnectError::protocol_violation,
                     std::string("the server sent data after ") + after + " before the stream restart");
    parser.reset();
  }

  // ---- connect -------------------------------------------------------------------------------

  void setup_tls_context(const std::optional<std::string>& ca_file) {
    ssl_ctx.emplace(asio::ssl::context::tls_client);
    ssl_ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                         asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                         asio::ssl::context::no_tlsv1_1 | asio::ssl::context::no_compression);
    SSL_CTX_set_min_proto_version(ssl_ctx->native_handle(), TLS1_2_VERSION);
    boost::system::error_code ec;
    if (ca_file) {
      ssl_ctx->load_verify_file(*ca_file, ec);
      if (ec) throw C2sError(ConnectError::tls_failed, "cannot load the CA file " + *ca_file + ": " + ec.message());
    } else {
      ssl_ctx->set_default_verify_paths(ec);
      if (ec) throw C2sError(ConnectError::tls_failed, "cannot load the system CA store: " + ec.message());
    }
    ssl_ctx->set_verify_mode(asio::ssl::verify_peer);
  }

  asio::awaitable<void> tcp_connect(const std::string& host, std::uint16_t port) {
    phase = "connecting to " + host + ":" + std::to_string(port);
    tcp::resolver resolver(ex);
    std::function<void()> cancel_resolve = [&resolver] { resolver.cancel(); };
    std::optional<tcp::resolver::results_type> endpoints;
    const std::string name = strip_brackets(host);
    const std::string service = std::to_string(port);
    try {
      endpoints = co_await with_timeout(
          resolver.async_resolve(name, service, tcp::resolver::numeric_service, asio::use_awaitable), timeout,
          &cancel_resolve);
    } catch (const boost::system::system_error& e) {
      throw C2sError(ConnectError::unreachable, "cannot resolve " + host + ": " + e.code().message());
    }
    if (!endpoints)
      throw C2sError(ConnectError::unreachable, "resolving " + host + " took longer than " + seconds_text(timeout));
    std::function<void()> cancel_connect = [this] {
      boost::system::error_code ec;
      socket.close(ec);
    };
    std::optional<tcp::endpoint> connected;
    try {
      connected = co_await with_timeout(asio::async_connect(socket, *endpoints, asio::use_awaitable), timeout,
                                        &cancel_connect);
    } catch (const boost::system::system_error& e) {
      if (state == State::closed && error) throw *error;
      throw C2sError(ConnectError::unreachable,
                     "cannot connect to " + host + ":" + std::to_string(port) + ": " + e.code().message());
    }
    if (!connected)
      throw C2sError(ConnectError::unreachable,
                     "no TCP connection to " + host + ":" + std::to_string(port) + " within " + seconds_text(timeout));
    boost::system::error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
  }

  asio::awaitable<void> starttls() {
    phase = "STARTTLS";
    co_await write_timed("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    xml::Element answer = co_await next_element();
    if (answer.ns() == kTlsNs && answer.name() == "failure")
      throw C2sError(ConnectError::tls_failed, "the server refused STARTTLS");
    if (answer.ns() != kTlsNs || answer.name() != "proceed")
      throw C2sError(ConnectError::protocol_violation, "expected <proceed/>, got " + element_name(answer));
    restart_stream("<proceed/>");

    tls.emplace(std::move(socket), *ssl_ctx);
    SSL* ssl = tls->native_handle();
    const std::string name = strip_brackets(domain);
    if (is_ip_literal(name)) {
      // SNI carries host names only (RFC 6066 §3); an address is checked against iPAddress SANs.
      if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) != 1)
        throw C2sError(ConnectError::tls_failed, "cannot set the expected address");
    } else {
      if (SSL_set_tlsext_host_name(ssl, name.c_str()) != 1 || SSL_set1_host(ssl, name.c_str()) != 1)
        throw C2sError(ConnectError::tls_failed, "cannot set the expected host name");
      SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    }

    phase = "the TLS handshake";
    std::function<void()> on_expire = [this] {
      boost::system::error_code ec;
      lowest().cancel(ec);
    };
    bool done = false;
    try {
      done = co_await with_timeout_void(tls->async_handshake(asio::ssl::stream_base::client, asio::use_awaitable),
                                        timeout, &on_expire);
    } catch (const boost::system::system_error& e) {
      const long v = SSL_get_verify_result(ssl);
      if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
        throw C2sError(ConnectError::hostname_mismatch, "the certificate is not valid for " + domain);
      if (v != X509_V_OK) throw C2sError(ConnectError::certificate_untrusted, X509_verify_cert_error_string(v));
      if (state == State::closed && error) throw *error;
      if (e.code() == asio::error::eof || e.code() == asio::ssl::error::stream_truncated ||
          e.code() == asio::error::connection_reset)
        throw C2sError(ConnectError::tls_failed, "the server closed the connection during the TLS handshake");
      throw C2sError(ConnectError::tls_failed, "TLS handshake failed: " + e.code().message());
    }
    if (!done) throw C2sError(ConnectError::timeout, "TLS handshake not completed within " + seconds_text(timeout));
    // verify_peer already enforces this; keep the check next to the decision.
    if (SSL_get_verify_result(ssl) != X509_V_OK || !SSL_get0_peer_certificate(ssl))
      throw C2sError(ConnectError::certificate_untrusted, "no verified server certificate");
  }

  asio::awaitable<void> authenticate(const ConnectOptions& o, const xml::Element& features) {
    phase = "authentication";
    const xml::Element* mechs = features.child("mechanisms", kSaslNs);
    if (!mechs) throw C2sError(ConnectError::no_supported_mechanism, "the server offers no SASL mechanisms");
    std::vector<std::string> offered;
    for (const xml::Element* m : mechs->children("mechanism", kSaslNs)) {
      if (offered.size() >= kMaxMechanisms)
        throw C2sError(ConnectError::protocol_violation, "more than " + std::to_string(kMaxMechanisms) + " SASL mechanisms");
      offered.push_back(sanitize(m->text(), 40));
    }
    auto has = [&](std::string_view name) { return std::find(offered.begin(), offered.end(), name) != offered.end(); };

    if (has("SCRAM-SHA-256")) {
      co_await authenticate_scram(o, xmpp::ScramHash::sha256);
    } else if (has("SCRAM-SHA-1")) {
      co_await authenticate_scram(o, xmpp::ScramHash::sha1);
    } else if (has("PLAIN") && tls) {
      co_await authenticate_plain(o);
    } else {
      std::string list;
      for (const auto& m : offered) list += (list.empty() ? "" : ", ") + m;
      throw C2sError(ConnectError::no_supported_mechanism,
                     "the server offers " + (list.empty() ? std::string("none") : list) +
                         "; we support SCRAM-SHA-256, SCRAM-SHA-1 and PLAIN (over TLS only)");
    }
  }

  [[noreturn]] void sasl_failed(const xml::Element& failure) {
    throw C2sError(ConnectError::auth_failed, describe_condition(failure, kSaslNs));
  }

  // A <challenge/>, <success/> or <failure/>; anything else is a violation.
  asio::awaitable<xml::Element> next_sasl_element() {
    xml::Element el = co_await next_element();
    if (el.ns() != kSaslNs || (el.name() != "challenge" && el.name() != "success" && el.name() != "failure"))
      throw C2sError(ConnectError::protocol_violation, "unexpected " + element_name(el) + during());
    if (el.name() == "failure") sasl_failed(el);
    co_return el;
  }

  std::string decoded_payload(const xml::Element& el) {
    auto payload = sasl_payload(el);
    if (!payload) throw C2sError(ConnectError::protocol_violation, "SASL data from the server is not valid base64");
    return std::move(*payload);
  }

  asio::awaitable<void> authenticate_scram(const ConnectOptions& o, xmpp::ScramHash hash) {
    mechanism = std::string(xmpp::scram_mechanism_name(hash));
    xmpp::ScramClient scram(hash, local, o.password, random_token(24));
    auto first = scram.client_first();
    if (!first) throw C2sError(ConnectError::auth_failed, mechanism + ": " + scram.error_detail());
    const std::string first_b64 =
        crypto::base64_encode(crypto::ByteView(reinterpret_cast<const std::uint8_t*>(first->data()), first->size()));
    const std::string auth = sasl_auth(mechanism, first_b64);
    co_await write_timed(auth);

    xml::Element challenge = co_await next_sasl_element();
    if (challenge.name() != "challenge")
      throw C2sError(ConnectError::protocol_violation, "the server reported success before SCRAM completed");
    const std::string server_first = decoded_payload(challenge);
    auto final = scram.client_final(server_first);
    if (!final) throw C2sError(ConnectError::auth_failed, mechanism + ": " + scram.error_detail());
    std::string final_b64 =
        crypto::base64_encode(crypto::ByteView(reinterpret_cast<const std::uint8_t*>(final->data()), final->size()));
    std::string wire = sasl_response(final_b64);
    {
      WipeString w1(*final), w2(final_b64), w3(wire);
      co_await write_timed(wire);
    }

    xml::Element answer = co_await next_sasl_element();
    if (answer.name() == "challenge") {
      // Some servers send server-final-message as a challenge and <success/> without data.
      const std::string server_final = decoded_payload(answer);
      co_await verify_scram_final(scram, server_final);
      const std::string empty_response = sasl_response(std::string());
      co_await write_timed(empty_response);
      answer = co_await next_sasl_element();
      if (answer.name() != "success")
        throw C2sError(ConnectError::protocol_violation, "expected <success/> after the SCRAM exchange");
    }
    const std::string server_final = decoded_payload(answer);
    if (!server_final.empty()) {
      if (scram.server_verified())
        throw C2sError(ConnectError::protocol_violation, "a second SCRAM server-final-message");
      co_await verify_scram_final(scram, server_final);
    }
    if (!scram.server_verified())
      throw C2sError(ConnectError::auth_failed,
                     "the server reported success without proving that it knows the password (no SCRAM signature)");
  }

  asio::awaitable<void> verify_scram_final(xmpp::ScramClient& scram, const std::string& server_final) {
    auto ok = scram.verify_server_final(server_final);
    if (!ok) throw C2sError(ConnectError::auth_failed, mechanism + ": " + scram.error_detail());
    co_return;
  }

  asio::awaitable<void> authenticate_plain(const ConnectOptions& o) {
    mechanism = "PLAIN";
    for (std::uint8_t c : o.password.view())
      if (c == 0) throw std::invalid_argument("the password contains a NUL byte");
    // authzid (empty) NUL authcid NUL passwd (RFC 4616)
    crypto::SecretBytes message(local.size() + 2 + o.password.size());
    std::uint8_t* p = message.data();
    *p++ = 0;
    std::copy(local.begin(), local.end(), p);
    p += local.size();
    *p++ = 0;
    std::copy(o.password.view().begin(), o.password.view().end(), p);
    std::string b64 = crypto::base64_encode(message.view());
    std::string wire = sasl_auth("PLAIN", b64);
    {
      WipeString w1(b64), w2(wire);
      co_await write_timed(wire);
    }
    xml::Element answer = co_await next_sasl_element();
    if (answer.name() != "success")
      throw C2sError(ConnectError::protocol_violation, "a challenge in the PLAIN exchange");
  }

  // Waits for the iq with `id` during negotiation; other stanzas (not expected here) are queued.
  asio::awaitable<xml::Element> negotiation_iq(const std::string& id) {
    for (std::size_t others = 0;; ++others) {
      xml::Element el = co_await next_element();
      if (el.ns() == xmpp::kClientNs && el.name() == "iq" && el.attr("id") == id) {
        const auto type = el.attr("type");
        if (type == "result" || type == "error") co_return el;
      }
      if (others >= kMaxStanzasBeforeBind || el.ns() != xmpp::kClientNs)
        throw C2sError(ConnectError::protocol_violation, "unexpected " + element_name(el) + during());
      inbox.push_back(std::move(el));
    }
  }

  asio::awaitable<Jid> bind(const std::string& resource, const xml::Element& features) {
    phase = "resource binding";
    if (!features.child("bind", kBindNs)) throw C2sError(ConnectError::bind_failed, "the server offers no resource binding");
    const std::string id = new_id();
    const std::string request = bind_request(id, resource);
    co_await write_timed(request);
    xml::Element answer = co_await negotiation_iq(id);
    if (answer.attr("type") == "error") throw C2sError(ConnectError::bind_failed, describe_stanza_error(answer));
    const xml::Element* b = answer.child("bind", kBindNs);
    const xml::Element* j = b ? b->child("jid", kBindNs) : nullptr;
    if (!j) throw C2sError(ConnectError::bind_failed, "the bind result carries no JID");
    auto full = Jid::parse(j->text());
    if (!full || full->is_bare()) throw C2sError(ConnectError::bind_failed, "the server bound an invalid JID");
    if (full->bare_string() != bare)
      throw C2sError(ConnectError::bind_failed, "the server bound " + sanitize(full->to_string(), 100) + ", not a resource of " + bare);
    // A resource other than the requested one is fine: RFC 6120 §7.6.2.1 lets the server pick.

    const xml::Element* session = features.child("session", kSessionNs);
    if (session && !session->child("optional", kSessionNs)) {
      phase = "session establishment";
      const std::string sid = new_id();
      const std::string session_iq = session_request(sid);
      co_await write_timed(session_iq);
      xml::Element s = co_await negotiation_iq(sid);
      if (s.attr("type") == "error")
        throw C2sError(ConnectError::bind_failed, "session establishment failed: " + describe_stanza_error(s));
    }
    co_return *full;
  }

  asio::awaitable<Jid> negotiate(const ConnectOptions& o) {
    auto parsed = Jid::parse(o.jid);
    if (!parsed || !parsed->is_bare() || parsed->local().empty())
      throw std::invalid_argument("ConnectOptions::jid must be a bare JID with a localpart, e.g. alice@example.org");
    if (!o.resource.empty() && !parsed->with_resource(o.resource))
      throw std::invalid_argument("ConnectOptions::resource is not a valid resourcepart");
    if (o.timeout.count() <= 0) throw std::invalid_argument("ConnectOptions::timeout must be positive");
    domain = parsed->domain();
    bare = parsed->bare_string();
    local = parsed->local();
    timeout = o.timeout;
    keepalive = o.keepalive;
    max_queued = std::max<std::size_t>(1, o.max_queued_stanzas);
    xml::StreamLimits limits;
    limits.max_stanza_bytes = std::max<std::size_t>(16 * 1024, o.max_stanza_bytes);
    parser = xml::StreamParser(limits);
    max_stanza_bytes = limits.max_stanza_bytes;

    if (!o.insecure_plaintext) setup_tls_context(o.ca_file);
    const std::string host = o.host.empty() ? domain : o.host;
    co_await tcp_connect(host, o.port);

    phase = "stream negotiation";
    xml::Element features = co_await open_stream();
    const xml::Element* starttls_feature = features.child("starttls", kTlsNs);
    if (o.insecure_plaintext) {
      if (starttls_feature && starttls_feature->child("required", kTlsNs))
        throw C2sError(ConnectError::tls_required,
                       "it refuses to go on without STARTTLS, and insecure_plaintext forbids TLS");
      if (!features.child("mechanisms", kSaslNs) && starttls_feature)
        throw C2sError(ConnectError::tls_required, "it offers authentication only after STARTTLS");
    } else {
      if (!starttls_feature)
        throw C2sError(ConnectError::tls_failed, "the server does not offer STARTTLS (plaintext needs insecure_plaintext)");
      co_await starttls();
      phase = "stream negotiation over TLS";
      features = co_await open_stream();
    }

    co_await authenticate(o, features);
    phase = "the stream restart after authentication";
    restart_stream("<success/>");
    features = co_await open_stream();

    Jid full = co_await bind(o.resource, features);
    phase.clear();
    co_return full;
  }

  // ---- after connect -------------------------------------------------------------------------

  // No from, our bare or full JID, or our domain: the answer of our own account or server.
  bool from_own_account_or_server(std::optional<std::string_view> from) const {
    if (!from) return true;
    auto j = Jid::parse(*from);
    return j && (j->to_string() == bare || j->to_string() == domain || (jid && *j == *jid));
  }

  bool response_from_matches(const PendingIq& p, std::optional<std::string_view> from) const {
    if (p.to.empty()) return from_own_account_or_server(from);
    auto to = Jid::parse(p.to);
    if (!from) return to && (to->to_string() == bare || to->to_string() == domain);
    auto f = Jid::parse(*from);
    return to && f && *to == *f;
  }

  void handle_stanza(xml::Element el) {
    if (el.ns() == xml::kStreamNs && el.name() == "error") {
      shutdown(C2sError(ConnectError::stream_error, describe_condition(el, kStreamErrorNs)));
      return;
    }
    if (el.ns() != xmpp::kClientNs || (el.name() != "message" && el.name() != "presence" && el.name() != "iq")) {
      shutdown(C2sError(ConnectError::protocol_violation, "unexpected first-level element " + element_name(el)));
      return;
    }
    if (el.name() == "iq") {
      const auto type = el.attr("type");
      const auto id = el.attr("id");
      if ((type == "result" || type == "error") && id) {
        auto it = pending.find(std::string(*id));
        if (it != pending.end() && !it->second->response && response_from_matches(*it->second, el.attr("from"))) {
          it->second->response.emplace(std::move(el));
          it->second->wake.cancel();
          return;
        }
      }
      // XEP-0199: answer a ping from our server at once, so a server-side liveness check passes.
      if (type == "get" && id && el.child("ping", kPingNs) && el.element_children().size() == 1 &&
          from_own_account_or_server(el.attr("from")) && state == State::up) {
        std::string s;
        xml::serialize_to(xmpp::make_iq_result(el), s, xmpp::kClientNs);
        out.push_back(std::move(s));
        write_signal.cancel();
        return;
      }
    }
    inbox.push_back(std::move(el));
    inbox_signal.cancel();
  }

  asio::awaitable<void> reader(std::shared_ptr<Impl> /*keeps us alive*/) {
    try {
      for (;;) {
        while (state == State::up || state == State::closing) {
          auto ev = parser.next();
          if (!ev) break;
          if (auto* st = std::get_if<xml::StanzaEvent>(&*ev)) {
            handle_stanza(std::move(st->stanza));
          } else if (std::holds_alternative<xml::StreamClosed>(*ev)) {
            if (state == State::closing)
              shutdown(C2sError(ConnectError::disconnected, "connection closed"));
            else
              begin_close(C2sError(ConnectError::disconnected, "the server closed the stream"));
          } else {
            shutdown(C2sError(ConnectError::protocol_violation, "a second stream header"));
          }
        }
        if (state == State::closed) co_return;
        while (inbox.size() >= max_queued && state != State::closed) {
          boost::system::error_code ec;
          co_await reader_signal.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
        if (state == State::closed) co_return;
        const std::size_t n = co_await raw_read_some();
        auto fed = parser.feed(std::string_view(buf.data(), n));
        if (!fed) {
          const std::string what = describe_bad_input(fed.error());
          // Its stanzas before the bad bytes are still delivered below; then the stream ends.
          while (auto ev = parser.next())
            if (auto* st = std::get_if<xml::StanzaEvent>(&*ev)) handle_stanza(std::move(st->stanza));
          shutdown(C2sError(ConnectError::protocol_violation, what));
          co_return;
        }
      }
    } catch (const boost::system::system_error& e) {
      if (state != State::closed) shutdown(network_error(e.code()));
    } catch (const std::exception& e) {
      shutdown(C2sError(ConnectError::protocol_violation, e.what()));
    }
  }

  asio::awaitable<void> writer(std::shared_ptr<Impl> /*keeps us alive*/) {
    try {
      for (;;) {
        if (state == State::closed) co_return;
        if (out.empty()) {
          if (keepalive.count() > 0 && state == State::up)
            write_signal.expires_after(keepalive);
          else
            write_signal.expires_at(Clock::time_point::max());
          boost::system::error_code ec;
          co_await write_signal.async_wait(asio::redirect_error(asio::use_awaitable, ec));
          if (!ec && out.empty() && state == State::up) out.push_back(" ");  // whitespace keepalive
          continue;
        }
        std::string batch;
        while (!out.empty() && batch.size() < kMaxWriteBatch) {
          batch += out.front();
          out.pop_front();
        }
        // A stalled write means a dead peer: end the connection with that reason before the
        // cancelled operations report "operation aborted".
        std::function<void()> on_expire = [this] {
          shutdown(C2sError(ConnectError::timeout,
                            "writing to the server stalled for " + seconds_text(timeout) + ": the peer is gone"));
        };
        if (!co_await with_timeout_void(raw_write(batch), timeout, &on_expire)) co_return;
      }
    } catch (const boost::system::system_error& e) {
      if (state != State::closed) shutdown(network_error(e.code()));
    } catch (const std::exception& e) {
      shutdown(C2sError(ConnectError::disconnected, std::string("write failed: ") + e.what()));
    }
  }

  // Returns once p.response is set or the connection ended.
  asio::awaitable<void> wait_response(std::shared_ptr<PendingIq> p) {
    while (!p->response && state != State::closed && !(state == State::closing && error)) {
      boost::system::error_code ec;
      co_await p->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      auto cs = co_await asio::this_coro::cancellation_state;
      if (cs.cancelled() != asio::cancellation_type::none) throw boost::system::system_error(asio::error::operation_aborted);
    }
  }

  void throw_if_down() const {
    if (state == State::up) return;
    if (error) throw *error;
    throw C2sError(ConnectError::disconnected, "not connected");
  }
};

// ---------------------------------------------------------------------------------------------

C2sConnection::C2sConnection(asio::any_io_executor ex) : impl_(std::make_shared<Impl>(std::move(ex))) {}

C2sConnection::~C2sConnection() {
  // Polite when up (the writer and linger keep Impl alive); immediate otherwise.
  impl_->begin_close(C2sError(ConnectError::disconnected, "the connection object was destroyed"));
}

asio::awaitable<Jid> C2sConnection::connect(const ConnectOptions& options) {
  std::shared_ptr<Impl> self = impl_;
  if (self->state != Impl::State::idle) throw std::logic_error("C2sConnection::connect called twice");
  self->state = Impl::State::connecting;
  std::optional<C2sError> failure;
  try {
    Jid full = co_await self->negotiate(options);
    if (self->state != Impl::State::connecting) {
      failure.emplace(self->error ? *self->error : C2sError(ConnectError::disconnected, "closed during connect"));
    } else {
      self->state = Impl::State::up;
      self->jid = full;
      asio::co_spawn(self->ex, self->reader(self), asio::detached);
      asio::co_spawn(self->ex, self->writer(self), asio::detached);
      co_return full;
    }
  } catch (const C2sError& e) {
    failure.emplace(self->state == Impl::State::closed && self->error ? *self->error : e);
  } catch (const boost::system::system_error& e) {
    failure.emplace(self->network_error(e.code()));
  } catch (const std::invalid_argument&) {
    self->shutdown(C2sError(ConnectError::disconnected, "invalid options"));
    throw;
  } catch (const std::exception& e) {
    // Broken invariants (OpenSSL failures, logic errors): end the connection, then report.
    self->shutdown(C2sError(ConnectError::disconnected, std::string("internal error: ") + e.what()));
    throw;
  }
  // Where the server is still talking to us (it refused us, or we refused what it offers), end
  // the stream properly before closing the socket; best effort, briefly.
  const ConnectError code = failure->code();
  if (self->state == Impl::State::connecting &&
      (code == ConnectError::auth_failed || code == ConnectError::no_supported_mechanism ||
       code == ConnectError::bind_failed || code == ConnectError::tls_required)) {
    try {
      (void)co_await with_timeout_void(self->raw_write("</stream:stream>"), std::chrono::seconds(1));
    } catch (const std::exception&) {
    }
  }
  self->shutdown(*failure);
  throw *failure;
}

asio::awaitable<xml::Element> C2sConnection::next_stanza() {
  std::shared_ptr<Impl> self = impl_;
  for (;;) {
    if (!self->inbox.empty()) {
      xml::Element e = std::move(self->inbox.front());
      self->inbox.pop_front();
      self->reader_signal.cancel();
      co_return e;
    }
    if (self->state != Impl::State::up || self->error) {
      if (self->error) throw *self->error;
      throw C2sError(ConnectError::disconnected, "not connected");
    }
    boost::system::error_code ec;
    co_await self->inbox_signal.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    // Woken by cancellation from outside (e.g. `||`): leave what arrived for the next call.
    auto cs = co_await asio::this_coro::cancellation_state;
    if (cs.cancelled() != asio::cancellation_type::none) throw boost::system::system_error(asio::error::operation_aborted);
  }
}

asio::awaitable<xml::Element> C2sConnection::next_stanza(std::chrono::steady_clock::duration timeout) {
  std::shared_ptr<Impl> self = impl_;
  auto e = co_await with_timeout(next_stanza(), timeout);
  if (!e) throw C2sError(ConnectError::timeout, "no stanza within " + seconds_text(timeout));
  co_return std::move(*e);
}

void C2sConnection::send(const xml::Element& stanza) {
  if (stanza.name() != "message" && stanza.name() != "presence" && stanza.name() != "iq")
    throw std::invalid_argument("C2sConnection::send: not a stanza: <" + stanza.name() + "/>");
  if (!stanza.ns().empty() && stanza.ns() != xmpp::kClientNs)
    throw std::invalid_argument("C2sConnection::send: stanza namespace must be jabber:client");
  impl_->throw_if_down();
  std::string s;
  if (stanza.ns().empty())
    xml::serialize_to(xmpp::rename_namespace(stanza, "", xmpp::kClientNs), s, xmpp::kClientNs);
  else
    xml::serialize_to(stanza, s, xmpp::kClientNs);
  impl_->out.push_back(std::move(s));
  impl_->write_signal.cancel();
}

asio::awaitable<xml::Element> C2sConnection::iq(xml::Element iq, std::chrono::seconds timeout) {
  std::shared_ptr<Impl> self = impl_;
  if (iq.name() != "iq" || (iq.attr("type") != "get" && iq.attr("type") != "set"))
    throw std::invalid_argument("C2sConnection::iq: needs an <iq type='get'/'set'/>");
  if (!iq.attr("id") || iq.attr("id")->empty()) iq.set_attr("id", self->new_id());
  const std::string id(*iq.attr("id"));
  if (self->pending.count(id)) throw std::invalid_argument("C2sConnection::iq: id already waiting for an answer");
  self->throw_if_down();
  auto slot = std::make_shared<Impl::PendingIq>(self->ex);
  slot->to = std::string(iq.attr("to").value_or(""));
  send(iq);
  self->pending.emplace(id, slot);
  bool answered = false;
  try {
    answered = co_await with_timeout_void(self->wait_response(slot), timeout);
  } catch (...) {
    self->pending.erase(id);
    throw;
  }
  self->pending.erase(id);
  if (slot->response) co_return std::move(*slot->response);
  if (answered || self->state == Impl::State::closed) {
    if (self->error) throw *self->error;
    throw C2sError(ConnectError::disconnected, "connection closed");
  }
  throw C2sError(ConnectError::timeout, "no answer to iq '" + id + "' within " + seconds_text(timeout));
}

asio::awaitable<void> C2sConnection::ping(std::chrono::seconds timeout) {
  std::shared_ptr<Impl> self = impl_;
  xml::Element req("iq", std::string(xmpp::kClientNs));
  req.set_attr("type", "get");
  req.set_attr("to", self->domain);
  req.add_child(xml::Element("ping", std::string(kPingNs)));
  try {
    (void)co_await iq(std::move(req), timeout);
  } catch (const C2sError& e) {
    if (e.code() != ConnectError::timeout) throw;
    self->shutdown(C2sError(ConnectError::timeout,
                            "no answer to a ping within " + seconds_text(timeout) + ": the connection is dead"));
    throw *self->error;
  }
}

void C2sConnection::close() {
  impl_->begin_close(C2sError(ConnectError::disconnected, "connection closed"));
}

bool C2sConnection::connected() const noexcept { return impl_->state == Impl::State::up; }
const std::optional<Jid>& C2sConnection::jid() const noexcept { return impl_->jid; }
const std::string& C2sConnection::mechanism() const noexcept { return impl_->mechanism; }
bool C2sConnection::encrypted() const noexcept { return impl_->tls.has_value() && impl_->state != Impl::State::closed; }

std::optional<C2sError> C2sConnection::error() const {
  if (impl_->state == Impl::State::up) return std::nullopt;
  return impl_->error;
}

}  // namespace multiend::client
