// The legacy session manager (protocol/oldmemo/legacy_manager): one device's legacy side beside
// its OMEMO 2 side, sharing identity and signed prekey, owning its prekey pool and sessions.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <map>
#include <memory>

#include "protocol/crypto/random.hpp"
#include "protocol/oldmemo/legacy_manager.hpp"
#include "protocol/oldmemo/x3dh.hpp"
#include "protocol/omemo/memory_store.hpp"
#include "protocol/omemo/session_manager.hpp"

using namespace multiend;
using namespace multiend::oldmemo;
using omemo::DeviceAddress;

namespace {

class MapSessions final : public LegacySessionStore {
 public:
  std::optional<LegacySession> load_legacy_session(const DeviceAddress& p) override {
    auto it = m.find(p);
    if (it == m.end()) return std::nullopt;
    return it->second.clone();
  }
  void save_legacy_session(const LegacySession& s) override { m.insert_or_assign(s.peer, s.clone()); }
  void remove_legacy_session(const DeviceAddress& p) override {
    m.erase(p);
    prev.erase(p);
  }
  std::optional<LegacySession> load_previous_legacy_session(const DeviceAddress& p) override {
    auto it = prev.find(p);
    if (it == prev.end()) return std::nullopt;
    return it->second.clone();
  }
  void save_previous_legacy_session(const LegacySession& s) override { prev.insert_or_assign(s.peer, s.clone()); }
  std::size_t legacy_session_count(const std::string& jid) override {
    std::size_t n = 0;
    for (auto& [a, s] : m) n += a.jid == jid;
    return n;
  }
  std::map<DeviceAddress, LegacySession> m, prev;
};

struct Dev {
  crypto::DeterministicRng rng;
  omemo::MemoryStore store;         // identity, signed prekey, OMEMO 2 prekeys
  omemo::MemoryStore legacy_pool;   // only its PreKeyStore side is used
  MapSessions sessions;
  std::optional<omemo::SessionManager> omemo2;
  std::optional<LegacyManager> legacy;
  Dev(const std::string& jid, std::uint32_t id, std::uint64_t seed) : rng(seed) {
    omemo2.emplace(omemo::SessionManager::open(store.stores(), rng, jid, id, 0));
    legacy.emplace(LegacyStores{store, store, legacy_pool, sessions}, rng);
  }
  DeviceAddress address() const { return {legacy->jid(), legacy->device_id()}; }
};

crypto::ByteView text(const std::string& s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }
std::string str(const crypto::SecretBytes& b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

}  // namespace

TEST_CASE("a conversation: key exchange, reply, the prekey spent once, sessions confirmed") {
  Dev a("alice@example.org", 11, 1), b("bob@example.org", 22, 2);
  const std::size_t omemo2_prekeys = b.omemo2->visible_prekey_count();
  LegacyBundle bundle = b.legacy->bundle();
  CHECK(bundle.prekeys.size() == 100);
  CHECK(crypto::ct_equal(bundle.ik.view(), crypto::ed25519_pub_to_x25519(b.omemo2->identity_key())->view()));
  LegacyRecipient r{b.address(), &bundle};
  auto out = a.legacy->encrypt(text("hello"), std::span(&r, 1));
  REQUIRE(out.encrypted_for.size() == 1);
  REQUIRE(out.message.keys.size() == 1);
  CHECK(out.message.keys[0].prekey);
  auto d = b.legacy->decrypt(out.message, "alice@example.org");
  REQUIRE(d.has_value());
  CHECK(str(*d->plaintext) == "hello");
  CHECK(d->key_exchange);
  CHECK(d->prekey_used);
  // the legacy pool was topped up again; OMEMO 2's pool was not touched
  CHECK(b.legacy->bundle().prekeys.size() == 100);
  CHECK(b.omemo2->visible_prekey_count() == omemo2_prekeys);
  // the same key exchange again: not a second session from a spent prekey
  auto again = b.legacy->decrypt(out.message, "alice@example.org");
  CHECK_FALSE(again.has_value());

  // Bob answers on the session the key exchange built; Alice's session is then confirmed.
  LegacyRecipient back{a.address(), nullptr};
  auto reply = b.legacy->encrypt(text("hi alice"), std::span(&back, 1));
  REQUIRE(reply.encrypted_for.size() == 1);
  CHECK_FALSE(reply.message.keys[0].prekey);
  auto d2 = a.legacy->decrypt(reply.message, "bob@example.org");
  REQUIRE(d2.has_value());
  CHECK(str(*d2->plaintext) == "hi alice");
  CHECK_FALSE(d2->key_exchange);
  LegacyRecipient again_b{b.address(), nullptr};
  auto third = a.legacy->encrypt(text("third"), std::span(&again_b, 1));
  CHECK_FALSE(third.message.keys[0].prekey);
  CHECK(str(*b.legacy->decrypt(third.message, "alice@example.org")->plaintext) == "third");
}

TEST_CASE("a repeated key exchange decrypts with the session it built") {
  Dev a("alice@example.org", 11, 3), b("bob@example.org", 22, 4);
  LegacyBundle bundle = b.legacy->bundle();
  LegacyRecipient r{b.address(), &bundle};
  auto m1 = a.legacy->encrypt(text("one"), std::span(&r, 1));
  LegacyRecipient r2{b.address(), nullptr};
  auto m2 = a.legacy->encrypt(text("two"), std::span(&r2, 1));  // still unconfirmed: kex again
  CHECK(m2.message.keys[0].prekey);
  REQUIRE(b.legacy->decrypt(m1.message, "alice@example.org").has_value());
  auto d2 = b.legacy->decrypt(m2.message, "alice@example.org");
  REQUIRE(d2.has_value());
  CHECK(str(*d2->plaintext) == "two");
  CHECK_FALSE(d2->prekey_used);
}

TEST_CASE("a tampered message leaves no trace; a key for another device is not ours") {
  Dev a("alice@example.org", 11, 5), b("bob@example.org", 22, 6);
  LegacyBundle bundle = b.legacy->bundle();
  LegacyRecipient r{b.address(), &bundle};
  auto m = a.legacy->encrypt(text("genuine"), std::span(&r, 1));
  auto bad = m.message;
  bad.payload->back() ^= 1;
  CHECK_FALSE(b.legacy->decrypt(bad, "alice@example.org").has_value());
  CHECK(b.sessions.m.empty());            // no session from a message that did not decrypt
  CHECK(b.legacy->bundle().prekeys.size() == 100);
  CHECK(str(*b.legacy->decrypt(m.message, "alice@example.org")->plaintext) == "genuine");

  auto other = m.message;
  other.keys[0].rid = 999;
  CHECK(b.legacy->decrypt(other, "alice@example.org").error() == Errc::not_for_this_device);
  // our own device id from someone else's account is refused before any work
  auto mine = m.message;
  mine.sid = 22;
  CHECK_FALSE(b.legacy->decrypt(mine, "bob@example.org").has_value());
}

TEST_CASE("identities: the bundle's signature names the Edwards key; without session or bundle, none") {
  Dev a("alice@example.org", 11, 7), b("bob@example.org", 22, 8);
  LegacyBundle bundle = b.legacy->bundle();
  auto ik = a.legacy->identity_for(b.address(), &bundle);
  REQUIRE(ik.has_value());
  CHECK(crypto::ct_equal(ik->view(), b.omemo2->identity_key().view()));  // the true sign bit: one identity
  CHECK(a.legacy->identity_for(b.address(), nullptr).error() == Errc::no_session);
  LegacyBundle forged = bundle;
  forged.spk_signature.bytes[0] ^= 1;
  CHECK(a.legacy->identity_for(b.address(), &forged).error() == Errc::bad_signature);
  LegacyRecipient r{b.address(), &forged};
  auto out = a.legacy->encrypt(text("x"), std::span(&r, 1));
  CHECK(out.encrypted_for.empty());
  REQUIRE(out.failed.size() == 1);
  CHECK(out.failed[0].second == Errc::bad_signature);
}

TEST_CASE("crossing key exchanges: each side still reads what the other sends in the replaced pairing") {
  Dev a("alice@example.org", 11, 9), b("bob@example.org", 22, 10);
  LegacyBundle ab = a.legacy->bundle(), bb = b.legacy->bundle();
  LegacyRecipient to_b{b.address(), &bb}, to_a{a.address(), &ab};
  auto m1 = a.legacy->encrypt(text("m1"), std::span(&to_b, 1));  // both start at once
  auto n1 = b.legacy->encrypt(text("n1"), std::span(&to_a, 1));
  REQUIRE(b.legacy->decrypt(m1.message, "alice@example.org").has_value());  // b: passive replaces active
  REQUIRE(a.legacy->decrypt(n1.message, "bob@example.org").has_value());
  CHECK(b.sessions.prev.size() == 1);
  // each now sends in the session the other's key exchange built, which pairs with the
  // other's replaced session
  LegacyRecipient again_b{b.address(), nullptr}, again_a{a.address(), nullptr};
  auto m2 = a.legacy->encrypt(text("m2"), std::span(&again_b, 1));
  auto n2 = b.legacy->encrypt(text("n2"), std::span(&again_a, 1));
  auto dm2 = b.legacy->decrypt(m2.message, "alice@example.org");
  auto dn2 = a.legacy->decrypt(n2.message, "bob@example.org");
  REQUIRE(dm2.has_value());
  REQUIRE(dn2.has_value());
  CHECK(str(*dm2->plaintext) == "m2");
  CHECK(str(*dn2->plaintext) == "n2");
  // the pairing that was answered is current again on both sides: they converge
  auto m4 = a.legacy->encrypt(text("m4"), std::span(&again_b, 1));
  auto n4 = b.legacy->encrypt(text("n4"), std::span(&again_a, 1));
  CHECK(str(*b.legacy->decrypt(m4.message, "alice@example.org")->plaintext) == "m4");
  CHECK(str(*a.legacy->decrypt(n4.message, "bob@example.org")->plaintext) == "n4");
  // without the previous session the same message is lost
  b.sessions.prev.clear();
  auto m3 = a.legacy->encrypt(text("m3"), std::span(&again_b, 1));
  CHECK_FALSE(b.legacy->decrypt(m3.message, "alice@example.org").has_value());
}
