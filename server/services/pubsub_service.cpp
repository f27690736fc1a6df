#include "server/services/pubsub_service.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "protocol/crypto/base64.hpp"
#include "protocol/omemo/bundle.hpp"
#include "protocol/omemo/constants.hpp"
#include "protocol/omemo/device_list.hpp"
#include "protocol/xmpp/namespaces.hpp"
#include "protocol/xmpp/pubsub_request.hpp"
#include "protocol/xmpp/stanza.hpp"
#include "server/db/device_store.hpp"
#include "server/services/addressing.hpp"

namespace multiend::server {
namespace {

using xmpp::ErrorType;

struct Failure {
  xmpp::StanzaError error;
};

Failure fail(ErrorType t, std::string cond, std::string text = {}) { return {{t, std::move(cond), std::move(text), std::nullopt}}; }

// One account cannot register devices without end (each one costs storage, and every
// all-bundles answer and device-list event grows with them).
Failure device_limit(std::size_t max) {
  return fail(ErrorType::modify, "policy-violation",
              "max_devices_per_account: an account may have at most " + std::to_string(max) + " devices");
}

Failure invalid_jid(std::string text) {
  return {{ErrorType::modify, "bad-request", std::move(text),
           xml::Element("invalid-jid", std::string(xmpp::kPubsubErrorsNs))}};
}

Failure precondition_not_met(std::string text) {
  return {{ErrorType::cancel, "conflict", std::move(text),
           xml::Element("precondition-not-met", std::string(xmpp::kPubsubErrorsNs))}};
}

// OMEMO 2 asks for access_model=open and max_items=max; those are what we do anyway.
std::optional<Failure> check_publish_options(const std::vector<std::pair<std::string, std::string>>& options) {
  for (const auto& [var, value] : options) {
    if (var == "pubsub#access_model" && value == "open") continue;
    if (var == "pubsub#max_items" && value == "max") continue;
    if (var == "pubsub#persist_items" && (value == "true" || value == "1")) continue;
    return precondition_not_met("unsupported publish option " + var + "=" + value);
  }
  return std::nullopt;
}

xml::Element device_list_payload(const std::vector<std::uint32_t>& ids) {
  omemo::DeviceList l;
  for (auto id : ids) l.devices.push_back({id, {}, {}});
  return omemo::device_list_to_xml(l);
}

}  // namespace

asio::awaitable<void> PubsubService::handle_iq(xml::Element iq, std::string owner) {
  const Config& cfg = ctx_.config;
  auto reply_error = [&](const Failure& f) {
    ctx_.metrics.error(f.error.condition);
    ctx_.stream.send(xmpp::make_error_reply(iq, f.error), "error");
  };
  auto reply = [&](std::optional<xml::Element> payload) {
    ctx_.stream.send(xmpp::make_iq_result(iq, std::move(payload)), "iq-result");
  };
  const std::string type(iq.attr("type").value_or(""));
  auto from = Jid::parse(iq.attr("from").value_or(""));
  if (!from) {
    reply_error(fail(ErrorType::modify, "bad-request", "no valid from"));
    co_return;
  }
  const std::string requester = from->to_string();
  const bool is_owner = from->bare_string() == owner;
  const std::string node_jid = std::string(iq.attr("to").value_or(""));

  try {
    // Our own extensions: prekey counts (owner only) and identity keys (anyone).
    if (const xml::Element* pk = iq.child("prekeys", xmpp::kMultiendNs); pk && type == "get") {
      if (!is_owner) co_return reply_error(fail(ErrorType::auth, "forbidden", "only the owner may ask"));
      auto counts = co_await ctx_.db.run([&owner](pqxx::connection& c) { return device_store::prekey_counts(c, owner); });
      xml::Element out("prekeys", std::string(xmpp::kMultiendNs));
      for (const auto& c : counts)
        out.add_child(xml::Element("device", std::string(xmpp::kMultiendNs)))
            .set_attr("id", std::to_string(c.device_id))
            .set_attr("remaining", std::to_string(c.remaining))
            .set_attr("total", std::to_string(c.total));
      co_return reply(std::move(out));
    }
    if (const xml::Element* idq = iq.child("identity", xmpp::kMultiendNs); idq && type == "get") {
      std::optional<std::uint32_t> device;
      if (auto d = idq->attr("device")) {
        auto id = omemo::parse_id(*d);
        if (!id) co_return reply_error(fail(ErrorType::modify, "bad-request", "bad device id"));
        device = *id;
      }
      auto keys = co_await ctx_.db.run(
          [&owner, device](pqxx::connection& c) { return device_store::identity_keys(c, owner, device); });
      if (device && keys.empty()) co_return reply_error(fail(ErrorType::cancel, "item-not-found"));
      xml::Element out("identity", std::string(xmpp::kMultiendNs));
      for (const auto& [id, ik] : keys)
        out.add_child(xml::Element("device", std::string(xmpp::kMultiendNs)))
            .set_attr("id", std::to_string(id))
            .set_attr("ik", crypto::base64_encode(ik.view()));
      co_return reply(std::move(out));
    }
    const xml::Element* ps = iq.child("pubsub", xmpp::kPubsubNs);
    if (!ps || (type != "get" && type != "set"))
      co_return reply_error(fail(ErrorType::cancel, "feature-not-implemented"));
    auto req = xmpp::parse_pubsub(*ps, type == "set");
    if (!req) {
      co_return reply_error(req.error() == Errc::unsupported ? fail(ErrorType::cancel, "feature-not-implemented")
                                                             : fail(ErrorType::modify, "bad-request", req.error().message()));
    }
    const bool devices_node = [&] {
      return std::visit([](const auto& r) { return r.node == omemo::kDevicesNode; }, *req);
    }();
    const bool bundles_node = [&] {
      return std::visit([](const auto& r) { return r.node == omemo::kBundlesNode; }, *req);
    }();
    if (!devices_node && !bundles_node)
      co_return reply_error(fail(ErrorType::cancel, "feature-not-implemented", "only the OMEMO 2 nodes are served"));

    if (auto* p = std::get_if<xmpp::PublishRequest>(&*req)) {
      if (!is_owner) co_return reply_error(fail(ErrorType::auth, "forbidden", "only the owner may publish"));
      if (auto bad = check_publish_options(p->options)) co_return reply_error(*bad);
      if (devices_node) {
        if (p->item_id && *p->item_id != "current")
          co_return reply_error(fail(ErrorType::modify, "bad-request", "the device list item is 'current'"));
        auto list = omemo::device_list_from_xml(p->payload);
        if (!list) co_return reply_error(fail(ErrorType::modify, "bad-request", list.error().message()));
        if (list->devices.empty())
          co_return reply_error(fail(ErrorType::modify, "bad-request", "an empty device list: retract bundles instead"));
        std::vector<std::uint32_t> ids;
        for (const auto& d : list->devices) ids.push_back(d.id);
        if (ids.size() > ctx_.config.max_devices_per_account) {
          ctx_.metrics.limit("max_devices_per_account");
          co_return reply_error(device_limit(ctx_.config.max_devices_per_account));
        }
        const bool changed = co_await ctx_.db.run(
            [&owner, &ids](pqxx::connection& c) { return device_store::publish_device_list(c, owner, ids); });
        reply(xmpp::make_publish_result(p->node, "current"));
        if (changed) co_await notify_device_list(owner);
        co_return;
      }
      if (!p->item_id) co_return reply_error(fail(ErrorType::modify, "bad-request", "the bundle item id is the device id"));
      auto device = omemo::parse_id(*p->item_id);
      if (!device) co_return reply_error(fail(ErrorType::modify, "bad-request", "bad device id"));
      auto bundle = omemo::bundle_from_xml(p->payload);
      if (!bundle) co_return reply_error(fail(ErrorType::modify, "bad-request", bundle.error().message()));
      if (!crypto::ed25519_verify(bundle->ik, bundle->spk.view(), bundle->spks))
        co_return reply_error(fail(ErrorType::modify, "bad-request", "signed prekey signature does not verify"));
      const std::uint32_t id = *device;
      const std::size_t max_devices = ctx_.config.max_devices_per_account;
      auto result = co_await ctx_.db.run([&owner, id, &bundle, max_devices](pqxx::connection& c) {
        return device_store::publish_bundle(c, owner, id, *bundle, max_devices);
      });
      if (result.over_limit) {
        ctx_.metrics.limit("max_devices_per_account");
        co_return reply_error(device_limit(max_devices));
      }
      reply(xmpp::make_publish_result(p->node, *p->item_id));
      if (result.list_changed) co_await notify_device_list(owner);
      co_return;
    }
    if (auto* r = std::get_if<xmpp::RetractRequest>(&*req)) {
      if (!is_owner) co_return reply_error(fail(ErrorType::auth, "forbidden", "only the owner may retract"));
      if (!bundles_node) co_return reply_error(fail(ErrorType::modify, "bad-request", "publish a new list instead"));
      std::vector<std::uint32_t> ids;
      for (const auto& item : r->item_ids) {
        auto id = omemo::parse_id(item);
        if (!id) co_return reply_error(fail(ErrorType::modify, "bad-request", "bad device id"));
        ids.push_back(*id);
      }
      bool changed = false;
      for (auto id : ids)
        changed |= co_await ctx_.db.run([&owner, id](pqxx::connection& c) { return device_store::retract_device(c, owner, id); });
      reply(std::nullopt);
      if (changed) co_await notify_device_list(owner);
      co_return;
    }
    if (auto* s = std::get_if<xmpp::SubscribeRequest>(&*req)) {
      auto jid = Jid::parse(s->jid);
      if (!devices_node || !jid || jid->bare_string() != from->bare_string())
        co_return reply_error(invalid_jid("subscribe your own JID to the devices node"));
      const std::string sub = jid->to_string(), node = s->node;
      const std::size_t per_owner = ctx_.config.max_subscriptions_per_owner,
                        per_subscriber = ctx_.config.max_subscriptions_per_subscriber;
      const auto result = co_await ctx_.db.run([&](pqxx::connection& c) {
        return device_store::subscribe(c, owner, node, sub, per_owner, per_subscriber);
      });
      if (result != device_store::SubscribeResult::subscribed) {
        const bool owner_full = result == device_store::SubscribeResult::owner_full;
        const char* limit = owner_full ? "max_subscriptions_per_owner" : "max_subscriptions_per_subscriber";
        ctx_.metrics.limit(limit);
        co_return reply_error(fail(ErrorType::modify, "policy-violation",
                                   std::string(limit) + ": at most " + std::to_string(owner_full ? per_owner : per_subscriber) +
                                       (owner_full ? " subscribers of one account" : " subscriptions of one account")));
      }
      xml::Element out("pubsub", std::string(xmpp::kPubsubNs));
      out.add_child(xml::Element("subscription", std::string(xmpp::kPubsubNs)))
          .set_attr("node", node)
          .set_attr("jid", sub)
          .set_attr("subscription", "subscribed");
      co_return reply(std::move(out));
    }
    if (auto* u = std::get_if<xmpp::UnsubscribeRequest>(&*req)) {
      auto jid = Jid::parse(u->jid);
      if (!jid || jid->bare_string() != from->bare_string())
        co_return reply_error(fail(ErrorType::auth, "forbidden", "unsubscribe only yourself"));
      const std::string sub = jid->to_string(), node = u->node;
      co_await ctx_.db.run([&](pqxx::connection& c) { device_store::unsubscribe(c, owner, node, sub); });
      co_return reply(std::nullopt);
    }
    auto& items = std::get<xmpp::ItemsRequest>(*req);
    if (devices_node) {
      auto ids = co_await ctx_.db.run([&owner](pqxx::connection& c) { return device_store::device_list(c, owner); });
      // twomemo 1.0.3 rejects an empty <devices/>: say there is nothing instead.
      if (ids.empty()) co_return reply_error(fail(ErrorType::cancel, "item-not-found", "no devices"));
      std::vector<std::pair<std::string, xml::Element>> out;
      out.emplace_back("current", device_list_payload(ids));
      co_return reply(xmpp::make_items_result(items.node, std::move(out)));
    }
    std::vector<std::uint32_t> wanted;
    for (const auto& item : items.item_ids) {
      auto id = omemo::parse_id(item);
      if (!id) co_return reply_error(fail(ErrorType::modify, "bad-request", "device ids are 1..2^31-1"));
      wanted.push_back(*id);
    }
    const std::int64_t retry = cfg.claim_retry_seconds, low = cfg.prekey_low_threshold;
    const std::string requester_account = from->bare_string();
    const bool fresh = claims_.allows(requester_account, owner, std::chrono::steady_clock::now());
    if (!fresh) ctx_.metrics.limit("prekey_claims_per_hour");
    auto claimed = co_await ctx_.db.run([&owner, &wanted, &requester, retry, low, fresh](pqxx::connection& c) {
      return device_store::claim_bundles(c, owner, wanted, requester, retry, low, fresh);
    });
    std::size_t fresh_taken = 0;
    for (const auto& c : claimed) fresh_taken += (!c.bundle.prekeys.empty() && !c.reused) ? 1 : 0;
    claims_.spend(requester_account, owner, fresh_taken, std::chrono::steady_clock::now());
    if (claimed.empty() || (!wanted.empty() && claimed.size() != wanted.size()))
      co_return reply_error(fail(ErrorType::cancel, "item-not-found", "no such bundle"));
    std::vector<std::pair<std::string, xml::Element>> out;
    for (const auto& c : claimed) {
      if (!c.bundle.prekeys.empty()) ctx_.metrics.prekeys_claimed.Increment();
      if (c.reused) ctx_.metrics.prekeys_reused.Increment();
      out.emplace_back(std::to_string(c.device_id), omemo::bundle_to_xml(c.bundle));
    }
    reply(xmpp::make_items_result(items.node, std::move(out)));
    for (const auto& c : claimed) {
      if (!c.notify_low) continue;
      ctx_.metrics.prekeys_low_events.Increment();
      xml::Element m("message", std::string(xmpp::kComponentNs));
      m.set_attr("from", cfg.component_domain);
      m.set_attr("to", owner);
      m.set_attr("type", "headline");
      m.add_child(xml::Element("prekeys-low", std::string(xmpp::kMultiendNs)))
          .set_attr("device", std::to_string(c.device_id))
          .set_attr("remaining", std::to_string(c.remaining));
      ctx_.stream.send(m, "prekeys-low");
    }
  } catch (const std::exception& e) {
    spdlog::warn("pubsub: request to {} failed: {}", node_jid, e.what());
    reply_error(fail(ErrorType::wait, "internal-server-error", "database unavailable, retry later"));
  }
}

asio::awaitable<void> PubsubService::notify_device_list(const std::string& owner) {
  std::vector<std::uint32_t> ids;
  std::vector<std::string> subs;
  co_await ctx_.db.run([&](pqxx::connection& c) {
    ids = device_store::device_list(c, owner);
    subs = device_store::subscribers(c, owner, std::string(omemo::kDevicesNode));
  });
  if (ids.empty()) co_return;  // nothing valid to announce (see items above)
  if (std::find(subs.begin(), subs.end(), owner) == subs.end()) subs.push_back(owner);
  auto local = Jid::parse(owner);
  const std::string node_jid = local->local() + "@" + ctx_.config.component_domain;
  for (const auto& s : subs)
    ctx_.stream.send(xmpp::make_event_message(node_jid, s, omemo::kDevicesNode, "current", device_list_payload(ids),
                                              xmpp::kComponentNs),
                     "event");
}

}  // namespace multiend::server
