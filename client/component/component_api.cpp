#include "client/component/component_api.hpp"

#include <charconv>

#include "protocol/crypto/base64.hpp"

#include "protocol/omemo/constants.hpp"
#include "protocol/xmpp/data_form.hpp"
#include "protocol/xmpp/datetime.hpp"
#include "protocol/xmpp/namespaces.hpp"

namespace multiend::client::component {
namespace {

using xml::Element;
constexpr std::size_t kMaxRecipients = 1000;  // more than the component accepts

std::string ns(std::string_view v) { return std::string(v); }

Element iq(std::string_view type, const std::string& to) {
  Element e("iq");
  e.set_attr("type", std::string(type));
  e.set_attr("to", to);
  return e;
}

std::optional<std::uint32_t> parse_u32(std::string_view s) {
  std::uint32_t v = 0;
  if (s.empty() || s[0] < '0' || s[0] > '9') return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// Decimal archive ids only: anything else from the network is refused.
bool valid_stanza_id(std::string_view id) {
  if (id.empty() || id.size() > 20) return false;
  for (char c : id)
    if (c < '0' || c > '9') return false;
  return true;
}

std::optional<std::string> bare_of(std::string_view jid) {
  auto j = Jid::parse(jid);
  if (!j) return std::nullopt;
  return j->bare_string();
}

bool from_is(const Element& stanza, const std::string& jid) {
  auto from = stanza.attr("from");
  if (!from) return false;
  auto a = Jid::parse(*from);
  auto b = Jid::parse(jid);
  return a && b && *a == *b;
}

// The <items> of a pubsub result, or an error.
Result<const Element*> items_of(const Element& reply) {
  if (reply.attr("type") != "result") return Errc::bad_element;
  const Element* pubsub = reply.child("pubsub", xmpp::kPubsubNs);
  if (!pubsub) return Errc::bad_element;
  const Element* items = pubsub->child("items", xmpp::kPubsubNs);
  if (!items) return Errc::bad_element;
  return items;
}

// <forwarded><delay/><message/></forwarded> → stored time and the inner message.
std::optional<Archived> open_forwarded(const Element& forwarded, std::string stanza_id) {
  if (!valid_stanza_id(stanza_id)) return std::nullopt;
  Archived a;
  a.stanza_id = std::move(stanza_id);
  if (const Element* delay = forwarded.child("delay", xmpp::kDelayNs)) {
    if (auto stamp = delay->attr("stamp"))
      if (auto t = xmpp::parse_datetime(*stamp)) a.stored_us = *t;
  }
  const Element* inner = forwarded.child("message", xmpp::kClientNs);
  if (!inner) return std::nullopt;
  a.message = *inner;
  return a;
}

}  // namespace

std::string node_jid(const std::string& user_bare, const std::string& component) {
  const auto at = user_bare.find('@');
  return user_bare.substr(0, at) + "@" + component;
}

std::optional<std::string> user_of_node(std::string_view node, const std::string& component,
                                        const std::string& user_domain) {
  auto j = Jid::parse(node);
  if (!j || j->local().empty() || j->domain() != component) return std::nullopt;
  return j->local() + "@" + user_domain;
}

Element publish_bundle(const std::string& node, std::uint32_t device, const omemo::Bundle& bundle) {
  Element e = iq("set", node);
  auto& pubsub = e.add_child(Element("pubsub", ns(xmpp::kPubsubNs)));
  auto& publish = pubsub.add_child(Element("publish", ns(xmpp::kPubsubNs)));
  publish.set_attr("node", std::string(omemo::kBundlesNode));
  publish.add_child(Element("item", ns(xmpp::kPubsubNs)))
      .set_attr("id", std::to_string(device))
      .add_child(omemo::bundle_to_xml(bundle));
  // XEP-0384: the bundle node is open and keeps every device's item.
  xmpp::DataForm form;
  form.type = "submit";
  form.fields.push_back({"FORM_TYPE", "hidden", {std::string(xmpp::kPublishOptionsForm)}});
  form.fields.push_back({"pubsub#max_items", "", {"max"}});
  form.fields.push_back({"pubsub#access_model", "", {"open"}});
  pubsub.add_child(Element("publish-options", ns(xmpp::kPubsubNs))).add_child(xmpp::data_form_to_xml(form));
  return e;
}

Element publish_device_list(const std::string& node, const omemo::DeviceList& list) {
  Element e = iq("set", node);
  auto& publish = e.add_child(Element("pubsub", ns(xmpp::kPubsubNs))).add_child(Element("publish", ns(xmpp::kPubsubNs)));
  publish.set_attr("node", std::string(omemo::kDevicesNode));
  publish.add_child(Element("item", ns(xmpp::kPubsubNs))).set_attr("id", "current").add_child(omemo::device_list_to_xml(list));
  return e;
}

Element get_device_list(const std::string& node) {
  Element e = iq("get", node);
  e.add_child(Element("pubsub", ns(xmpp::kPubsubNs)))
      .add_child(Element("items", ns(xmpp::kPubsubNs)))
      .set_attr("node", std::string(omemo::kDevicesNode));
  return e;
}

Element get_bundles(const std::string& node, const std::vector<std::uint32_t>& devices) {
  Element e = iq("get", node);
  auto& items = e.add_child(Element("pubsub", ns(xmpp::kPubsubNs))).add_child(Element("items", ns(xmpp::kPubsubNs)));
  items.set_attr("node", std::string(omemo::kBundlesNode));
  for (auto d : devices) items.add_child(Element("item", ns(xmpp::kPubsubNs))).set_attr("id", std::to_string(d));
  return e;
}

Element get_prekey_counts(const std::string& node) {
  Element e = iq("get", node);
  e.add_child(Element("prekeys", ns(xmpp::kMultiendNs)));
  return e;
}

Element get_identities(const std::string& node) {
  Element e = iq("get", node);
  e.add_child(Element("identity", ns(xmpp::kMultiendNs)));
  return e;
}

std::map<std::uint32_t, crypto::Ed25519Public> parse_identities(const Element& reply) {
  std::map<std::uint32_t, crypto::Ed25519Public> out;
  const Element* idn = reply.child("identity", xmpp::kMultiendNs);
  if (iq_error(reply) || !idn) return out;
  for (const Element* d : idn->children("device", xmpp::kMultiendNs)) {
    auto id = omemo::parse_id(d->attr("id").value_or(""));
    auto raw = crypto::base64_decode(d->attr("ik").value_or(""), 64);
    if (!id || !raw || raw->size() != crypto::Ed25519Public::size()) continue;
    out.emplace(*id, crypto::Ed25519Public::from(*raw));
  }
  return out;
}

std::optional<xmpp::StanzaError> iq_error(const Element& reply) {
  if (reply.attr("type") != "error") return std::nullopt;
  auto err = xmpp::parse_stanza_error(reply);
  if (!err) return xmpp::StanzaError{xmpp::ErrorType::cancel, "undefined-condition"};
  return *err;
}

Result<omemo::DeviceList> parse_device_list_reply(const Element& reply) {
  if (auto err = iq_error(reply)) {
    if (err->condition == "item-not-found") return omemo::DeviceList{};
    return Errc::bad_request;
  }
  auto items = items_of(reply);
  if (!items) return items.error();
  for (const Element* item : (*items)->children("item", xmpp::kPubsubNs)) {
    const Element* devices = item->child("devices", omemo::kNs);
    if (!devices) continue;
    return omemo::device_list_from_xml(*devices);
  }
  return omemo::DeviceList{};
}

Result<BundlesReply> parse_bundles_reply(const Element& reply) {
  if (auto err = iq_error(reply)) {
    if (err->condition == "item-not-found") return BundlesReply{};
    return Errc::bad_request;
  }
  auto items = items_of(reply);
  if (!items) return items.error();
  BundlesReply out;
  for (const Element* item : (*items)->children("item", xmpp::kPubsubNs)) {
    auto id = omemo::parse_id(item->attr("id").value_or(""));
    if (!id) continue;
    const Element* b = item->child("bundle", omemo::kNs);
    auto bundle = b ? omemo::bundle_from_xml(*b) : Result<omemo::Bundle>(Errc::bad_element);
    if (bundle)
      out.bundles.emplace(*id, std::move(*bundle));
    else
      out.bad.push_back(*id);
  }
  return out;
}

Result<std::map<std::uint32_t, std::uint32_t>> parse_prekey_counts(const Element& reply) {
  if (iq_error(reply)) return Errc::bad_request;
  const Element* p = reply.child("prekeys", xmpp::kMultiendNs);
  if (!p) return Errc::bad_element;
  std::map<std::uint32_t, std::uint32_t> out;
  for (const Element* d : p->children("device", xmpp::kMultiendNs)) {
    auto id = parse_u32(d->attr("id").value_or(""));
    auto remaining = parse_u32(d->attr("remaining").value_or(""));
    if (!id || !remaining) return Errc::bad_element;
    out[*id] = *remaining;
  }
  return out;
}

Element mam_query(const std::string& component, const std::string& query_id,
                  const std::optional<std::string>& after_id, std::uint32_t max) {
  Element e = iq("set", component);
  auto& query = e.add_child(Element("query", ns(xmpp::kMamNs)));
  query.set_attr("queryid", query_id);
  auto& set = query.add_child(Element("set", ns(xmpp::kRsmNs)));
  set.add_child(Element("max", ns(xmpp::kRsmNs))).add_text(std::to_string(max));
  if (after_id) set.add_child(Element("after", ns(xmpp::kRsmNs))).add_text(*after_id);
  return e;
}

Result<MamFin> parse_mam_fin(const Element& reply) {
  if (auto err = iq_error(reply)) return err->condition == "item-not-found" ? Errc::bad_request : Errc::unsupported;
  if (reply.attr("type") != "result") return Errc::bad_element;
  const Element* fin = reply.child("fin", xmpp::kMamNs);
  if (!fin) return Errc::bad_element;
  MamFin out;
  auto complete = fin->attr("complete");
  out.complete = complete == "true" || complete == "1";
  if (const Element* set = fin->child("set", xmpp::kRsmNs))
    if (const Element* last = set->child("last", xmpp::kRsmNs)) {
      if (!valid_stanza_id(last->text())) return Errc::bad_element;
      out.last = last->text();
    }
  return out;
}

std::optional<Archived> parse_mam_result(const Element& stanza, const std::string& component,
                                         const std::string& query_id) {
  if (stanza.name() != "message" || !from_is(stanza, component)) return std::nullopt;
  const Element* result = stanza.child("result", xmpp::kMamNs);
  if (!result || result->attr("queryid") != query_id) return std::nullopt;
  const Element* forwarded = result->child("forwarded", xmpp::kForwardNs);
  if (!forwarded) return std::nullopt;
  return open_forwarded(*forwarded, std::string(result->attr("id").value_or("")));
}

std::optional<Archived> parse_fanout(const Element& stanza, const std::string& component) {
  if (stanza.name() != "message" || !from_is(stanza, component)) return std::nullopt;
  const Element* forwarded = stanza.child("forwarded", xmpp::kForwardNs);
  const Element* sid = stanza.child("stanza-id", xmpp::kSidNs);
  if (!forwarded || !sid || sid->attr("by") != component) return std::nullopt;
  return open_forwarded(*forwarded, std::string(sid->attr("id").value_or("")));
}

Element archive_message(const std::string& component, const std::string& id, const std::string& origin_id,
                        const omemo::EncryptedMessage& encrypted, const std::vector<omemo::DeviceAddress>& excluded) {
  Element m("message");
  m.set_attr("to", component);
  m.set_attr("type", "normal");
  m.set_attr("id", id);
  m.add_child(omemo::encrypted_to_xml(encrypted));
  m.add_child(Element("origin-id", ns(xmpp::kSidNs))).set_attr("id", origin_id);
  if (!excluded.empty()) {
    auto& ex = m.add_child(Element("excluded", ns(xmpp::kMultiendNs)));
    for (const auto& d : excluded)
      ex.add_child(Element("device", ns(xmpp::kMultiendNs))).set_attr("jid", d.jid).set_attr("id", std::to_string(d.device));
  }
  m.add_child(Element("store", ns(xmpp::kHintsNs)));
  return m;
}

std::optional<Receipt> parse_receipt(const Element& stanza, const std::string& component) {
  if (stanza.name() != "message" || !from_is(stanza, component)) return std::nullopt;
  const Element* received = stanza.child("received", xmpp::kReceiptsNs);
  const Element* sid = stanza.child("stanza-id", xmpp::kSidNs);
  if (!received || !sid) return std::nullopt;
  Receipt r{std::string(received->attr("id").value_or("")), std::string(sid->attr("id").value_or(""))};
  if (r.id.empty() || !valid_stanza_id(r.stanza_id)) return std::nullopt;
  return r;
}

std::optional<Bounce> parse_bounce(const Element& stanza, const std::string& component) {
  if (stanza.name() != "message" || stanza.attr("type") != "error" || !from_is(stanza, component)) return std::nullopt;
  auto err = xmpp::parse_stanza_error(stanza);
  if (!err) return std::nullopt;
  Bounce b{std::string(stanza.attr("id").value_or("")), *err, {}};
  if (const Element* error = stanza.child("error"))
    if (const Element* missing = error->child("missing-devices", xmpp::kMultiendNs))
      for (const Element* d : missing->children("device", xmpp::kMultiendNs)) {
        auto jid = bare_of(d->attr("jid").value_or(""));
        auto id = omemo::parse_id(d->attr("id").value_or(""));
        if (jid && id && b.missing.size() < kMaxRecipients * 16) b.missing.push_back({*jid, *id});
      }
  return b;
}

std::optional<std::uint32_t> parse_prekeys_low(const Element& stanza, const std::string& component) {
  if (stanza.name() != "message" || !from_is(stanza, component)) return std::nullopt;
  const Element* low = stanza.child("prekeys-low", xmpp::kMultiendNs);
  if (!low) return std::nullopt;
  return parse_u32(low->attr("device").value_or(""));
}

Result<Envelope> open_archived(const Archived& a) {
  auto from = Jid::parse(a.message.attr("from").value_or(""));
  if (!from || from->is_bare() || from->local().empty()) return Errc::bad_jid;
  const Element* enc = a.message.child("encrypted", omemo::kNs);
  if (!enc) return Errc::bad_element;
  auto parsed = omemo::encrypted_from_xml(*enc);
  if (!parsed) return parsed.error();
  Envelope out;
  out.sender_bare = from->bare_string();
  out.encrypted = std::move(*parsed);
  auto add = [&](std::string_view jid) {
    auto b = bare_of(jid);
    if (!b || *b == out.sender_bare || out.recipients.size() >= kMaxRecipients) return;
    for (const auto& r : out.recipients)
      if (r == *b) return;
    out.recipients.push_back(*b);
  };
  for (const auto& g : out.encrypted.groups) add(g.jid);
  if (const Element* addresses = a.message.child("addresses", xmpp::kAddressNs))
    for (const Element* ad : addresses->children("address", xmpp::kAddressNs)) {
      auto type = ad->attr("type");
      if (type == "to" || type == "cc") add(ad->attr("jid").value_or(""));
    }
  return out;
}

}  // namespace multiend::client::component
