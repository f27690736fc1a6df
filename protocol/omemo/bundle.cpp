#include "protocol/omemo/bundle.hpp"

#include <charconv>

#include "protocol/crypto/base64.hpp"
#include "protocol/omemo/constants.hpp"

namespace multiend::omemo {
namespace {

template <class Key>
Result<Key> decode_key(const xml::Element* e) {
  if (!e) return Errc::bad_element;
  auto raw = crypto::base64_decode_public(e->text(), Key::size());
  if (!raw) return raw.error();
  if (raw->size() != Key::size()) return Errc::bad_key;
  return Key::from(*raw);
}

}  // namespace

Result<std::uint32_t> parse_id(std::string_view text) {
  std::uint32_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || text.empty() || text[0] == '+' ||
      v == 0 || v > kMaxId)
    return Errc::bad_element;
  return v;
}

xml::Element bundle_to_xml(const Bundle& b) {
  xml::Element bundle("bundle", std::string(kNs));
  bundle.add_child(xml::Element("spk", std::string(kNs)))
      .set_attr("id", std::to_string(b.spk_id))
      .add_text(crypto::base64_encode(b.spk.view()));
  bundle.add_child(xml::Element("spks", std::string(kNs))).add_text(crypto::base64_encode(b.spks.view()));
  bundle.add_child(xml::Element("ik", std::string(kNs))).add_text(crypto::base64_encode(b.ik.view()));
  auto& pks = bundle.add_child(xml::Element("prekeys", std::string(kNs)));
  for (const auto& pk : b.prekeys)
    pks.add_child(xml::Element("pk", std::string(kNs)))
        .set_attr("id", std::to_string(pk.id))
        .add_text(crypto::base64_encode(pk.key.view()));
  return bundle;
}

Result<Bundle> bundle_from_xml(const xml::Element& e) {
  if (e.name() != "bundle" || e.ns() != kNs) return Errc::bad_element;
  Bundle b;
  const xml::Element* spk = e.child("spk");
  if (!spk || !spk->attr("id")) return Errc::bad_element;
  auto spk_id = parse_id(*spk->attr("id"));
  if (!spk_id) return spk_id.error();
  b.spk_id = *spk_id;
  auto spk_key = decode_key<crypto::X25519Public>(spk);
  if (!spk_key) return spk_key.error();
  b.spk = *spk_key;
  auto spks = decode_key<crypto::Ed25519Signature>(e.child("spks"));
  if (!spks) return spks.error();
  b.spks = *spks;
  auto ik = decode_key<crypto::Ed25519Public>(e.child("ik"));
  if (!ik) return ik.error();
  b.ik = *ik;
  const xml::Element* prekeys = e.child("prekeys");
  if (!prekeys) return Errc::bad_element;
  auto pks = prekeys->children("pk");
  if (pks.empty()) return Errc::no_prekeys;
  if (pks.size() > kMaxPreKeysInBundle) return Errc::limit_exceeded;
  b.prekeys.reserve(pks.size());
  for (const xml::Element* pk : pks) {
    auto id_attr = pk->attr("id");
    if (!id_attr) return Errc::bad_element;
    auto id = parse_id(*id_attr);
    if (!id) return id.error();
    auto key = decode_key<crypto::X25519Public>(pk);
    if (!key) return key.error();
    b.prekeys.push_back({*id, *key});
  }
  return b;
}

}  // namespace multiend::omemo
