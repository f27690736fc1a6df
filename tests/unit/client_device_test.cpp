// client::Device on a real SQLite state file: every session used or built for sending is
// checked against the pinned identity key, trust labels, and the store's replay memory.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "client/app/device.hpp"
#include "tests/support/devices.hpp"
#include "tests/support/temp_dir.hpp"

using namespace multiend;
using namespace multiend::client;

namespace {

using test::TempDir;

omemo::EncryptOutcome encrypt_to(Device& d, const omemo::DeviceAddress& to, const omemo::Bundle* bundle) {
  std::map<omemo::DeviceAddress, omemo::Bundle> bundles;
  if (bundle) bundles.emplace(to, *bundle);
  std::vector<omemo::DeviceAddress> devices{to};
  auto tx = d.store().begin();
  auto out = d.encrypt(devices, bundles, std::nullopt);
  tx.commit();
  return out;
}

}  // namespace

TEST_CASE("Device::encrypt never builds or uses a session on an identity key other than the pinned one") {
  TempDir dir;
  crypto::DeterministicRng rng(1);
  auto alice = Device::create(dir.path / "alice.db", "alice@example.org", rng, 0);
  auto bob = test::make_device("bob@example.org", 21, 2);
  auto mallory = test::make_device("mallory@example.org", 66, 3);
  const omemo::DeviceAddress bob21{"bob@example.org", 21};

  // First contact: blind trust records bob21's key.
  auto real = bob->mgr.bundle();
  auto out = encrypt_to(*alice, bob21, &real);
  REQUIRE(out.encrypted_for.size() == 1);
  CHECK(alice->store().trust().identity_of(bob21.jid, 21) == bob->mgr.identity_key());
  CHECK(alice->trust_label(bob21) == "blind");

  // A server that swaps the bundle once the session is gone gets no new session.
  alice->manager().reset_session(bob21);
  auto fake = mallory->mgr.bundle();
  out = encrypt_to(*alice, bob21, &fake);
  CHECK(out.encrypted_for.empty());
  REQUIRE(out.failed.size() == 1);
  CHECK(out.failed[0].second == Errc::identity_mismatch);
  CHECK_FALSE(alice->store().has_session(bob21));

  // A stored session whose peer key is not the pinned one is not used either.
  out = encrypt_to(*alice, bob21, &real);
  REQUIRE(out.encrypted_for.size() == 1);
  {
    auto q = alice->store().database().query("UPDATE devices SET identity_key = ?1 WHERE jid = ?2 AND device = 21");
    q.bind_blob(1, mallory->mgr.identity_key().view()).bind(2, bob21.jid);
    q.run();
  }
  out = encrypt_to(*alice, bob21, nullptr);
  CHECK(out.encrypted_for.empty());
  REQUIRE(out.failed.size() == 1);
  CHECK(out.failed[0].second == Errc::identity_mismatch);
}

TEST_CASE("trust labels: blind until a device of the account is verified, then undecided; distrusted") {
  TempDir dir;
  crypto::DeterministicRng rng(1);
  auto alice = Device::create(dir.path / "alice.db", "alice@example.org", rng, 0);
  auto b1 = test::make_device("bob@example.org", 21, 2);
  auto b2 = test::make_device("bob@example.org", 22, 3);
  auto& trust = alice->store().trust();
  const omemo::DeviceAddress a1{"bob@example.org", 21}, a2{"bob@example.org", 22};
  CHECK(alice->trust_label(a1) == "undecided");  // no key known yet
  REQUIRE(trust.record_device_identity(a1.jid, 21, b1->mgr.identity_key()).has_value());
  REQUIRE(trust.record_device_identity(a2.jid, 22, b2->mgr.identity_key()).has_value());
  CHECK(alice->trust_label(a1) == "blind");
  CHECK(trust.set_trust(a1.jid, 21, Trust::verified));
  CHECK(alice->trust_label(a1) == "verified");
  CHECK(alice->trust_label(a2) == "undecided");
  CHECK(trust.set_trust(a2.jid, 22, Trust::distrusted));
  CHECK(alice->trust_label(a2) == "distrusted");
}

TEST_CASE("the SQLite store remembers consumed key exchanges, the newest kMaxRememberedKeyExchanges") {
  TempDir dir;
  SqliteStore store(dir.path / "s.db");
  auto tx = store.begin();
  auto ek = [](std::uint32_t i) {
    omemo::X25519Public k;
    for (int b = 0; b < 4; ++b) k.bytes[static_cast<std::size_t>(b)] = static_cast<std::uint8_t>(i >> (8 * b));
    k.bytes[31] = 0x40;
    return k;
  };
  for (std::uint32_t i = 0; i <= omemo::kMaxRememberedKeyExchanges; ++i) store.remember_key_exchange(ek(i));
  store.remember_key_exchange(ek(5));  // again: no duplicate row
  tx.commit();
  CHECK_FALSE(store.key_exchange_consumed(ek(0)));  // the oldest went
  CHECK(store.key_exchange_consumed(ek(1)));
  CHECK(store.key_exchange_consumed(ek(omemo::kMaxRememberedKeyExchanges)));
  CHECK_FALSE(store.key_exchange_consumed(ek(omemo::kMaxRememberedKeyExchanges + 1)));
}

TEST_CASE("a catch-up that ends early leaves no used prekey loadable and history sync off") {
  TempDir dir;
  crypto::DeterministicRng rng(1);
  auto alice = Device::create(dir.path / "alice.db", "alice@example.org", rng, 0);
  auto b1 = test::make_device("bob@example.org", 21, 2);
  auto b2 = test::make_device("bob@example.org", 22, 3);
  const omemo::DeviceAddress me{alice->jid(), alice->device_id()};
  auto key_exchange_from = [&](test::Device& bob) {
    omemo::Bundle bundle = alice->manager().bundle();
    omemo::Recipient r{me, &bundle};
    const std::string text = "hi";
    auto out = bob.mgr.encrypt(crypto::ByteView(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()),
                               std::span(&r, 1));
    REQUIRE(out.failed.empty());
    auto tx = alice->store().begin();
    auto d = alice->manager().decrypt(out.message, "bob@example.org");
    tx.commit();
    REQUIRE(d.has_value());
    return std::move(*d);
  };
  {
    HistorySync sync(*alice);
    auto d = key_exchange_from(*b1);
    CHECK_FALSE(d.send_empty_reply);  // queued during history sync
    CHECK(alice->store().hidden_prekeys().size() == 1);
    // No finish(): the catch-up threw.
  }
  CHECK(alice->store().hidden_prekeys().empty());
  auto d = key_exchange_from(*b2);
  CHECK(d.send_empty_reply);  // history sync is off again
  CHECK(alice->store().hidden_prekeys().empty());
}
