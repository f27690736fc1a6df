#include "protocol/omemo/encrypted_element.hpp"

#include "protocol/crypto/base64.hpp"
#include "protocol/jid.hpp"
#include "protocol/omemo/bundle.hpp"
#include "protocol/omemo/constants.hpp"

namespace multiend::omemo {
namespace {

Result<bool> parse_bool(std::optional<std::string_view> v) {
  if (!v || *v == "false" || *v == "0") return false;
  if (*v == "true" || *v == "1") return true;
  return Errc::bad_element;
}

}  // namespace

const KeyEntry* EncryptedMessage::find_key(std::string_view jid, std::uint32_t rid) const {
  for (const auto& g : groups) {
    if (g.jid != jid) continue;
    for (const auto& k : g.keys)
      if (k.rid == rid) return &k;
  }
  return nullptr;
}

std::size_t EncryptedMessage::key_count() const {
  std::size_t n = 0;
  for (const auto& g : groups) n += g.keys.size();
  return n;
}

xml::Element encrypted_to_xml(const EncryptedMessage& m) {
  const std::string ns(kNs);
  xml::Element enc("encrypted", ns);
  auto& header = enc.add_child(xml::Element("header", ns));
  header.set_attr("sid", std::to_string(m.sid));
  for (const auto& g : m.groups) {
    auto& keys = header.add_child(xml::Element("keys", ns));
    keys.set_attr("jid", g.jid);
    for (const auto& k : g.keys) {
      auto& key = keys.add_child(xml::Element("key", ns));
      key.set_attr("rid", std::to_string(k.rid));
      if (k.kex) key.set_attr("kex", "true");
      key.add_text(crypto::base64_encode(k.data));
    }
  }
  if (m.payload) enc.add_child(xml::Element("payload", ns)).add_text(crypto::base64_encode(*m.payload));
  return enc;
}

Result<EncryptedMessage> encrypted_from_xml(const xml::Element& e) {
  if (e.name() != "encrypted" || e.ns() != kNs) return Errc::bad_element;
  EncryptedMessage m;
  const xml::Element* header = e.child("header");
  if (!header || !header->attr("sid")) return Errc::bad_element;
  auto sid = parse_id(*header->attr("sid"));
  if (!sid) return sid.error();
  m.sid = *sid;
  std::size_t total = 0;
  for (const xml::Element* keys : header->children("keys")) {
    auto jid_attr = keys->attr("jid");
    if (!jid_attr) return Errc::bad_element;
    auto jid = Jid::parse(*jid_attr);
    if (!jid || !jid->is_bare()) return Errc::bad_element;
    KeysGroup g;
    g.jid = jid->to_string();
    auto key_elems = keys->children("key");
    if (key_elems.empty()) return Errc::bad_element;
    total += key_elems.size();
    if (total > kMaxKeysPerMessage) return Errc::limit_exceeded;
    for (const xml::Element* key : key_elems) {
      auto rid_attr = key->attr("rid");
      if (!rid_attr) return Errc::bad_element;
      auto rid = parse_id(*rid_attr);
      if (!rid) return rid.error();
      auto kex = parse_bool(key->attr("kex"));
      if (!kex) return kex.error();
      auto data = crypto::base64_decode_public(key->text(), kMaxKeyElementBytes);
      if (!data) return data.error();
      g.keys.push_back({*rid, *kex, std::move(*data)});
    }
    m.groups.push_back(std::move(g));
  }
  if (m.groups.empty()) return Errc::bad_element;
  if (const xml::Element* payload = e.child("payload")) {
    auto data = crypto::base64_decode_public(payload->text(), kMaxPayloadBytes);
    if (!data) return data.error();
    if (data->empty()) return Errc::bad_element;
    m.payload = std::move(*data);
  }
  return m;
}

}  // namespace multiend::omemo
