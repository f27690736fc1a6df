#include "protocol/oldmemo/encrypted_element.hpp"

#include "protocol/crypto/base64.hpp"
#include "protocol/oldmemo/constants.hpp"
#include "protocol/omemo/bundle.hpp"
#include "protocol/omemo/constants.hpp"

namespace multiend::oldmemo {
namespace {

std::string ns() { return std::string(kNs); }

Result<bool> parse_prekey(std::optional<std::string_view> v) {
  if (!v || *v == "false" || *v == "0") return false;
  if (*v == "true" || *v == "1") return true;
  return Errc::bad_element;
}

}  // namespace

std::vector<const LegacyKey*> LegacyEncrypted::keys_for(std::uint32_t rid) const {
  std::vector<const LegacyKey*> out;
  for (const auto& k : keys)
    if (k.rid == rid) out.push_back(&k);
  return out;
}

xml::Element encrypted_to_xml(const LegacyEncrypted& m) {
  xml::Element enc("encrypted", ns());
  auto& header = enc.add_child(xml::Element("header", ns()));
  header.set_attr("sid", std::to_string(m.sid));
  for (const auto& k : m.keys) {
    auto& key = header.add_child(xml::Element("key", ns()));
    key.set_attr("rid", std::to_string(k.rid));
    if (k.prekey) key.set_attr("prekey", "true");
    key.add_text(crypto::base64_encode(k.data));
  }
  header.add_child(xml::Element("iv", ns())).add_text(crypto::base64_encode(m.iv));
  if (m.payload) enc.add_child(xml::Element("payload", ns())).add_text(crypto::base64_encode(*m.payload));
  return enc;
}

Result<LegacyEncrypted> encrypted_from_xml(const xml::Element& e) {
  if (e.name() != "encrypted" || e.ns() != kNs) return Errc::bad_element;
  const xml::Element* header = e.child("header", kNs);
  if (!header) return Errc::bad_element;
  LegacyEncrypted m;
  auto sid = omemo::parse_id(header->attr("sid").value_or(""));
  if (!sid) return sid.error();
  m.sid = *sid;
  const auto keys = header->children("key");
  if (keys.size() > omemo::kMaxKeysPerMessage) return Errc::limit_exceeded;
  m.keys.reserve(keys.size());
  for (const xml::Element* key : keys) {
    if (key->ns() != kNs) continue;
    auto rid = omemo::parse_id(key->attr("rid").value_or(""));
    if (!rid) return rid.error();
    auto prekey = parse_prekey(key->attr("prekey"));
    if (!prekey) return prekey.error();
    auto data = crypto::base64_decode_public(key->text(), omemo::kMaxKeyElementBytes);
    if (!data) return data.error();
    m.keys.push_back({*rid, *prekey, std::move(*data)});
  }
  const xml::Element* iv = header->child("iv", kNs);
  if (!iv) return Errc::bad_element;
  auto iv_bytes = crypto::base64_decode_public(iv->text(), 16);
  if (!iv_bytes) return iv_bytes.error();
  if (iv_bytes->size() != 12 && iv_bytes->size() != 16) return Errc::bad_element;
  m.iv = std::move(*iv_bytes);
  if (const xml::Element* payload = e.child("payload", kNs)) {
    auto data = crypto::base64_decode_public(payload->text(), omemo::kMaxPayloadBytes);
    if (!data) return data.error();
    m.payload = std::move(*data);
  }
  return m;
}

}  // namespace multiend::oldmemo
