// The c2s connection once it is up: reading and routing stanzas, writing the queue with
// whitespace keepalives, and ending the connection (at once, or politely with
// </stream:stream>). Also the raw socket/TLS I/O that negotiation shares. What the stanzas mean
// is the application's business; the only stanzas handled here are answers to our own iqs and
// XEP-0199 pings from our own server.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <exception>
#include <functional>
#include <utility>
#include <variant>

#include "client/xmpp/c2s_impl.hpp"
#include "client/xmpp/c2s_text.hpp"
#include "client/xmpp/c2s_timeout.hpp"
#include "protocol/xml/serializer.hpp"
#include "protocol/xmpp/namespaces.hpp"
#include "protocol/xmpp/stanza.hpp"

namespace multiend::client {

using namespace c2s_detail;

namespace {

constexpr std::size_t kMaxWriteBatch = 256 * 1024;
constexpr auto kCloseLinger = std::chrono::seconds(5);

}  // namespace

C2sConnection::Impl::Impl(asio::any_io_executor executor)
    : ex(std::move(executor)), socket(ex), write_signal(ex), inbox_signal(ex), reader_signal(ex), linger_timer(ex) {
  // Waiters sleep on these until cancel(): the expiry is never changed again, so waking one
  // waiter never disturbs another.
  inbox_signal.expires_at(Clock::time_point::max());
  reader_signal.expires_at(Clock::time_point::max());
  id_prefix = random_token(6);
  for (char& c : id_prefix)
    if (c == '+' || c == '/') c = 'x';
}

// ---- ending ---------------------------------------------------------------------------------

void C2sConnection::Impl::wake_all() {
  if (state == State::closed) linger_timer.cancel();
  write_signal.cancel();
  inbox_signal.cancel();
  reader_signal.cancel();
  for (auto& [id, p] : pending) p->wake.cancel();
}

// Ends the connection at once. The first error recorded is the one reported.
void C2sConnection::Impl::shutdown(const C2sError& err) {
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
void C2sConnection::Impl::begin_close(const C2sError& err) {
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
asio::awaitable<void> C2sConnection::Impl::linger(std::shared_ptr<Impl> self) {
  if (self->state == State::closed) co_return;  // ended before we started
  self->linger_timer.expires_after(kCloseLinger);
  boost::system::error_code ec;
  co_await self->linger_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  self->shutdown(C2sError(ConnectError::disconnected, "connection closed"));
}

C2sError C2sConnection::Impl::network_error(const boost::system::error_code& ec) const {
  if (state == State::closed && error) return *error;
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated || ec == asio::error::connection_reset ||
      ec == asio::error::broken_pipe || ec == asio::error::connection_aborted)
    return C2sError(ConnectError::disconnected, "the server closed the connection" + during());
  return C2sError(ConnectError::disconnected, "network error" + during() + ": " + ec.message());
}

void C2sConnection::Impl::throw_if_down() const {
  if (state == State::up) return;
  if (error) throw *error;
  throw C2sError(ConnectError::disconnected, "not connected");
}

// ---- raw I/O --------------------------------------------------------------------------------

asio::awaitable<std::size_t> C2sConnection::Impl::raw_read_some() {
  if (tls) co_return co_await tls->async_read_some(asio::buffer(buf), asio::use_awaitable);
  co_return co_await socket.async_read_some(asio::buffer(buf), asio::use_awaitable);
}

asio::awaitable<void> C2sConnection::Impl::raw_write(std::string_view data) {
  if (tls)
    co_await asio::async_write(*tls, asio::buffer(data.data(), data.size()), asio::use_awaitable);
  else
    co_await asio::async_write(socket, asio::buffer(data.data(), data.size()), asio::use_awaitable);
}

std::string C2sConnection::Impl::describe_bad_input(boost::system::error_code ec) const {
  if (ec == Errc::xml_too_large)
    return "a stanza from the server is too large (limit " + std::to_string(max_stanza_bytes) + " bytes)";
  if (ec == Errc::xml_too_deep) return "a stanza from the server is nested too deeply";
  return "bad XML from the server: " + ec.message();
}

// ---- after connect --------------------------------------------------------------------------

// No from, our bare or full JID, or our domain: the answer of our own account or server.
bool C2sConnection::Impl::from_own_account_or_server(std::optional<std::string_view> from) const {
  if (!from) return true;
  auto j = Jid::parse(*from);
  return j && (j->to_string() == bare || j->to_string() == domain || (jid && *j == *jid));
}

bool C2sConnection::Impl::response_from_matches(const PendingIq& p, std::optional<std::string_view> from) const {
  if (p.to.empty()) return from_own_account_or_server(from);
  auto to = Jid::parse(p.to);
  if (!from) return to && (to->to_string() == bare || to->to_string() == domain);
  auto f = Jid::parse(*from);
  return to && f && *to == *f;
}

void C2sConnection::Impl::handle_stanza(xml::Element el) {
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

asio::awaitable<void> C2sConnection::Impl::reader(std::shared_ptr<Impl> /*keeps us alive*/) {
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

asio::awaitable<void> C2sConnection::Impl::writer(std::shared_ptr<Impl> /*keeps us alive*/) {
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
asio::awaitable<void> C2sConnection::Impl::wait_response(std::shared_ptr<PendingIq> p) {
  while (!p->response && state != State::closed && !(state == State::closing && error)) {
    boost::system::error_code ec;
    co_await p->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    auto cs = co_await asio::this_coro::cancellation_state;
    if (cs.cancelled() != asio::cancellation_type::none) throw boost::system::system_error(asio::error::operation_aborted);
  }
}

}  // namespace multiend::client
