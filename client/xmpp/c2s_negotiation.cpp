// Connecting and negotiating the stream (RFC 6120 §4-§7): TCP, the stream headers and
// features, the order of STARTTLS → SASL → bind (with the legacy session iq when a server
// requires it), and the timed reads and writes they use. Every wait here is bounded by
// ConnectOptions::timeout. The TLS and SASL steps themselves are in c2s_tls.cpp and
// c2s_sasl.cpp.
#include <boost/asio/connect.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <functional>
#include <utility>
#include <variant>

#include "client/xmpp/c2s_impl.hpp"
#include "client/xmpp/c2s_text.hpp"
#include "client/xmpp/c2s_timeout.hpp"
#include "protocol/xmpp/namespaces.hpp"

namespace multiend::client {

using namespace c2s_detail;

namespace {

constexpr std::size_t kMaxFeatures = 64;
constexpr std::size_t kMaxStanzasBeforeBind = 16;

}  // namespace

C2sError C2sConnection::Impl::timeout_error() const {
  return C2sError(ConnectError::timeout, "no answer from the server within " + seconds_text(timeout) + during());
}

// ---- negotiation I/O: bounded by `timeout` --------------------------------------------------

asio::awaitable<void> C2sConnection::Impl::write_timed(std::string_view data) {
  std::function<void()> on_expire = [this] {
    boost::system::error_code ec;
    lowest().cancel(ec);
  };
  if (!co_await with_timeout_void(raw_write(data), timeout, &on_expire))
    throw C2sError(ConnectError::timeout, "writing to the server stalled for " + seconds_text(timeout) + during());
}

asio::awaitable<std::size_t> C2sConnection::Impl::read_timed() {
  std::function<void()> on_expire = [this] {
    boost::system::error_code ec;
    lowest().cancel(ec);
  };
  auto n = co_await with_timeout(raw_read_some(), timeout, &on_expire);
  if (!n) throw timeout_error();
  co_return *n;
}

void C2sConnection::Impl::feed(std::size_t n) {
  auto fed = parser.feed(std::string_view(buf.data(), n));
  if (!fed) {
    throw C2sError(ConnectError::protocol_violation, describe_bad_input(fed.error()) + during());
  }
}

asio::awaitable<xml::StreamEvent> C2sConnection::Impl::next_event() {
  for (;;) {
    if (auto ev = parser.next()) co_return std::move(*ev);
    const std::size_t n = co_await read_timed();
    feed(n);
  }
}

// The next first-level element during negotiation; stream errors and ends become C2sError.
asio::awaitable<xml::Element> C2sConnection::Impl::next_element() {
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

// ---- stream headers -------------------------------------------------------------------------

void C2sConnection::Impl::check_stream_header(const xml::StreamOpened& opened) const {
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
asio::awaitable<xml::Element> C2sConnection::Impl::open_stream() {
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
void C2sConnection::Impl::restart_stream(const char* after) {
  if (parser.pending_bytes() != 0 || parser.next())
    throw C2sError(ConnectError::protocol_violation,
                   std::string("the server sent data after ") + after + " before the stream restart");
  parser.reset();
}

// ---- connect, bind --------------------------------------------------------------------------

asio::awaitable<void> C2sConnection::Impl::tcp_connect(const std::string& host, std::uint16_t port) {
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

// Waits for the iq with `id` during negotiation; other stanzas (not expected here) are queued.
asio::awaitable<xml::Element> C2sConnection::Impl::negotiation_iq(const std::string& id) {
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

asio::awaitable<Jid> C2sConnection::Impl::bind(const std::string& resource, const xml::Element& features) {
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

asio::awaitable<Jid> C2sConnection::Impl::negotiate(const ConnectOptions& o) {
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

}  // namespace multiend::client
