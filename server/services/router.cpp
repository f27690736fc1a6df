#include "server/services/router.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <chrono>

#include "protocol/omemo/constants.hpp"
#include "protocol/xml/serializer.hpp"
#include "protocol/xmpp/namespaces.hpp"
#include "protocol/xmpp/stanza.hpp"
#include "server/services/addressing.hpp"

namespace multiend::server {
namespace {

xml::Element feature(std::string_view var) {
  xml::Element f("feature", std::string(xmpp::kDiscoInfoNs));
  f.set_attr("var", std::string(var));
  return f;
}

xml::Element identity(std::string category, std::string type, std::string name) {
  xml::Element i("identity", std::string(xmpp::kDiscoInfoNs));
  i.set_attr("category", std::move(category));
  i.set_attr("type", std::move(type));
  if (!name.empty()) i.set_attr("name", std::move(name));
  return i;
}

xml::Element disco_info(bool service) {
  xml::Element q("query", std::string(xmpp::kDiscoInfoNs));
  if (service) {
    q.add_child(identity("component", "archive", "Multiend archive"));
    for (auto f : {xmpp::kDiscoInfoNs, xmpp::kMamNs, std::string_view("urn:xmpp:mam:2#extended"), xmpp::kSidNs,
                   xmpp::kReceiptsNs, xmpp::kAddressNs, xmpp::kMultiendNs, std::string_view("urn:xmpp:ping")})
      q.add_child(feature(f));
  } else {
    q.add_child(identity("pubsub", "pep", ""));
    for (auto f : {xmpp::kDiscoInfoNs, xmpp::kPubsubNs, std::string_view("http://jabber.org/protocol/pubsub#publish"),
                   std::string_view("http://jabber.org/protocol/pubsub#publish-options"),
                   std::string_view("http://jabber.org/protocol/pubsub#retrieve-items"),
                   std::string_view("http://jabber.org/protocol/pubsub#retract-items"),
                   std::string_view("http://jabber.org/protocol/pubsub#subscribe"),
                   std::string_view("http://jabber.org/protocol/pubsub#persistent-items"),
                   std::string_view("http://jabber.org/protocol/pubsub#access-open"),
                   std::string_view("http://jabber.org/protocol/pubsub#item-ids"), xmpp::kMultiendNs})
      q.add_child(feature(f));
  }
  return q;
}

}  // namespace

void Router::error(const xml::Element& stanza, xmpp::ErrorType type, const char* condition, std::string text) {
  ctx_.metrics.error(condition);
  ctx_.stream.send(
      xmpp::make_error_reply(stanza, {type, condition, std::move(text), std::nullopt}),
      "error");
}

namespace {

AccountLimits::Settings limit_settings(const Config& c) {
  AccountLimits::Settings s;
  s.max_inflight = c.max_inflight;
  s.max_inflight_bytes = c.max_inflight_bytes;
  s.max_inflight_per_account = c.max_inflight_per_account;
  s.max_inflight_bytes_per_account = c.max_inflight_bytes_per_account;
  s.message_rate_per_account = c.message_rate_per_account;
  s.message_burst_per_account = c.message_burst_per_account;
  s.max_mam_queries_per_account = c.max_mam_queries_per_account;
  return s;
}

// What a stanza is, for the limits: a message to the archive, a MAM query, or anything else.
AccountLimits::Kind kind_of(const xml::Element& stanza) {
  if (stanza.name() == "message") return AccountLimits::Kind::message;
  if (stanza.name() == "iq") {
    for (const xml::Element* p : stanza.element_children())
      if (p->name() == "query" && p->ns() == xmpp::kMamNs) return AccountLimits::Kind::mam_query;
  }
  return AccountLimits::Kind::other;
}

}  // namespace

Router::Router(ServiceContext ctx, ArchiveService& archive, PubsubService& pubsub, MamService& mam)
    : ctx_(ctx), archive_(archive), pubsub_(pubsub), mam_(mam), limits_(limit_settings(ctx.config)) {
  ctx_.metrics.inflight_limit.Set(static_cast<double>(ctx.config.max_inflight));
}

void Router::dispatch(xml::Element stanza) {
  ctx_.metrics.stanza_in(stanza.name());
  if (!accepting_) return;
  const std::string type(stanza.attr("type").value_or(""));
  if (type == "error" || type == "result") return;  // nothing is waiting for these
  if (stanza.name() == "presence") return;         // nothing to do, nothing to answer
  // The account is the bare JID the XMPP server stamped; a stanza without a valid one is
  // refused by its handler, but is counted (under "") until then.
  std::string account;
  if (auto from = Jid::parse(stanza.attr("from").value_or(""))) account = from->bare_string();
  const std::size_t bytes = stanza.memory_bytes();
  const AccountLimits::Kind kind = kind_of(stanza);
  const auto now = std::chrono::steady_clock::now();
  if (const char* limit = limits_.admit(account, bytes, kind, now)) {
    ctx_.metrics.limit(limit);
    error(stanza, xmpp::ErrorType::wait, "resource-constraint", std::string(limit) + ": busy, retry later");
    return;
  }
  ctx_.metrics.inflight.Set(static_cast<double>(limits_.inflight()));
  asio::co_spawn(ctx_.stream_executor(), handle(std::move(stanza)),
                 [this, account = std::move(account), bytes, kind](std::exception_ptr ep) {
                   limits_.release(account, bytes, kind, std::chrono::steady_clock::now());
                   ctx_.metrics.inflight.Set(static_cast<double>(limits_.inflight()));
                   if (ep) {
                     try {
                       std::rethrow_exception(ep);
                     } catch (const std::exception& e) {
                       spdlog::error("unhandled error in a stanza handler: {}", e.what());
                       ctx_.metrics.error("internal");
                     }
                   }
                 });
}

asio::awaitable<void> Router::handle(xml::Element stanza) {
  const Config& cfg = ctx_.config;
  if (stanza.ns() != xmpp::kComponentNs) co_return;
  auto to = Jid::parse(stanza.attr("to").value_or(""));
  if (!to) co_return;
  const std::string& name = stanza.name();
  const std::string type(stanza.attr("type").value_or(name == "message" ? "normal" : ""));

  if (name == "message") {
    if (to->local().empty() && to->domain() == cfg.component_domain) co_await archive_.handle_message(std::move(stanza));
    else if (type != "error" && type != "headline") error(stanza, xmpp::ErrorType::cancel, "service-unavailable", "send messages to " + cfg.component_domain);
    co_return;
  }
  if (name != "iq") co_return;  // presence: nothing to do
  if (type != "get" && type != "set") {
    error(stanza, xmpp::ErrorType::modify, "bad-request", "iq type must be get or set");
    co_return;
  }
  const auto payloads = stanza.element_children();
  if (payloads.size() != 1) {
    error(stanza, xmpp::ErrorType::modify, "bad-request", "an iq carries exactly one payload");
    co_return;
  }
  const xml::Element& payload = *payloads.front();
  // Messages are measured where they are stored; requests that carry data are measured here.
  if (type == "set" && xml::serialize(stanza).size() > cfg.max_stanza_bytes) {
    error(stanza, xmpp::ErrorType::modify, "not-acceptable",
          "stanza exceeds " + std::to_string(cfg.max_stanza_bytes) + " bytes");
    co_return;
  }
  if (payload.name() == "query" && payload.ns() == xmpp::kDiscoInfoNs && type == "get") {
    const bool service = to->local().empty();
    if (!service && !owner_of_node_jid(cfg, *to)) {
      error(stanza, xmpp::ErrorType::cancel, "item-not-found");
      co_return;
    }
    ctx_.stream.send(xmpp::make_iq_result(stanza, disco_info(service)), "disco");
    co_return;
  }
  if (payload.name() == "ping" && payload.ns() == "urn:xmpp:ping" && type == "get") {
    ctx_.stream.send(xmpp::make_iq_result(stanza), "ping");
    co_return;
  }
  if (to->local().empty()) {
    if (payload.name() == "query" && payload.ns() == xmpp::kMamNs && type == "set") {
      co_await mam_.handle_query(std::move(stanza));
      co_return;
    }
    if (payload.ns() == xmpp::kPubsubNs || payload.ns() == xmpp::kMultiendNs) {
      error(stanza, xmpp::ErrorType::cancel, "feature-not-implemented",
            "OMEMO nodes live at user@" + cfg.component_domain);
      co_return;
    }
  } else if (auto owner = owner_of_node_jid(cfg, *to)) {
    if (payload.name() == "query" && payload.ns() == xmpp::kMamNs && type == "set") {
      // Each account reads its own archive only; its own node JID works as an alias.
      auto from = user_sender(cfg, stanza);
      if (!from || from->bare_string() != *owner) {
        error(stanza, xmpp::ErrorType::auth, "forbidden", "you may only query your own archive");
        co_return;
      }
      co_await mam_.handle_query(std::move(stanza));
      co_return;
    }
    co_await pubsub_.handle_iq(std::move(stanza), std::move(*owner));
    co_return;
  }
  error(stanza, xmpp::ErrorType::cancel, "service-unavailable");
}

}  // namespace multiend::server
