// Legacy OMEMO over PEP and plain chat messages: what reaches the devices of people on other
// apps (Conversations, Dino, Gajim, Monal) and our own account's phone app. The archive
// component is not involved: their server's PEP holds the device lists and bundles, chat
// messages travel to the bare JID, Carbons copy them to our own other clients.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "client/app/client.hpp"
#include "client/app/errors.hpp"
#include "client/app/send_parts.hpp"
#include "protocol/oldmemo/constants.hpp"
#include "protocol/xmpp/namespaces.hpp"

namespace multiend::client {
namespace {

bool contains(const std::vector<std::uint32_t>& v, std::uint32_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }

crypto::ByteView bytes_of(const std::string& s) {
  return crypto::ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

xml::Element carbons_enable() {
  xml::Element iq("iq");
  iq.set_attr("type", "set");
  iq.add_child(xml::Element("enable", std::string(xmpp::kCarbonsNs)));
  return iq;
}

}  // namespace

asio::awaitable<void> Client::publish_pep() {
  if (!options_.pep || removed_) co_return;
  const std::string own = device_.jid();
  const std::uint32_t me = device_.device_id();
  // Copies of what the account's other clients send and receive (XEP-0280).
  if (auto err = component::iq_error(co_await request(carbons_enable())))
    spdlog::warn("the server refused Carbons ({}): messages of the account's other apps are not seen live", describe(*err));

  // The bundle first: a listed device without a bundle is one nobody can reach.
  const std::string bundle_node = pep::legacy_bundle_node(me);
  for (int attempt = 0;; ++attempt) {
    auto reply = co_await request(pep::publish_open(bundle_node, "current", oldmemo::bundle_to_xml(device_.legacy().bundle())));
    if (attempt == 0 && pep::precondition_not_met(reply)) {
      // The node exists with another access model (XEP-0060 §7.1.5): make it open, then again.
      if (auto err = component::iq_error(co_await request(pep::configure_open(bundle_node)))) {
        spdlog::warn("legacy OMEMO bundle not published: the server refused to open {} ({})", bundle_node, describe(*err));
        co_return;
      }
      continue;
    }
    if (auto err = component::iq_error(reply)) {
      spdlog::warn("legacy OMEMO bundle not published ({}): plain OMEMO apps cannot reach this device", describe(*err));
      co_return;
    }
    break;
  }
  // The device list, merged with what is there (other apps' devices are never dropped), and
  // checked after publishing: another client publishing at the same time may have won.
  for (int attempt = 0; attempt < 4; ++attempt) {
    auto list = co_await fetch_legacy_list(own);
    if (list.refused) {
      spdlog::warn("own legacy device list unreadable ({}); not published", *list.refused);
      co_return;
    }
    if (contains(list.ids, me)) co_return;
    list.ids.push_back(me);
    auto reply = co_await request(pep::publish_open(oldmemo::kDeviceListNode, "current", oldmemo::device_list_to_xml(list.ids)));
    if (pep::precondition_not_met(reply)) {
      if (auto err = component::iq_error(co_await request(pep::configure_open(oldmemo::kDeviceListNode)))) {
        spdlog::warn("legacy device list not published: the server refused to open it ({})", describe(*err));
        co_return;
      }
      continue;
    }
    if (auto err = component::iq_error(reply)) {
      spdlog::warn("legacy device list not published ({})", describe(*err));
      co_return;
    }
  }
  spdlog::warn("the account's legacy device list kept changing; this device may not be on it");
}

asio::awaitable<bool> Client::remove_from_pep(std::uint32_t device) {
  if (!options_.pep) co_return false;
  auto list = co_await fetch_legacy_list(device_.jid());
  if (list.refused || !contains(list.ids, device)) co_return false;
  std::vector<std::uint32_t> rest;
  for (std::uint32_t id : list.ids)
    if (id != device) rest.push_back(id);
  if (rest.empty()) {
    // oldmemo refuses an empty list; the device stays listed there (its app would re-add it anyway)
    spdlog::warn("device {} is the only one in the account's legacy device list; left there", device);
    co_return false;
  }
  auto reply = co_await request(pep::publish_open(oldmemo::kDeviceListNode, "current", oldmemo::device_list_to_xml(rest)));
  if (auto err = component::iq_error(reply))
    throw ClientError(ErrorKind::refused, "the server refused the legacy device list: " + describe(*err));
  co_return true;
}

asio::awaitable<Client::PepDevices> Client::legacy_devices(const std::string& bare_jid) {
  PepDevices out;
  if (!options_.pep) co_return out;
  auto list = co_await fetch_legacy_list(bare_jid);
  out.refused = list.refused;
  out.ids = list.ids;
  std::vector<std::uint32_t> unknown;
  for (std::uint32_t id : list.ids)
    if (!device_.store().trust().identity_of(bare_jid, id) && !(bare_jid == device_.jid() && id == device_.device_id()))
      unknown.push_back(id);
  auto bundles = co_await fetch_legacy_bundles(bare_jid, unknown);
  auto tx = device_.store().begin();
  for (const auto& [id, bundle] : bundles)
    if (auto ik = device_.legacy().identity_for(detail::address(bare_jid, id), &bundle))
      (void)device_.store().trust().record_device_identity(bare_jid, id, *ik);
  tx.commit();
  co_return out;
}

asio::awaitable<pep::ListResult> Client::fetch_legacy_list(const std::string& bare_jid) {
  co_return pep::legacy_device_list(co_await request(pep::get_items(bare_jid, oldmemo::kDeviceListNode)));
}

asio::awaitable<std::map<std::uint32_t, oldmemo::LegacyBundle>> Client::fetch_legacy_bundles(
    const std::string& bare_jid, const std::vector<std::uint32_t>& ids) {
  std::map<std::uint32_t, oldmemo::LegacyBundle> out;
  for (std::uint32_t id : ids) {
    auto reply = co_await request(pep::get_items(bare_jid, pep::legacy_bundle_node(id)));
    auto payload = pep::first_item(reply);
    if (!payload || !*payload) continue;
    auto bundle = oldmemo::bundle_from_xml(**payload);
    if (!bundle) {
      spdlog::warn("legacy bundle of {} device {} is unusable ({}); skipped", bare_jid, id, bundle.error().message());
      continue;
    }
    out.emplace(id, std::move(*bundle));
  }
  co_return out;
}

asio::awaitable<Client::PepPlan> Client::plan_pep(const std::vector<std::string>& users,
                                                  const std::vector<omemo::DeviceAddress>& via_archive) {
  PepPlan plan;
  auto& trust = device_.store().trust();
  for (const std::string& user : users) {
    plan.looked_at.push_back("the legacy OMEMO device list in " + user + "'s PEP");
    auto list = co_await fetch_legacy_list(user);
    if (list.refused) {
      plan.skipped.emplace_back(detail::address(user, 0), "legacy device list: " + *list.refused);
      continue;
    }
    std::vector<std::uint32_t> need_bundle;
    for (std::uint32_t id : list.ids) {
      omemo::DeviceAddress a = detail::address(user, id);
      if (user == device_.jid() && id == device_.device_id()) continue;
      if (std::find(via_archive.begin(), via_archive.end(), a) != via_archive.end()) continue;  // one device, via the archive
      if (trust.trust_of(user, id) == Trust::distrusted) {
        plan.skipped.emplace_back(a, "distrusted");
      } else if (device_.store().legacy().has_legacy_session(a)) {
        if (trust.usable(user, id))
          plan.devices.push_back(a);
        else
          plan.skipped.emplace_back(a, "not trusted (another device of " + user + " is verified)");
      } else {
        need_bundle.push_back(id);
      }
    }
    if (need_bundle.empty()) continue;
    auto bundles = co_await fetch_legacy_bundles(user, need_bundle);
    for (std::uint32_t id : need_bundle) {
      omemo::DeviceAddress a = detail::address(user, id);
      auto it = bundles.find(id);
      if (it == bundles.end()) {
        plan.skipped.emplace_back(a, "no usable legacy bundle");
        continue;
      }
      auto ik = device_.legacy().identity_for(a, &it->second);
      if (!ik) {
        plan.skipped.emplace_back(a, "legacy bundle: " + ik.error().message());
        continue;
      }
      if (!trust.record_device_identity(user, id, *ik)) {
        plan.skipped.emplace_back(a, "identity key changed; refused");
        continue;
      }
      if (!trust.usable(user, id)) {
        plan.skipped.emplace_back(a, "not trusted");
        continue;
      }
      plan.devices.push_back(a);
      plan.bundles.emplace(a, std::move(it->second));
    }
  }
  co_return plan;
}

asio::awaitable<std::vector<omemo::DeviceAddress>> Client::send_pep(
    const std::vector<std::string>& recipients, PepPlan plan, const std::string& body, const std::string& origin_id,
    std::vector<std::pair<omemo::DeviceAddress, std::string>>& skipped) {
  std::vector<omemo::DeviceAddress> reached;
  std::vector<xml::Element> stanzas;
  {
    auto tx = device_.store().begin();
    bool own_included = false;
    for (const std::string& user : recipients) {
      std::vector<omemo::DeviceAddress> devices;
      for (const auto& a : plan.devices)
        if (a.jid == user || (!own_included && a.jid == device_.jid())) devices.push_back(a);
      own_included = true;
      if (devices.empty()) continue;
      auto outcome = device_.encrypt_legacy(devices, plan.bundles, bytes_of(body));
      for (const auto& [a, ec] : outcome.failed) skipped.emplace_back(a, detail::failure_reason(ec));
      if (outcome.encrypted_for.empty()) continue;
      for (auto& a : outcome.encrypted_for) reached.push_back(std::move(a));
      stanzas.push_back(legacy_chat_message(user, new_id(), origin_id, outcome.message, true));
    }
    tx.commit();
  }
  for (const auto& st : stanzas) conn_.send(st);
  co_return reached;
}

asio::awaitable<void> Client::handle_chat(const ChatMessage& chat, const MessageSink& sink) {
  Received r;
  {
    auto tx = device_.store().begin();
    r = device_.receive_chat(chat, options_.clock());
    tx.commit();
  }
  if (r.entry && sink) sink(*r.entry);
  co_await after_chats(r.prekey_used, std::move(r.empty_reply_to));
}

asio::awaitable<void> Client::after_chats(bool prekey_used, std::vector<omemo::DeviceAddress> reply_to) {
  if (prekey_used && !removed_) {
    auto reply = co_await request(pep::publish_open(pep::legacy_bundle_node(device_.device_id()), "current",
                                                    oldmemo::bundle_to_xml(device_.legacy().bundle())));
    if (auto err = component::iq_error(reply)) spdlog::warn("legacy bundle not republished ({})", describe(*err));
  }
  // A key exchange is answered at once (an empty KeyTransport message), so the sender stops
  // repeating it and the session is confirmed on both sides.
  std::sort(reply_to.begin(), reply_to.end());
  reply_to.erase(std::unique(reply_to.begin(), reply_to.end()), reply_to.end());
  if (reply_to.empty()) co_return;
  std::vector<xml::Element> stanzas;
  {
    auto tx = device_.store().begin();
    const std::map<omemo::DeviceAddress, oldmemo::LegacyBundle> none;
    for (const auto& peer : reply_to) {
      std::vector<omemo::DeviceAddress> one;
      one.push_back(peer);
      auto outcome = device_.encrypt_legacy(one, none, std::nullopt);
      if (outcome.encrypted_for.empty()) continue;
      xml::Element m("message");
      m.set_attr("type", "chat");
      m.set_attr("to", peer.jid);
      m.set_attr("id", new_id());
      m.add_child(oldmemo::encrypted_to_xml(outcome.message));
      stanzas.push_back(std::move(m));
    }
    tx.commit();
  }
  for (const auto& st : stanzas) conn_.send(st);
}

}  // namespace multiend::client
