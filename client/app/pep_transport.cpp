// Legacy OMEMO over PEP and plain chat messages: what reaches the devices of people on other
// apps (Conversations, Dino, Gajim, Monal) and our own account's phone app. The archive
// component is not involved: their server's PEP holds the device lists and bundles, chat
// messages travel to the bare JID, Carbons copy them to our own other clients.
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <set>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "client/app/client.hpp"
#include "client/app/errors.hpp"
#include "client/app/send_parts.hpp"
#include "protocol/jid.hpp"
#include "protocol/oldmemo/constants.hpp"
#include "protocol/omemo/constants.hpp"
#include "protocol/xml/serializer.hpp"
#include "protocol/xml/stream_parser.hpp"
#include "protocol/xmpp/namespaces.hpp"

namespace multiend::client {
namespace {

bool contains(const std::vector<std::uint32_t>& v, std::uint32_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }

crypto::ByteView bytes_of(const std::string& s) {
  return crypto::ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

// How a device list answer reads in a "nobody reachable" line.
std::string outcome_of(const pep::ListResult& r) {
  if (r.refused) return ": refused (" + *r.refused + ")";
  if (r.unreadable) return ": none readable to us (never created, or open to contacts only)";
  return r.ids.empty() ? ": none" : ": " + std::to_string(r.ids.size()) + " device(s), none usable";
}

constexpr std::int64_t kBundleRepublishAfter = 24 * 3600;  // seconds

// The bundles that parse, by device id; the others are warned about and left out.
template <class Parse>
auto parse_bundles(const std::string& jid, const std::map<std::uint32_t, xml::Element>& payloads, std::string_view what,
                   Parse parse) {
  using Bundle = std::decay_t<decltype(*parse(std::declval<const xml::Element&>()))>;
  std::map<std::uint32_t, Bundle> out;
  for (const auto& [id, payload] : payloads) {
    auto bundle = parse(payload);
    if (!bundle) {
      spdlog::warn("{} bundle of {} device {} in PEP is unusable ({}); skipped", what, jid, id, bundle.error().message());
      continue;
    }
    out.emplace(id, std::move(*bundle));
  }
  return out;
}

// What tells two bundles apart (not a secret: bundles are public).
std::string digest_of(const std::string& s) {
  std::array<unsigned char, 16> h{};
  crypto_generichash(h.data(), h.size(), reinterpret_cast<const unsigned char*>(s.data()), s.size(), nullptr, 0);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : h) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

xml::Element carbons_enable() {
  xml::Element iq("iq");
  iq.set_attr("type", "set");
  iq.add_child(xml::Element("enable", std::string(xmpp::kCarbonsNs)));
  return iq;
}

}  // namespace

asio::awaitable<xml::Element> Client::pep_request(xml::Element iq) {
  // One attempt: the user's own server answers at once or not at all (no component restarts
  // to wait out), and a `wait` from it is an answer, e.g. ejabberd's for a field it does not know.
  try {
    co_return co_await conn_.iq(std::move(iq), options_.timeout);
  } catch (const C2sError& e) {
    if (e.code() != ConnectError::timeout) throw;
  }
  throw ClientError(ErrorKind::connection, "the server did not answer a PEP request within " +
                                               std::to_string(options_.timeout.count()) + " s");
}

asio::awaitable<std::optional<std::string>> Client::publish_open_item(std::string node, std::string item,
                                                                       xml::Element payload, bool keep_all) {
  auto reply = co_await pep_request(pep::publish_open(node, item, payload, keep_all));
  if (pep::precondition_not_met(reply)) {
    // The node exists with another configuration (XEP-0060 §7.1.5): make it open, then again.
    if (auto err = component::iq_error(co_await pep_request(pep::configure_open(node, keep_all))))
      co_return "the server refused to reconfigure " + node + " (" + describe(*err) + ")";
    reply = co_await pep_request(pep::publish_open(node, item, payload, keep_all));
  } else if (keep_all && component::iq_error(reply)) {
    // ejabberd 23.01 takes no pubsub#max_items in publish-options (it answers wait/resource-
    // constraint) and creates PEP nodes keeping one item: every device's bundle would push out
    // the last one. It does take max_items in the node's configuration: set it before
    // publishing (an existing node), and after (a node this publish creates).
    auto configured = component::iq_error(co_await pep_request(pep::configure_open(node, true)));
    reply = co_await pep_request(pep::publish_open(node, item, payload, false));
    if (configured && !component::iq_error(reply)) {
      if (auto err = component::iq_error(co_await pep_request(pep::configure_open(node, true))))
        co_return "the server keeps one item in " + node + " and refused to keep more (" + describe(*err) + ")";
    }
  }
  if (auto err = component::iq_error(reply); err && (err->condition == "item-not-found" || err->condition == "conflict")) {
    // ejabberd answers so when another client of the account creates the same node at this
    // moment (a publish auto-creates it): the node is there a moment later.
    asio::steady_timer settle(co_await asio::this_coro::executor, options_.pep_settle);
    co_await settle.async_wait(asio::use_awaitable);
    reply = co_await pep_request(pep::publish_open(node, item, payload, keep_all));
    if (keep_all && component::iq_error(reply) && !pep::precondition_not_met(reply))
      reply = co_await pep_request(pep::publish_open(node, item, payload, false));
  }
  if (auto err = component::iq_error(reply)) co_return describe(*err);
  co_return std::nullopt;
}

asio::awaitable<void> Client::publish_pep() {
  if (!options_.pep || removed_) co_return;
  // Copies of what the account's other clients send and receive (XEP-0280).
  if (auto err = component::iq_error(co_await pep_request(carbons_enable())))
    spdlog::warn("the server refused Carbons ({}): messages of the account's other apps are not seen live", describe(*err));

  // Bundles first: a listed device without a bundle is one nobody can reach.
  const auto [legacy_ok, omemo2_ok] = co_await publish_pep_bundles();
  if (legacy_ok) co_await merge_into_own_list(true);
  if (omemo2_ok) co_await merge_into_own_list(false);
}

asio::awaitable<std::pair<bool, bool>> Client::publish_pep_bundles() {
  // They change only when a prekey was used or the signed prekey rotated: published again then,
  // or a day later (a server that lost them), not on every command.
  const std::uint32_t me = device_.device_id();
  xml::Element legacy_bundle = oldmemo::bundle_to_xml(device_.legacy().bundle());
  xml::Element omemo2_bundle = omemo::bundle_to_xml(device_.pep_bundle());
  const std::string digest = digest_of(xml::serialize(legacy_bundle) + '\n' + xml::serialize(omemo2_bundle));
  const std::int64_t now = options_.clock();
  if (auto last = device_.store().settings().get(setting::pep_bundles)) {
    const auto space = last->find(' ');
    std::int64_t at = 0;
    if (space != std::string::npos && last->substr(0, space) == digest &&
        std::from_chars(last->data() + space + 1, last->data() + last->size(), at).ec == std::errc() && now >= at &&
        now - at < kBundleRepublishAfter)
      co_return std::make_pair(true, true);
  }
  bool legacy_ok = false, omemo2_ok = false;
  if (auto err = co_await publish_open_item(pep::legacy_bundle_node(me), "current", legacy_bundle, false))
    spdlog::warn("legacy OMEMO bundle not published ({}): legacy apps cannot reach this device", *err);
  else
    legacy_ok = true;
  // The same for OMEMO 2 (what Kaidan and bots read): one bundle item per device, kept.
  if (auto err = co_await publish_open_item(std::string(omemo::kBundlesNode), std::to_string(me), omemo2_bundle, true))
    spdlog::warn("OMEMO 2 bundle not published in PEP ({}): plain OMEMO 2 apps cannot reach this device", *err);
  else
    omemo2_ok = true;
  if (legacy_ok && omemo2_ok) device_.store().settings().set(setting::pep_bundles, digest + ' ' + std::to_string(now));
  co_return std::make_pair(legacy_ok, omemo2_ok);
}

asio::awaitable<std::optional<omemo::DeviceList>> Client::read_own_list(bool legacy) {
  omemo::DeviceList list;
  if (legacy) {
    auto read = co_await fetch_legacy_list(device_.jid());
    if (read.refused) {
      spdlog::warn("own legacy device list unreadable ({}); not published", *read.refused);
      co_return std::nullopt;
    }
    for (std::uint32_t id : read.ids) list.devices.push_back(omemo::DeviceEntry{id, {}, {}});
    co_return list;
  }
  auto reply = co_await pep_request(pep::get_items(device_.jid(), omemo::kDevicesNode));
  if (auto err = component::iq_error(reply)) {
    if (err->condition == "item-not-found" || err->condition == "forbidden") co_return list;  // none yet
    spdlog::warn("own OMEMO 2 device list in PEP unreadable ({}); not published", describe(*err));
    co_return std::nullopt;
  }
  auto payload = pep::first_item(reply);
  if (!payload || !*payload) co_return list;
  auto parsed = omemo::device_list_from_xml(**payload);
  if (!parsed) {
    spdlog::warn("own OMEMO 2 device list in PEP is malformed; not published");
    co_return std::nullopt;
  }
  co_return std::move(*parsed);  // labels of other devices kept as they are
}

asio::awaitable<void> Client::merge_into_own_list(bool legacy) {
  // PEP has no compare-and-swap: two clients that read the list at once and each publish it with
  // themselves added lose one of the two. So: every device seen in any read of this call stays
  // (a device another client's stale publish dropped is put back), and after publishing the
  // list is read again only once the others' read-then-publish, a few milliseconds, is surely
  // over: what was published from a read older than ours shows then, and is mended.
  const char* what = legacy ? "legacy" : "OMEMO 2";
  const std::uint32_t me = device_.device_id();
  omemo::DeviceList seen;  // every device read in this call, with its label
  bool published = false;
  for (int attempt = 0;; ++attempt) {
    if (published) {
      asio::steady_timer settle(co_await asio::this_coro::executor, options_.pep_settle);
      co_await settle.async_wait(asio::use_awaitable);
    }
    auto list = co_await read_own_list(legacy);
    if (!list) co_return;
    for (const auto& d : list->devices)
      if (!seen.contains(d.id)) seen.devices.push_back(d);
    bool complete = list->contains(me);
    for (const auto& d : seen.devices) complete = complete && list->contains(d.id);
    spdlog::debug("own {} device list read (attempt {}): {} device(s), {}", what, attempt, list->devices.size(),
                  complete ? "complete" : "to be merged");
    if (complete) co_return;
    if (attempt == 5) {
      spdlog::warn("the account's {} device list kept changing; this device may not be on it", what);
      co_return;
    }
    for (const auto& d : seen.devices)
      if (!list->contains(d.id)) list->devices.push_back(d);
    if (!list->contains(me)) list->devices.push_back(omemo::DeviceEntry{me, {}, {}});
    std::vector<std::uint32_t> ids;
    for (const auto& d : list->devices) ids.push_back(d.id);
    std::optional<std::string> err;
    if (legacy)
      err = co_await publish_open_item(std::string(oldmemo::kDeviceListNode), "current",
                                       oldmemo::device_list_to_xml(ids), false);
    else
      err = co_await publish_open_item(std::string(omemo::kDevicesNode), "current", omemo::device_list_to_xml(*list), false);
    if (err) {
      spdlog::warn("{} device list not published in PEP ({})", what, *err);
      co_return;
    }
    published = true;
  }
}

asio::awaitable<bool> Client::remove_from_pep(std::uint32_t device) {
  if (!options_.pep) co_return false;
  bool removed = false;
  // OMEMO 2: the list with its labels, without the device
  auto reply = co_await pep_request(pep::get_items(device_.jid(), omemo::kDevicesNode));
  auto payload = pep::first_item(reply);
  if (payload && *payload) {
    if (auto list = omemo::device_list_from_xml(**payload); list && list->contains(device)) {
      omemo::DeviceList rest;
      for (const auto& d : list->devices)
        if (d.id != device) rest.devices.push_back(d);
      if (auto err = co_await publish_open_item(std::string(omemo::kDevicesNode), "current",
                                                omemo::device_list_to_xml(rest), false))
        throw ClientError(ErrorKind::refused, "the server refused the OMEMO 2 device list: " + *err);
      removed = true;
    }
  }
  // legacy
  auto list = co_await fetch_legacy_list(device_.jid());
  if (list.refused || !contains(list.ids, device)) co_return removed;
  std::vector<std::uint32_t> rest;
  for (std::uint32_t id : list.ids)
    if (id != device) rest.push_back(id);
  if (rest.empty()) {
    // oldmemo refuses an empty list; the device stays listed there (its app would re-add it anyway)
    spdlog::warn("device {} is the only one in the account's legacy device list; left there", device);
    co_return removed;
  }
  if (auto err = co_await publish_open_item(std::string(oldmemo::kDeviceListNode), "current",
                                            oldmemo::device_list_to_xml(rest), false))
    throw ClientError(ErrorKind::refused, "the server refused the legacy device list: " + *err);
  co_return true;
}

asio::awaitable<Client::PepDevices> Client::legacy_devices(const std::string& bare_jid) {
  PepDevices out;
  if (!options_.pep) co_return out;
  auto list2 = pep::omemo2_device_list(co_await pep_request(pep::get_items(bare_jid, omemo::kDevicesNode)));
  out.omemo2_ids = list2.ids;
  if (list2.refused) out.refused = "OMEMO 2: " + *list2.refused;
  if (list2.unreadable) out.unreadable.push_back("OMEMO 2");
  std::vector<std::uint32_t> unknown2;
  for (std::uint32_t id : list2.ids)
    if (!device_.store().trust().identity_of(bare_jid, id) && !(bare_jid == device_.jid() && id == device_.device_id()))
      unknown2.push_back(id);
  auto bundles2 = co_await fetch_pep_bundles(bare_jid, unknown2);
  {
    auto tx = device_.store().begin();
    for (const auto& [id, bundle] : bundles2) (void)device_.store().trust().record_device_identity(bare_jid, id, bundle.ik);
    tx.commit();
  }
  auto list = co_await fetch_legacy_list(bare_jid);
  if (list.refused) out.refused = (out.refused ? *out.refused + "; " : std::string()) + "legacy: " + *list.refused;
  if (list.unreadable) out.unreadable.push_back("legacy");
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
  co_return pep::legacy_device_list(co_await pep_request(pep::get_items(bare_jid, oldmemo::kDeviceListNode)));
}

asio::awaitable<std::map<std::uint32_t, xml::Element>> Client::fetch_bundle_payloads(
    const std::string& bare_jid, const std::vector<std::uint32_t>& ids, bool legacy) {
  // legacy: a node per device; OMEMO 2: an item per device in one node
  std::map<std::uint32_t, xml::Element> out;
  for (std::uint32_t id : ids) {
    // (built into a named value first: GCC 12 mishandles a conditional's temporaries in co_await)
    xml::Element query = legacy ? pep::get_items(bare_jid, pep::legacy_bundle_node(id))
                                : pep::get_item(bare_jid, omemo::kBundlesNode, std::to_string(id));
    auto reply = co_await pep_request(std::move(query));
    auto payload = pep::first_item(reply);
    if (payload && *payload) out.emplace(id, **payload);
  }
  co_return out;
}

asio::awaitable<std::map<std::uint32_t, oldmemo::LegacyBundle>> Client::fetch_legacy_bundles(
    const std::string& bare_jid, const std::vector<std::uint32_t>& ids) {
  auto payloads = co_await fetch_bundle_payloads(bare_jid, ids, true);
  co_return parse_bundles(bare_jid, payloads, "legacy", [](const xml::Element& e) { return oldmemo::bundle_from_xml(e); });
}

asio::awaitable<std::map<std::uint32_t, omemo::Bundle>> Client::fetch_pep_bundles(
    const std::string& bare_jid, const std::vector<std::uint32_t>& ids) {
  auto payloads = co_await fetch_bundle_payloads(bare_jid, ids, false);
  co_return parse_bundles(bare_jid, payloads, "OMEMO 2", [](const xml::Element& e) { return omemo::bundle_from_xml(e); });
}

asio::awaitable<Client::PepPlan> Client::plan_pep(const std::vector<std::string>& users,
                                                  const std::vector<omemo::DeviceAddress>& via_archive) {
  PepPlan plan;
  auto& trust = device_.store().trust();
  for (const std::string& user : users) {
    // One device, one way: the archive first, then OMEMO 2 in PEP, then legacy in PEP.
    std::vector<omemo::DeviceAddress> taken = via_archive;
    auto is_new = [&](const omemo::DeviceAddress& a) {
      if (a.jid == device_.jid() && a.device == device_.device_id()) return false;
      if (std::find(taken.begin(), taken.end(), a) != taken.end()) return false;
      taken.push_back(a);
      return true;
    };
    auto list2 = pep::omemo2_device_list(co_await pep_request(pep::get_items(user, omemo::kDevicesNode)));
    plan.looked_at.push_back("the OMEMO 2 device list in " + user + "'s PEP" + outcome_of(list2));
    if (list2.refused) plan.skipped.emplace_back(detail::address(user, 0), "OMEMO 2 device list: " + *list2.refused);
    std::vector<std::uint32_t> need2;
    for (std::uint32_t id : list2.ids) {
      omemo::DeviceAddress a = detail::address(user, id);
      if (is_new(a) && detail::sort_known(trust, a, device_.store().has_session(a), plan.omemo2_devices, plan.skipped))
        need2.push_back(id);
    }
    if (!need2.empty()) {
      auto bundles = co_await fetch_pep_bundles(user, need2);
      for (std::uint32_t id : need2) {
        omemo::DeviceAddress a = detail::address(user, id);
        auto it = bundles.find(id);
        if (it == bundles.end()) {
          plan.skipped.emplace_back(a, "no usable OMEMO 2 bundle in PEP");
          continue;
        }
        if (!detail::admit_from_bundle(trust, a, it->second.ik, plan.skipped)) continue;
        plan.omemo2_devices.push_back(a);
        plan.omemo2_bundles.emplace(a, std::move(it->second));
      }
    }

    auto list = co_await fetch_legacy_list(user);
    plan.looked_at.push_back("the legacy OMEMO device list in " + user + "'s PEP" + outcome_of(list));
    if (list.refused) plan.skipped.emplace_back(detail::address(user, 0), "legacy device list: " + *list.refused);
    std::vector<std::uint32_t> need_bundle;
    for (std::uint32_t id : list.ids) {
      omemo::DeviceAddress a = detail::address(user, id);
      if (is_new(a) && detail::sort_known(trust, a, device_.store().legacy().has_legacy_session(a), plan.devices, plan.skipped))
        need_bundle.push_back(id);
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
      if (!detail::admit_from_bundle(trust, a, *ik, plan.skipped)) continue;
      plan.devices.push_back(a);
      plan.bundles.emplace(a, std::move(it->second));
    }
  }
  co_return plan;
}

std::vector<std::string> Client::queue_chats(const std::vector<std::string>& recipients, const PepPlan& plan,
                                            const std::string& body, const std::string& origin_id, SendReport& report) {
  const std::int64_t now = options_.clock();
  std::vector<std::string> keys;
  auto queue = [&](const xml::Element& st) {
    // keyed apart from the archive's entries (those are keyed by origin-id), naming the
    // message's origin-id: its archive copy, when it has one, is found by it
    keys.push_back(chat_key_prefix(origin_id) + std::string(st.attr("id").value_or("")));
    auto entry = detail::outbox_entry(keys.back(), st, body, recipients, now);
    // sent in the order queued (the outbox lists by creation time)
    entry.created_us = last_chat_us_ = std::max(entry.created_us, last_chat_us_ + 1);
    device_.store().outbox().put(entry);
  };
  bool own_included = false;
  for (const std::string& user : recipients) {
    // this recipient's devices, and with the first one our own other devices (Carbons and
    // the server's MAM bring it to them)
    auto pick = [&](const std::vector<omemo::DeviceAddress>& from) {
      std::vector<omemo::DeviceAddress> out;
      for (const auto& a : from)
        if (a.jid == user || (!own_included && a.jid == device_.jid())) out.push_back(a);
      return out;
    };
    const auto legacy = pick(plan.devices), omemo2 = pick(plan.omemo2_devices);
    own_included = true;
    if (!omemo2.empty()) {
      auto outcome = detail::encrypt_for(device_, omemo2, plan.omemo2_bundles, body, now);
      for (const auto& [a, ec] : outcome.failed) report.skipped.emplace_back(a, detail::failure_reason(ec));
      if (!outcome.encrypted_for.empty()) {
        for (auto& a : outcome.encrypted_for) report.pep_omemo2_devices.push_back(std::move(a));
        queue(omemo2_chat_message(user, new_id(), origin_id, outcome.message));
      }
    }
    if (!legacy.empty()) {
      auto outcome = device_.encrypt_legacy(legacy, plan.bundles, bytes_of(body));
      for (const auto& [a, ec] : outcome.failed) report.skipped.emplace_back(a, detail::failure_reason(ec));
      if (!outcome.encrypted_for.empty()) {
        for (auto& a : outcome.encrypted_for) report.pep_devices.push_back(std::move(a));
        // The fallback body only when no OMEMO 2 message goes to the same JID: an OMEMO 2 app
        // there gets this one too, and would show the fallback beside the real message.
        queue(legacy_chat_message(user, new_id(), origin_id, outcome.message, omemo2.empty()));
      }
    }
  }
  return keys;
}

std::string Client::chat_key_prefix(const std::string& origin_id) {
  return std::string(kChatOutboxPrefix) + origin_id + ":";
}

asio::awaitable<std::size_t> Client::deliver_chats(const std::vector<std::string>* only) {
  std::vector<std::string> keys;
  std::vector<xml::Element> stanzas;
  const auto pending = device_.store().outbox().pending();
  std::set<std::string> parents;  // archive copies not receipted yet
  for (const OutboxEntry& o : pending)
    if (!o.origin_id.starts_with(kChatOutboxPrefix)) parents.insert(o.origin_id);
  const std::set<std::string> wanted = only ? std::set<std::string>(only->begin(), only->end()) : std::set<std::string>();
  for (const OutboxEntry& o : pending) {
    if (!o.origin_id.starts_with(kChatOutboxPrefix)) continue;
    if (only) {
      if (!wanted.count(o.origin_id)) continue;
    } else {
      // all of them: only those whose archive copy was receipted (or that have none); the
      // others go with their archive copy's receipt, or not at all when it is refused
      const std::string rest = o.origin_id.substr(kChatOutboxPrefix.size());
      if (parents.count(rest.substr(0, rest.find(':')))) continue;
    }
    auto st = xml::parse_element(o.stanza);
    if (!st) {
      spdlog::warn("dropping an unreadable outbox entry");
      device_.store().outbox().remove(o.origin_id);
      continue;
    }
    keys.push_back(o.origin_id);
    stanzas.push_back(std::move(*st));
  }
  if (stanzas.empty()) co_return 0;
  detail::failpoint("before-chat-send");
  for (const auto& st : stanzas) conn_.send(st);
  // A chat message gets no receipt, but the server handles one stream's stanzas in order: its
  // answer to a ping sent after them (any answer, even an error) says it has taken them. Until
  // then they stay in the outbox, and a crash or a lost connection sends them again (the same
  // stanza: a receiver that has it already drops it by its origin-id).
  xml::Element ping("iq");
  ping.set_attr("type", "get");
  if (auto own = Jid::parse(device_.jid())) ping.set_attr("to", own->domain());
  ping.add_child(xml::Element("ping", std::string(xmpp::kPingNs)));
  try {
    (void)co_await pep_request(std::move(ping));
  } catch (const ClientError& e) {
    if (e.kind() != ErrorKind::connection) throw;
    throw ClientError(ErrorKind::connection, "the server did not take " + std::to_string(stanzas.size()) +
                                                 " chat message(s) within " + std::to_string(options_.timeout.count()) +
                                                 " s; they stay in the outbox and go again with the next command");
  }
  detail::failpoint("before-chat-done");
  auto tx = device_.store().begin();
  for (const auto& k : keys) device_.store().outbox().remove(k);
  tx.commit();
  co_return stanzas.size();
}

void Client::drop_chats_of(const std::string& origin_id) {
  const std::string prefix = chat_key_prefix(origin_id);
  for (const OutboxEntry& o : device_.store().outbox().pending())
    if (o.origin_id.starts_with(prefix)) device_.store().outbox().remove(o.origin_id);
}

asio::awaitable<void> Client::handle_chat(const ChatMessage& chat, const MessageSink& sink) {
  Received r;
  {
    auto tx = device_.store().begin();
    r = device_.receive_chat(chat, options_.clock());
    tx.commit();
  }
  if (r.entry && sink) sink(*r.entry);
  co_await after_chats(r.prekey_used, std::move(r.empty_reply_to), std::move(r.omemo2_reply_to));
}

asio::awaitable<void> Client::after_chats(bool prekey_used, std::vector<omemo::DeviceAddress> reply_to,
                                          std::vector<omemo::DeviceAddress> omemo2_reply_to) {
  if (prekey_used && !removed_) (void)co_await publish_pep_bundles();  // changed: published again
  std::sort(omemo2_reply_to.begin(), omemo2_reply_to.end());
  omemo2_reply_to.erase(std::unique(omemo2_reply_to.begin(), omemo2_reply_to.end()), omemo2_reply_to.end());
  for (const auto& peer : omemo2_reply_to) {
    // completes an OMEMO 2 key exchange (or answers a heartbeat request) the way it came
    xml::Element st("message");
    {
      auto tx = device_.store().begin();
      std::vector<omemo::DeviceAddress> one;
      one.push_back(peer);
      const std::map<omemo::DeviceAddress, omemo::Bundle> none;
      auto outcome = detail::encrypt_for(device_, one, none, std::nullopt, options_.clock());
      if (outcome.encrypted_for.empty()) continue;
      st = omemo2_chat_message(peer.jid, new_id(), new_id(), outcome.message);
      tx.commit();
    }
    conn_.send(st);
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
