// The public C2sConnection members (see c2s_connection.hpp): connect() runs the negotiation
// and starts the reader and writer; next_stanza(), send(), iq() and ping() work on the inbox,
// the write queue and the pending iqs of C2sConnection::Impl (c2s_impl.hpp). Checks arguments
// and state here; the protocol work is in the other c2s_*.cpp files.
#include "client/xmpp/c2s_connection.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <utility>

#include "client/xmpp/c2s_impl.hpp"
#include "client/xmpp/c2s_text.hpp"
#include "client/xmpp/c2s_timeout.hpp"
#include "protocol/xml/serializer.hpp"
#include "protocol/xmpp/namespaces.hpp"
#include "protocol/xmpp/stanza.hpp"

namespace multiend::client {

using namespace c2s_detail;

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
std::size_t C2sConnection::queued_stanzas() const noexcept { return impl_->inbox.size(); }
const std::optional<Jid>& C2sConnection::jid() const noexcept { return impl_->jid; }
const std::string& C2sConnection::mechanism() const noexcept { return impl_->mechanism; }
bool C2sConnection::encrypted() const noexcept { return impl_->tls.has_value() && impl_->state != Impl::State::closed; }

std::optional<C2sError> C2sConnection::error() const {
  if (impl_->state == Impl::State::up) return std::nullopt;
  return impl_->error;
}

}  // namespace multiend::client
