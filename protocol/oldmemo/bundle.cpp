#include "protocol/oldmemo/bundle.hpp"

#include <algorithm>

#include "protocol/crypto/base64.hpp"
#include "protocol/oldmemo/constants.hpp"
#include "protocol/oldmemo/signal_message.hpp"
#include "protocol/omemo/constants.hpp"

namespace multiend::oldmemo {
namespace {

std::string ns() { return std::string(kNs); }

// Line-wrapped base64 has been seen from old Conversations: whitespace is dropped first.
Result<crypto::Bytes> decode(const xml::Element* e, std::size_t max) {
  if (!e) return Errc::bad_element;
  std::string text;
  for (char c : e->text())
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') text.push_back(c);
  return crypto::base64_decode_public(text, max);
}

Result<crypto::X25519Public> key_of(const xml::Element* e) {
  auto raw = decode(e, kKeySize);
  if (!raw) return raw.error();
  return decode_key(*raw);
}

xml::Element keyed(const char* name, const crypto::X25519Public& k) {
  xml::Element e(name, ns());
  e.add_text(crypto::base64_encode(encode_key(k)));
  return e;
}

}  // namespace

xml::Element bundle_to_xml(const LegacyBundle& b) {
  xml::Element bundle("bundle", ns());
  bundle.add_child(keyed("signedPreKeyPublic", b.spk)).set_attr("signedPreKeyId", std::to_string(b.spk_id));
  bundle.add_child(xml::Element("signedPreKeySignature", ns())).add_text(crypto::base64_encode(b.spk_signature.view()));
  bundle.add_child(keyed("identityKey", b.ik));
  auto& pks = bundle.add_child(xml::Element("prekeys", ns()));
  for (const auto& pk : b.prekeys) pks.add_child(keyed("preKeyPublic", pk.key)).set_attr("preKeyId", std::to_string(pk.id));
  return bundle;
}

Result<LegacyBundle> bundle_from_xml(const xml::Element& e) {
  if (e.name() != "bundle" || e.ns() != kNs) return Errc::bad_element;
  LegacyBundle b;
  const xml::Element* spk = e.child("signedPreKeyPublic", kNs);
  if (!spk || !spk->attr("signedPreKeyId")) return Errc::bad_element;
  auto spk_id = omemo::parse_id(*spk->attr("signedPreKeyId"));
  if (!spk_id) return spk_id.error();
  b.spk_id = *spk_id;
  auto spk_key = key_of(spk);
  if (!spk_key) return spk_key.error();
  b.spk = *spk_key;
  auto sig = decode(e.child("signedPreKeySignature", kNs), 64);
  if (!sig) return sig.error();
  if (sig->size() != 64) return Errc::bad_signature;
  b.spk_signature = crypto::Ed25519Signature::from(*sig);
  auto ik = key_of(e.child("identityKey", kNs));
  if (!ik) return ik.error();
  b.ik = *ik;
  const xml::Element* prekeys = e.child("prekeys", kNs);
  if (!prekeys) return Errc::bad_element;
  auto pks = prekeys->children("preKeyPublic");
  if (pks.empty()) return Errc::no_prekeys;
  if (pks.size() > omemo::kMaxPreKeysInBundle) return Errc::limit_exceeded;
  b.prekeys.reserve(pks.size());
  for (const xml::Element* pk : pks) {
    if (pk->ns() != kNs || !pk->attr("preKeyId")) return Errc::bad_element;
    // libsignal's pre key ids are 24-bit, ours and oldmemo's 31-bit: both fit parse_id.
    auto id = omemo::parse_id(*pk->attr("preKeyId"));
    if (!id) return id.error();
    auto key = key_of(pk);
    if (!key) return key.error();
    b.prekeys.push_back({*id, *key});
  }
  return b;
}

xml::Element device_list_to_xml(const std::vector<std::uint32_t>& ids) {
  if (ids.empty()) throw std::logic_error("an empty legacy device list is never published");
  xml::Element list("list", ns());
  for (auto id : ids) list.add_child(xml::Element("device", ns())).set_attr("id", std::to_string(id));
  return list;
}

Result<std::vector<std::uint32_t>> device_list_from_xml(const xml::Element& e) {
  if (e.name() != "list" || e.ns() != kNs) return Errc::bad_element;
  std::vector<std::uint32_t> ids;
  for (const xml::Element* d : e.children("device")) {
    if (d->ns() != kNs) continue;
    auto id = omemo::parse_id(d->attr("id").value_or(""));
    if (!id) return id.error();
    if (std::find(ids.begin(), ids.end(), *id) != ids.end()) continue;
    if (ids.size() == omemo::kMaxDevicesInList) return Errc::limit_exceeded;
    ids.push_back(*id);
  }
  return ids;
}

}  // namespace multiend::oldmemo
