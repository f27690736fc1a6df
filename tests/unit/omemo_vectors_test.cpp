// Every step of shared/reference/omemo2_vectors.json: a fixed-input OMEMO 2 key exchange
// that python3-twomemo decrypts. Alice's side is rebuilt byte for byte; Bob's side decrypts it.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "protocol/crypto/base64.hpp"
#include "protocol/omemo/double_ratchet.hpp"
#include "protocol/omemo/encrypted_element.hpp"
#include "protocol/omemo/memory_store.hpp"
#include "protocol/omemo/payload.hpp"
#include "protocol/omemo/session_manager.hpp"
#include "protocol/omemo/x3dh.hpp"
#include "protocol/xml/serializer.hpp"
#include "protocol/xml/stream_parser.hpp"
#include "tests/support/hex.hpp"

using namespace multiend;
using namespace multiend::crypto;
using namespace multiend::omemo;
using test::hex;
using test::unhex;

namespace {

const nlohmann::json& V() {
  static const nlohmann::json v = [] {
    std::ifstream f(std::string(MULTIEND_REFERENCE_DIR) + "/omemo2_vectors.json");
    if (!f) throw std::runtime_error("omemo2_vectors.json not found");
    return nlohmann::json::parse(f);
  }();
  return v;
}
std::string s(const char* k) { return V().at(k).get<std::string>(); }
template <std::size_t N>
Secret<N> sec(const char* k) { return test::secret_hex<N>(s(k)); }
template <class P>
P pub(const char* k) { return test::public_hex<P>(s(k)); }

struct Alice {
  IdentityKeyPair ik = IdentityKeyPair::from_seed(sec<32>("alice_ik_seed"));
  X25519KeyPair ek = X25519KeyPair::from_private(sec<32>("alice_ek_priv"));
};

Bundle bob_bundle() {
  auto bob_ik = IdentityKeyPair::from_seed(sec<32>("bob_ik_seed"));
  return Bundle{1, pub<X25519Public>("bob_spk_pub"), pub<Ed25519Signature>("bob_spk_sig"), bob_ik.pub(),
                {{42, pub<X25519Public>("bob_opk_pub")}}};
}

}  // namespace

TEST_CASE("vectors: identity keys in Ed25519 and X25519 form") {
  Alice a;
  CHECK(hex(a.ik.pub().view()) == s("alice_ik_ed25519_pub"));
  CHECK(hex(a.ik.x25519_private().view()) == s("alice_ik_x25519_priv"));
  CHECK(hex(ed25519_pub_to_x25519(a.ik.pub())->view()) == s("alice_ik_x25519_pub"));
  auto bob = IdentityKeyPair::from_seed(sec<32>("bob_ik_seed"));
  CHECK(hex(bob.pub().view()) == s("bob_ik_ed25519_pub"));
  CHECK(hex(ed25519_pub_to_x25519(bob.pub())->view()) == s("bob_ik_x25519_pub"));
  CHECK(hex(X25519KeyPair::from_private(sec<32>("bob_spk_priv")).pub.view()) == s("bob_spk_pub"));
  CHECK(hex(X25519KeyPair::from_private(sec<32>("bob_opk_priv")).pub.view()) == s("bob_opk_pub"));
  CHECK(hex(a.ek.pub.view()) == s("alice_ek_pub"));
  // libsodium signs deterministically: the vector's signature is ours byte for byte.
  CHECK(hex(bob.sign(pub<X25519Public>("bob_spk_pub").view()).view()) == s("bob_spk_sig"));
}

TEST_CASE("vectors: X3DH DH1..DH4, shared secret and associated data") {
  Alice a;
  auto bundle = bob_bundle();
  auto bob_ik_x = ed25519_pub_to_x25519(bundle.ik);
  CHECK(hex(x25519(a.ik.x25519_private(), bundle.spk)->view()) == s("dh1"));
  CHECK(hex(x25519(a.ek.priv, *bob_ik_x)->view()) == s("dh2"));
  CHECK(hex(x25519(a.ek.priv, bundle.spk)->view()) == s("dh3"));
  CHECK(hex(x25519(a.ek.priv, bundle.prekeys[0].key)->view()) == s("dh4"));
  auto r = x3dh_active(a.ik, a.ek, bundle, bundle.prekeys[0]);
  REQUIRE(r.has_value());
  CHECK(hex(r->shared_secret.view()) == s("x3dh_sk"));
  CHECK(hex(r->ad) == s("ad"));

  auto bob = IdentityKeyPair::from_seed(sec<32>("bob_ik_seed"));
  auto p = x3dh_passive(bob, X25519KeyPair::from_private(sec<32>("bob_spk_priv")),
                        X25519KeyPair::from_private(sec<32>("bob_opk_priv")), a.ik.pub(), a.ek.pub);
  REQUIRE(p.has_value());
  CHECK(p->shared_secret == r->shared_secret);
  CHECK(p->ad == r->ad);

  bundle.spks.bytes[5] ^= 1;
  CHECK(x3dh_active(a.ik, a.ek, bundle, bundle.prekeys[0]).error() == Errc::bad_signature);
}

TEST_CASE("vectors: root and chain KDFs, message key expansion") {
  auto sk = sec<32>("x3dh_sk");
  auto r0 = X25519KeyPair::from_private(sec<32>("alice_ratchet0_priv"));
  CHECK(hex(r0.pub.view()) == s("alice_ratchet0_pub"));
  auto dh = x25519(r0.priv, pub<X25519Public>("bob_spk_pub"));
  auto [rk1, cks0] = kdf_rk(sk, *dh);
  CHECK(hex(rk1.view()) == s("rk1"));
  CHECK(hex(cks0.view()) == s("cks0"));
  auto [cks1, mk0] = kdf_ck(cks0);
  CHECK(hex(cks1.view()) == s("cks1"));
  CHECK(hex(mk0.view()) == s("mk0"));
  auto keys = expand_message_key(mk0);
  CHECK(hex(keys.aes_key.view()) == s("mk0_aes_key"));
  CHECK(hex(keys.hmac_key.view()) == s("mk0_hmac_key"));
  CHECK(hex(keys.iv.view()) == s("mk0_iv"));
}

TEST_CASE("vectors: payload encryption and the full key exchange message") {
  auto sce = unhex(s("sce_plaintext"));
  auto payload = encrypt_payload(sce, sec<32>("payload_key"));
  CHECK(hex(payload.ciphertext) == s("payload_ciphertext"));
  CHECK(hex(payload.key_material.view()) == s("key_material48"));
  CHECK(hex(payload.key_material.view().subspan(32)) == s("payload_mac16"));

  Alice a;
  auto x = x3dh_active(a.ik, a.ek, bob_bundle(), bob_bundle().prekeys[0]);
  auto ratchet = DoubleRatchet::init_active(std::move(x->shared_secret), x->ad,
                                            X25519KeyPair::from_private(sec<32>("alice_ratchet0_priv")),
                                            pub<X25519Public>("bob_spk_pub"));
  REQUIRE(ratchet.has_value());
  auto auth = ratchet->encrypt(payload.key_material.view());
  REQUIRE(auth.has_value());
  CHECK(hex(*auth) == s("omemo_authenticated_message"));
  CHECK(hex(ByteView(*auth).subspan(2, 16)) == s("auth_mac16"));
  CHECK(hex(ByteView(*auth).subspan(20)) == s("omemo_message"));
  KeyExchangeHeader h{42, 1, a.ik.pub(), a.ek.pub};
  auto kex = wrap_key_exchange(h, *auth);
  CHECK(hex(kex) == s("omemo_key_exchange"));

  EncryptedMessage m;
  m.sid = 1001;
  m.groups.push_back({"bob@example.org", {{2002, true, kex}}});
  m.payload = payload.ciphertext;
  CHECK(xml::serialize(encrypted_to_xml(m)) == s("encrypted_xml"));
}

TEST_CASE("vectors: Bob's session manager decrypts the vector message") {
  MemoryStore store;
  store.save_identity({"bob@example.org", 2002, IdentityKeyPair::from_seed(sec<32>("bob_ik_seed"))});
  store.rotate_signed_prekey({1, X25519KeyPair::from_private(sec<32>("bob_spk_priv")),
                              pub<Ed25519Signature>("bob_spk_sig"), 0});
  store.save_prekey({42, X25519KeyPair::from_private(sec<32>("bob_opk_priv")), false});
  DeterministicRng rng(3);
  auto bob = SessionManager::open(store.stores(), rng, "bob@example.org", 0, 0);
  CHECK(bob.device_id() == 2002);

  auto elem = xml::parse_element(s("encrypted_xml"));
  REQUIRE(elem.has_value());
  auto msg = encrypted_from_xml(*elem);
  REQUIRE(msg.has_value());
  auto d = bob.decrypt(*msg, "alice@example.org");
  REQUIRE(d.has_value());
  REQUIRE(d->plaintext);
  CHECK(hex(d->plaintext->view()) == s("sce_plaintext"));
  CHECK(d->key_exchange);
  CHECK(d->prekey_used);
  CHECK(d->send_empty_reply);
  CHECK(hex(d->sender_ik.view()) == s("alice_ik_ed25519_pub"));
  CHECK_FALSE(store.load_prekey(42));  // the one-time prekey is gone after use
  // Replaying the same key exchange re-uses the passive session: the message is a duplicate.
  CHECK(bob.decrypt(*msg, "alice@example.org").error() == Errc::duplicate_message);
}
