// Every step of shared/reference/oldmemo_vectors.json (python3-oldmemo 1.0.3, checked against
// libsignal-protocol-c): identities in both forms, the SPK signature with the Ed25519 sign bit,
// X3DH with "WhisperText", the three messages byte for byte (PreKeySignalMessage, the reply,
// an empty KeyTransport message) built from the primitives, and parsing them back.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "protocol/crypto/aes_cbc.hpp"
#include "protocol/crypto/aes_gcm.hpp"
#include "protocol/crypto/kdf.hpp"
#include "protocol/crypto/xeddsa.hpp"
#include "protocol/oldmemo/bundle.hpp"
#include "protocol/oldmemo/encrypted_element.hpp"
#include "protocol/oldmemo/legacy_wire.hpp"
#include "protocol/oldmemo/signal_message.hpp"
#include "protocol/oldmemo/x3dh.hpp"
#include "protocol/omemo/double_ratchet.hpp"
#include "protocol/omemo/session_manager.hpp"
#include "protocol/xml/serializer.hpp"
#include "protocol/xml/stream_parser.hpp"
#include "tests/support/hex.hpp"

using namespace multiend;
using namespace multiend::crypto;
using namespace multiend::oldmemo;
using test::hex;
using test::unhex;

namespace {

const nlohmann::json& V() {
  static const nlohmann::json v = [] {
    std::ifstream f(std::string(MULTIEND_REFERENCE_DIR) + "/oldmemo_vectors.json");
    if (!f) throw std::runtime_error("oldmemo_vectors.json not found");
    return nlohmann::json::parse(f);
  }();
  return v;
}
std::string s(const char* k) { return V().at(k).get<std::string>(); }
std::string s(const std::string& k) { return V().at(k).get<std::string>(); }
template <std::size_t N>
Secret<N> sec(const std::string& k) { return test::secret_hex<N>(s(k)); }
template <class P>
P pub(const std::string& k) { return test::public_hex<P>(s(k)); }

IdentityKeyPair identity(const char* who) { return IdentityKeyPair::from_seed(sec<32>(std::string(who) + "_ik_seed")); }
X25519Public x_of(const IdentityKeyPair& ik) { return *ed25519_pub_to_x25519(ik.pub()); }

Bytes cat(ByteView a, ByteView b) {
  Bytes out(a.begin(), a.end());
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

Secret<32> dh(const std::string& priv, const std::string& pub_key) {
  return *x25519(sec<32>(priv), pub<X25519Public>(pub_key));
}

std::pair<Secret<32>, Secret<32>> kdf_rk_legacy(const Secret<32>& rk, const Secret<32>& dh_out) {
  Secret<64> out;
  hkdf_sha256(dh_out.view(), rk.view(), kInfoRootChain, out.span());
  return {Secret<32>(ByteView(out.data(), 32)), Secret<32>(ByteView(out.data() + 32, 32))};
}

// One DR message from its chain key: message keys, AES-256-CBC, body, MAC, parse back.
Bytes check_message(const std::string& m, const Secret<32>& ck, const SignalHeader& h, ByteView plaintext, ByteView ad) {
  auto [next_ck, mk] = omemo::kdf_ck(ck);
  CHECK(hex(mk.view()) == s(m + "_mk"));
  Secret<80> keys;
  hkdf_sha256(mk.view(), {}, kInfoMessageKeys, keys.span());
  CHECK(hex(ByteView(keys.data(), 32)) == s(m + "_dr_aes_key"));
  CHECK(hex(ByteView(keys.data() + 32, 32)) == s(m + "_dr_mac_key"));
  CHECK(hex(ByteView(keys.data() + 64, 16)) == s(m + "_dr_iv"));
  Secret<32> aes(ByteView(keys.data(), 32)), mac_key(ByteView(keys.data() + 32, 32));
  Bytes ct = aes256_cbc_encrypt(aes, ByteView(keys.data() + 64, 16), plaintext);
  CHECK(hex(ct) == s(m + "_dr_ct"));
  Bytes body = signal_message_body(h, ct);
  CHECK(hex(body) == s(m + "_dr_body"));
  auto mac = signal_message_mac(mac_key, ad, body);
  CHECK(hex(mac) == s(m + "_dr_mac8"));
  Bytes wire = cat(body, mac);
  CHECK(hex(wire) == s(m + "_dr_signal_message"));

  auto parsed = parse_signal_message(wire);
  REQUIRE(parsed.has_value());
  CHECK(parsed->header.ratchet_key == h.ratchet_key);
  CHECK(parsed->header.counter == h.counter);
  CHECK(parsed->header.previous_counter == h.previous_counter);
  CHECK(parsed->ciphertext == ct);
  CHECK(ct_equal(parsed->mac, ByteView(mac)));
  auto opened = aes256_cbc_decrypt(aes, ByteView(keys.data() + 64, 16), parsed->ciphertext);
  REQUIRE(opened.has_value());
  CHECK(ct_equal(opened->view(), plaintext));
  return wire;
}

}  // namespace

TEST_CASE("vectors: one Ed25519 identity serves legacy OMEMO in its Curve25519 form") {
  for (const char* who : {"alice", "bob"}) {
    auto ik = identity(who);
    const std::string w(who);
    CHECK(hex(ik.pub().view()) == s(w + "_ik_ed25519_pub"));
    CHECK(((ik.pub().bytes[31] >> 7) & 1) == V().at(w + "_ik_ed25519_sign_bit").get<int>());
    CHECK(hex(ik.x25519_private().view()) == s(w + "_ik_x25519_priv"));
    CHECK(hex(x_of(ik).view()) == s(w + "_ik_x25519_pub"));
    CHECK(hex(encode_key(x_of(ik))) == s(w + "_identityKey_wire"));
    // and back: the Edwards key from u and the sign bit
    auto back = curve25519_to_ed25519(x_of(ik), (ik.pub().bytes[31] & 0x80) != 0);
    REQUIRE(back.has_value());
    CHECK(*back == ik.pub());
  }
  CHECK(omemo::SessionManager::fingerprint_of(identity("bob").pub()) == s("bob_fingerprint"));
}

TEST_CASE("vectors: the signed prekey signature carries the identity's sign bit") {
  auto bob = identity("bob");
  const Bytes signed_message = encode_key(pub<X25519Public>("bob_spk_pub"));
  CHECK(hex(signed_message) == s("bob_spk_signed_message"));
  CHECK(hex(bob.sign(signed_message).view()) == s("bob_spk_sig_raw"));
  const Ed25519Signature published = sign_with_sign_bit(bob, signed_message);
  CHECK(hex(published.view()) == s("bob_spk_sig_published"));

  auto a = verify_with_sign_bit(x_of(bob), signed_message, published);
  REQUIRE(a.has_value());
  CHECK(*a == bob.pub());
  // the raw signature (bit 7 clear) names the other Edwards key: refused
  CHECK(verify_with_sign_bit(x_of(bob), signed_message, pub<Ed25519Signature>("bob_spk_sig_raw")).error() ==
        Errc::bad_signature);
  // libxeddsa's randomized signature over the same message
  auto lx = verify_with_sign_bit(x_of(bob), signed_message, pub<Ed25519Signature>("xeddsa_bob_spk_sig_libxeddsa_published"));
  REQUIRE(lx.has_value());
  CHECK(*lx == bob.pub());
  // a libsignal identity (a raw clamped Curve25519 key), both signature conventions
  const auto ls_u = pub<X25519Public>("xeddsa_libsignal_ik_x25519_pub");
  const Bytes ls_msg = unhex(s("xeddsa_libsignal_signed_message"));
  auto ls = verify_with_sign_bit(ls_u, ls_msg, pub<Ed25519Signature>("xeddsa_libsignal_sig"));
  REQUIRE(ls.has_value());
  CHECK(hex(ls->view()) == s("xeddsa_libsignal_ik_ed25519_pub"));
  auto proper = verify_with_sign_bit(ls_u, ls_msg, pub<Ed25519Signature>("xeddsa_libsignal_sig_xeddsa_proper"));
  REQUIRE(proper.has_value());
  CHECK(hex(proper->view()) == s("xeddsa_libsignal_ik_ed25519_pub_negated"));
  // a flipped message bit fails
  Bytes other = signed_message;
  other[5] ^= 1;
  CHECK_FALSE(verify_with_sign_bit(x_of(bob), other, published).has_value());
}

TEST_CASE("vectors: X3DH, the ratchet and three messages byte for byte") {
  auto alice = identity("alice");
  auto bob = identity("bob");
  const Bytes alice_ik33 = encode_key(x_of(alice)), bob_ik33 = encode_key(x_of(bob));

  // X3DH (Alice's side)
  const auto alice_ik_priv = alice.x25519_private();
  CHECK(hex(x25519(alice_ik_priv, pub<X25519Public>("bob_spk_pub"))->view()) == s("dh1"));
  CHECK(hex(dh("alice_ek_priv", "bob_ik_x25519_pub").view()) == s("dh2"));
  CHECK(hex(dh("alice_ek_priv", "bob_spk_pub").view()) == s("dh3"));
  CHECK(hex(dh("alice_ek_priv", "bob_opk_pub").view()) == s("dh4"));
  Bytes ikm(32, 0xFF);
  for (const char* k : {"dh1", "dh2", "dh3", "dh4"}) {
    auto b = unhex(s(k));
    ikm.insert(ikm.end(), b.begin(), b.end());
  }
  Secret<32> sk;
  hkdf_sha256(ikm, {}, kInfoX3dh, sk.span());
  CHECK(hex(sk.view()) == s("x3dh_sk"));
  Secret<64> sk64;
  hkdf_sha256(ikm, {}, kInfoX3dh, sk64.span());
  CHECK(hex(sk64.view()) == s("x3dh_hkdf64_libsignal"));
  const Bytes ad_ab = cat(alice_ik33, bob_ik33), ad_ba = cat(bob_ik33, alice_ik33);
  CHECK(hex(ad_ab) == s("ad_alice_to_bob"));
  CHECK(hex(ad_ba) == s("ad_bob_to_alice"));

  // Message 1: Alice's first sending chain, a content message in a PreKeySignalMessage
  auto [rk1, cks0] = kdf_rk_legacy(sk, dh("alice_ratchet0_priv", "bob_spk_pub"));
  CHECK(hex(rk1.view()) == s("rk1"));
  CHECK(hex(cks0.view()) == s("alice_cks0"));
  CHECK(hex(omemo::kdf_ck(cks0).first.view()) == s("alice_cks1"));
  auto sealed = aes128_gcm_encrypt(sec<16>("msg1_payload_key"), unhex(s("msg1_iv")), unhex(s("msg1_plaintext")));
  CHECK(hex(sealed.ciphertext) == s("msg1_payload"));
  CHECK(hex(sealed.tag) == s("msg1_gcm_tag"));
  const Bytes km1 = cat(unhex(s("msg1_payload_key")), sealed.tag);
  CHECK(hex(km1) == s("msg1_key_material"));
  const Bytes msg1 = check_message("msg1", cks0, {pub<X25519Public>("alice_ratchet0_pub"), 0, 0}, km1, ad_ab);
  const PreKeyHeader kex{V().at("pk_id").get<std::uint32_t>(), V().at("spk_id").get<std::uint32_t>(),
                         pub<X25519Public>("alice_ek_pub"), x_of(alice)};
  const Bytes pksm = wrap_prekey_message(kex, msg1);
  CHECK(hex(pksm) == s("msg1_prekey_signal_message"));
  auto unwrapped = unwrap_prekey_message(pksm);
  REQUIRE(unwrapped.has_value());
  CHECK(unwrapped->header == kex);
  CHECK(unwrapped->signal_message == msg1);
  // and the payload opens with key ‖ tag
  auto body1 = aes128_gcm_decrypt(sec<16>("msg1_payload_key"), unhex(s("msg1_iv")), sealed.ciphertext, sealed.tag);
  REQUIRE(body1.has_value());
  CHECK(hex(body1->view()) == s("msg1_plaintext"));

  // Bob's side of X3DH agrees
  Bytes ikm_b(32, 0xFF);
  {
    auto d1 = *x25519(sec<32>("bob_spk_priv"), x_of(alice));
    auto d2 = *x25519(bob.x25519_private(), pub<X25519Public>("alice_ek_pub"));
    auto d3 = dh("bob_spk_priv", "alice_ek_pub");
    auto d4 = dh("bob_opk_priv", "alice_ek_pub");
    for (auto* d : {&d1, &d2, &d3, &d4}) ikm_b.insert(ikm_b.end(), d->data(), d->data() + 32);
    Secret<32> sk_b;
    hkdf_sha256(ikm_b, {}, kInfoX3dh, sk_b.span());
    CHECK(sk_b == sk);
  }

  // Message 2: Bob's reply after his DH ratchet step (AD in sender-first order: Bob ‖ Alice)
  auto [rk_b, ckr_b] = kdf_rk_legacy(sk, dh("bob_spk_priv", "alice_ratchet0_pub"));
  CHECK(rk_b == rk1);
  CHECK(ckr_b == cks0);
  auto [rk2, bob_cks0] = kdf_rk_legacy(rk_b, dh("bob_ratchet1_priv", "alice_ratchet0_pub"));
  CHECK(hex(rk2.view()) == s("rk2"));
  CHECK(hex(bob_cks0.view()) == s("bob_cks0"));
  auto sealed2 = aes128_gcm_encrypt(sec<16>("msg2_payload_key"), unhex(s("msg2_iv")), unhex(s("msg2_plaintext")));
  CHECK(hex(sealed2.ciphertext) == s("msg2_payload"));
  const Bytes km2 = cat(unhex(s("msg2_payload_key")), sealed2.tag);
  CHECK(hex(km2) == s("msg2_key_material"));
  check_message("msg2", bob_cks0, {pub<X25519Public>("bob_ratchet1_pub"), 0, 0}, km2, ad_ba);

  // Message 3: Alice's empty message on her second chain; pn = 1 message sent on the first
  auto [rk_a, ckr_a] = kdf_rk_legacy(rk1, dh("alice_ratchet0_priv", "bob_ratchet1_pub"));
  CHECK(rk_a == rk2);
  CHECK(ckr_a == bob_cks0);
  auto [rk3, alice_cks0_chain2] = kdf_rk_legacy(rk_a, dh("alice_ratchet1_priv", "bob_ratchet1_pub"));
  CHECK(hex(rk3.view()) == s("rk3"));
  CHECK(hex(alice_cks0_chain2.view()) == s("alice_cks0_chain2"));
  check_message("msg3", alice_cks0_chain2, {pub<X25519Public>("alice_ratchet1_pub"), 0, 1}, unhex(s("msg3_key")), ad_ab);
}

TEST_CASE("wire: malformed input is refused, never thrown") {
  const Bytes good = unhex(s("msg2_dr_signal_message"));
  CHECK(parse_signal_message(good).has_value());
  Bytes v = good;
  v[0] = 0x32;
  CHECK(parse_signal_message(v).error() == Errc::bad_protobuf);
  CHECK(parse_signal_message(ByteView(good).first(8)).error() == Errc::bad_protobuf);
  CHECK(parse_signal_message({}).error() == Errc::bad_protobuf);
  // the ratchet key without its 0x05
  Bytes k = good;
  k[1 + 2] = 0x06;  // 0x33, tag 0x0a, length 0x21, then the type byte
  CHECK(parse_signal_message(k).error() == Errc::bad_key);
  CHECK(decode_key(unhex("05" + std::string(64, '1'))).has_value());
  CHECK(decode_key(unhex(std::string(64, '1'))).error() == Errc::bad_key);
  // a PreKeySignalMessage without its one-time prekey id
  const Bytes pksm = unhex(s("msg1_prekey_signal_message"));
  CHECK(unwrap_prekey_message(pksm).has_value());
  CHECK(pksm[1] == 0x08);  // field 1 first
  Bytes no_pk(pksm.begin(), pksm.end());
  no_pk.erase(no_pk.begin() + 1, no_pk.begin() + 3);  // tag 0x08 and a one-byte varint (42)
  CHECK(unwrap_prekey_message(no_pk).error() == Errc::bad_protobuf);
  for (std::size_t cut = 0; cut < pksm.size(); cut += 7) CHECK_FALSE(unwrap_prekey_message(ByteView(pksm).first(cut)).has_value());
  // GCM: a changed tag or ciphertext is a MAC mismatch
  auto sealed = aes128_gcm_encrypt(sec<16>("msg1_payload_key"), unhex(s("msg1_iv")), unhex(s("msg1_plaintext")));
  sealed.tag[0] ^= 1;
  CHECK(aes128_gcm_decrypt(sec<16>("msg1_payload_key"), unhex(s("msg1_iv")), sealed.ciphertext, sealed.tag).error() ==
        Errc::mac_mismatch);
  // a 16-byte IV (old Conversations) works both ways
  const Bytes iv16(16, 7);
  auto s16 = aes128_gcm_encrypt(sec<16>("msg1_payload_key"), iv16, unhex(s("msg1_plaintext")));
  CHECK(aes128_gcm_decrypt(sec<16>("msg1_payload_key"), iv16, s16.ciphertext, s16.tag).has_value());
}

namespace {

// Serves fixed bytes in order (the vectors' ratchet keys), then fails the test.
class QueueRng final : public Rng {
 public:
  explicit QueueRng(std::vector<Bytes> q) : q_(std::move(q)) {}
  void fill(std::span<std::uint8_t> out) override {
    REQUIRE_MESSAGE(next_ < q_.size(), "the ratchet asked for more randomness than the vectors hold");
    REQUIRE(q_[next_].size() == out.size());
    std::copy(q_[next_].begin(), q_[next_].end(), out.begin());
    ++next_;
  }

 private:
  std::vector<Bytes> q_;
  std::size_t next_ = 0;
};

xml::Element parse_xml(const std::string& x) {
  auto e = xml::parse_element(x);
  REQUIRE_MESSAGE(e.has_value(), x);
  return std::move(*e);
}

}  // namespace

TEST_CASE("vectors: bundle, device list and <encrypted> XML as oldmemo writes them") {
  auto bundle = bundle_from_xml(parse_xml(s("bundle_xml")));
  REQUIRE(bundle.has_value());
  CHECK(bundle->spk_id == 1);
  CHECK(bundle->spk == pub<X25519Public>("bob_spk_pub"));
  CHECK(hex(bundle->spk_signature.view()) == s("bob_spk_sig_published"));
  CHECK(bundle->ik == pub<X25519Public>("bob_ik_x25519_pub"));
  REQUIRE(bundle->prekeys.size() == 1);
  CHECK(bundle->prekeys[0].id == 42);
  CHECK(xml::serialize(bundle_to_xml(*bundle)) == s("bundle_xml"));
  // ours, built from Bob's keys, is the same bundle
  auto bob = identity("bob");
  LegacyBundle ours{1, pub<X25519Public>("bob_spk_pub"), sign_signed_prekey(bob, pub<X25519Public>("bob_spk_pub")),
                    curve_identity(bob), {{42, pub<X25519Public>("bob_opk_pub")}}};
  CHECK(xml::serialize(bundle_to_xml(ours)) == s("bundle_xml"));

  auto list = device_list_from_xml(parse_xml(s("devicelist_xml")));
  REQUIRE(list.has_value());
  CHECK(*list == std::vector<std::uint32_t>{2002, 4223});
  CHECK(xml::serialize(device_list_to_xml(*list)) == s("devicelist_xml"));
  // lenient reading: labels, other item shapes, duplicates
  auto labelled = device_list_from_xml(parse_xml(
      "<list xmlns='eu.siacs.conversations.axolotl'><device id='7' label='x'/><device id='7'/><device id='9'/></list>"));
  REQUIRE(labelled.has_value());
  CHECK(*labelled == std::vector<std::uint32_t>{7, 9});

  for (const char* m : {"msg1", "msg3"}) {
    auto enc = encrypted_from_xml(parse_xml(s(std::string(m) + "_encrypted_xml")));
    REQUIRE(enc.has_value());
    CHECK(enc->sid == 1001);
    REQUIRE(enc->keys_for(2002).size() == 1);
    CHECK(xml::serialize(encrypted_to_xml(*enc)) == s(std::string(m) + "_encrypted_xml"));
  }
  auto e1 = encrypted_from_xml(parse_xml(s("msg1_encrypted_xml")));
  CHECK(e1->keys[0].prekey);
  CHECK(hex(e1->keys[0].data) == s("msg1_prekey_signal_message"));
  CHECK(hex(e1->iv) == s("msg1_iv"));
  CHECK(hex(*e1->payload) == s("msg1_payload"));
  auto e3 = encrypted_from_xml(parse_xml(s("msg3_encrypted_xml")));
  CHECK_FALSE(e3->keys[0].prekey);
  CHECK_FALSE(e3->payload.has_value());
  CHECK(hex(e3->keys[0].data) == s("msg3_dr_signal_message"));
}

TEST_CASE("<encrypted> from peers: prekey spellings, bounds, missing parts") {
  auto enc = [](const std::string& header, const std::string& rest = "") {
    return encrypted_from_xml(parse_xml("<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='5'>" + header +
                                        "</header>" + rest + "</encrypted>"));
  };
  const std::string iv = "<iv>AAAAAAAAAAAAAAAA</iv>";
  CHECK(enc("<key rid='1' prekey='1'>AA==</key>" + iv)->keys[0].prekey);
  CHECK(enc("<key rid='1' prekey='true'>AA==</key>" + iv)->keys[0].prekey);
  CHECK_FALSE(enc("<key rid='1' prekey='0'>AA==</key>" + iv)->keys[0].prekey);
  CHECK_FALSE(enc("<key rid='1' prekey='false'>AA==</key>" + iv)->keys[0].prekey);
  CHECK(enc("<key rid='1' prekey='TRUE'>AA==</key>" + iv).error() == Errc::bad_element);
  CHECK(enc("<key rid='1'>AA==</key>").error() == Errc::bad_element);                    // no iv
  CHECK(enc("<key rid='1'>AA==</key><iv>AAAA</iv>").error() == Errc::bad_element);       // 3-byte iv
  CHECK(enc("<key rid='0'>AA==</key>" + iv).error() == Errc::bad_element);               // id 0
  CHECK(enc("<key rid='1'>!!</key>" + iv).error() == Errc::bad_base64);
  CHECK(encrypted_from_xml(parse_xml("<encrypted xmlns='eu.siacs.conversations.axolotl'><header>" + iv +
                                     "</header></encrypted>")).error() == Errc::bad_element);  // no sid
  std::string big(2000, 'A');
  CHECK_FALSE(enc("<key rid='1'>" + big + "</key>" + iv).has_value());
}

TEST_CASE("vectors: the shared ratchet with the legacy wire sends and reads all three messages") {
  auto alice = identity("alice");
  auto bob = identity("bob");
  auto bundle = bundle_from_xml(parse_xml(s("bundle_xml")));
  REQUIRE(bundle.has_value());

  auto a = x3dh_active(alice, X25519KeyPair::from_private(sec<32>("alice_ek_priv")), *bundle, bundle->prekeys[0]);
  REQUIRE(a.has_value());
  CHECK(hex(a->keys.shared_secret.view()) == s("x3dh_sk"));
  CHECK(hex(a->keys.send_ad) == s("ad_alice_to_bob"));
  CHECK(hex(a->keys.recv_ad) == s("ad_bob_to_alice"));
  CHECK(a->peer_ik == bob.pub());  // the sign bit in the signature names Bob's Edwards key
  auto alice_dr = omemo::DoubleRatchet::init_active(legacy_wire(), std::move(a->keys.shared_secret), a->keys.send_ad,
                                                    a->keys.recv_ad, X25519KeyPair::from_private(sec<32>("alice_ratchet0_priv")),
                                                    bundle->spk);
  REQUIRE(alice_dr.has_value());
  auto m1 = alice_dr->encrypt(unhex(s("msg1_key_material")));
  REQUIRE(m1.has_value());
  CHECK(hex(*m1) == s("msg1_dr_signal_message"));

  auto b = x3dh_passive(bob, X25519KeyPair::from_private(sec<32>("bob_spk_priv")),
                        X25519KeyPair::from_private(sec<32>("bob_opk_priv")), curve_identity(alice),
                        pub<X25519Public>("alice_ek_pub"));
  REQUIRE(b.has_value());
  CHECK(hex(b->shared_secret.view()) == s("x3dh_sk"));
  auto bob_dr = omemo::DoubleRatchet::init_passive(legacy_wire(), std::move(b->shared_secret), b->send_ad, b->recv_ad,
                                                   X25519KeyPair::from_private(sec<32>("bob_spk_priv")));
  // the third key is drawn by the tampered attempt below, which is then thrown away
  QueueRng bob_rng({unhex(s("bob_ratchet1_priv")), Bytes(32, 9), unhex(s("bob_ratchet2_priv"))});
  auto km1 = bob_dr.decrypt(*m1, bob_rng);
  REQUIRE(km1.has_value());
  CHECK(hex(km1->view()) == s("msg1_key_material"));
  CHECK(bob_dr.decrypt(*m1, bob_rng).error() == Errc::duplicate_message);

  auto m2 = bob_dr.encrypt(unhex(s("msg2_key_material")));
  REQUIRE(m2.has_value());
  CHECK(hex(*m2) == s("msg2_dr_signal_message"));
  QueueRng alice_rng({unhex(s("alice_ratchet1_priv"))});
  auto km2 = alice_dr->decrypt(*m2, alice_rng);
  REQUIRE(km2.has_value());
  CHECK(hex(km2->view()) == s("msg2_key_material"));

  auto m3 = alice_dr->encrypt(unhex(s("msg3_key")));
  REQUIRE(m3.has_value());
  CHECK(hex(*m3) == s("msg3_dr_signal_message"));
  // a tampered copy fails its 8-byte MAC and leaves the ratchet as it was
  Bytes bad = *m3;
  bad[bad.size() - 12] ^= 1;
  CHECK(bob_dr.decrypt(bad, bob_rng).error() == Errc::mac_mismatch);
  auto k3 = bob_dr.decrypt(*m3, bob_rng);
  REQUIRE(k3.has_value());
  CHECK(hex(k3->view()) == s("msg3_key"));
}
