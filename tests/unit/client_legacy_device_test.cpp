// client::Device's legacy side on real SQLite state files: chat messages decrypted, pinned
// identities enforced (a changed one leaves no session and no spent prekey behind), distrusted
// and unencrypted messages shown for what they are, Multiend copies without our key not shown.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "client/app/device.hpp"
#include "tests/support/temp_dir.hpp"

using namespace multiend;
using namespace multiend::client;

namespace {

using test::TempDir;

crypto::ByteView text(const std::string& s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

oldmemo::LegacyEncrypted legacy_to(Device& from, Device& to, const std::string& body) {
  std::map<omemo::DeviceAddress, oldmemo::LegacyBundle> bundles;
  const omemo::DeviceAddress a{to.jid(), to.device_id()};
  bundles.emplace(a, to.legacy().bundle());
  std::vector<omemo::DeviceAddress> devices{a};
  auto tx = from.store().begin();
  auto out = from.encrypt_legacy(devices, bundles, text(body));
  tx.commit();
  REQUIRE(out.encrypted_for.size() == 1);
  return out.message;
}

ChatMessage chat(const std::string& from, const std::string& to, const std::string& id,
                 std::optional<oldmemo::LegacyEncrypted> m) {
  ChatMessage c;
  c.from_bare = from;
  c.to_bare = to;
  c.history_id = "pep:" + from + ":" + id;
  c.legacy = std::move(m);
  return c;
}

Received receive(Device& d, const ChatMessage& c) {
  auto tx = d.store().begin();
  auto r = d.receive_chat(c, 1000);
  tx.commit();
  return r;
}

std::size_t legacy_prekeys(Device& d) { return d.legacy().bundle().prekeys.size(); }

}  // namespace

TEST_CASE("a legacy chat message: decrypted, pinned, stored once, answered") {
  TempDir dir;
  crypto::DeterministicRng rng(1);
  auto alice = Device::create(dir.path / "alice.db", "alice@example.org", rng, 0);
  auto bob = Device::create(dir.path / "bob.db", "bob@example.org", rng, 0);
  auto m = legacy_to(*bob, *alice, "hello alice");
  auto r = receive(*alice, chat(bob->jid(), alice->jid(), "o1", m));
  REQUIRE(r.entry);
  CHECK(r.entry->type == EntryType::message);
  CHECK(r.entry->body == "hello alice");
  CHECK(r.entry->protocol == "oldmemo");
  CHECK(r.entry->via == "pep");
  CHECK(r.entry->trust == "blind");
  CHECK(r.entry->from_device == bob->device_id());
  CHECK(r.prekey_used);
  REQUIRE(r.empty_reply_to.size() == 1);  // the key exchange is answered
  auto pinned = alice->store().trust().identity_of(bob->jid(), bob->device_id());
  REQUIRE(pinned);
  CHECK(omemo::SessionManager::fingerprint_of(*pinned) == bob->manager().fingerprint());
  // the same message again (Carbons, the server's MAM): a duplicate, nothing happens
  auto again = receive(*alice, chat(bob->jid(), alice->jid(), "o1", m));
  CHECK(again.duplicate);
  CHECK_FALSE(again.entry);
}

TEST_CASE("another identity under a known device id: refused, and no session or prekey spent") {
  TempDir dir;
  crypto::DeterministicRng rng(2);
  auto alice = Device::create(dir.path / "alice.db", "alice@example.org", rng, 0);
  auto bob = Device::create(dir.path / "bob.db", "bob@example.org", rng, 0);
  auto mallory = Device::create(dir.path / "mallory.db", "bob@example.org", rng, 0);  // bob's account, another key
  REQUIRE(receive(*alice, chat(bob->jid(), alice->jid(), "o1", legacy_to(*bob, *alice, "real"))).entry);
  const omemo::DeviceAddress bob_dev{bob->jid(), bob->device_id()};
  auto session_before = alice->store().legacy().load_legacy_session(bob_dev);
  REQUIRE(session_before);
  const std::size_t prekeys_before = legacy_prekeys(*alice);
  auto forged = legacy_to(*mallory, *alice, "I am bob's device");
  forged.sid = bob->device_id();  // claims bob's device id; its key exchange names mallory's identity
  auto r = receive(*alice, chat(bob->jid(), alice->jid(), "o2", forged));
  REQUIRE(r.entry);
  CHECK(r.entry->type == EntryType::undecryptable);
  CHECK(r.entry->reason.starts_with("identity-changed"));
  CHECK(r.empty_reply_to.empty());
  CHECK_FALSE(r.prekey_used);
  auto session_after = alice->store().legacy().load_legacy_session(bob_dev);
  REQUIRE(session_after);
  CHECK(crypto::ct_equal(session_after->peer_ik.view(), session_before->peer_ik.view()));
  CHECK_FALSE(alice->store().legacy().load_previous_legacy_session(bob_dev));
  CHECK(legacy_prekeys(*alice) == prekeys_before);
  // bob's real session still works
  auto next = receive(*alice, chat(bob->jid(), alice->jid(), "o3", legacy_to(*bob, *alice, "still me")));
  REQUIRE(next.entry);
  CHECK(next.entry->body == "still me");
}

TEST_CASE("distrusted, unencrypted, and a Multiend copy without our key") {
  TempDir dir;
  crypto::DeterministicRng rng(3);
  auto alice = Device::create(dir.path / "alice.db", "alice@example.org", rng, 0);
  auto bob = Device::create(dir.path / "bob.db", "bob@example.org", rng, 0);
  REQUIRE(receive(*alice, chat(bob->jid(), alice->jid(), "o1", legacy_to(*bob, *alice, "one"))).entry);
  REQUIRE(alice->store().trust().set_trust(bob->jid(), bob->device_id(), Trust::distrusted));
  auto d = receive(*alice, chat(bob->jid(), alice->jid(), "o2", legacy_to(*bob, *alice, "two")));
  REQUIRE(d.entry);
  CHECK(d.entry->type == EntryType::undecryptable);
  CHECK(d.entry->reason.starts_with("distrusted"));
  CHECK(d.entry->body.empty());

  ChatMessage plain = chat("carol@example.org", alice->jid(), "p1", std::nullopt);
  plain.body = "no OMEMO here";
  auto p = receive(*alice, plain);
  REQUIRE(p.entry);
  CHECK(p.entry->type == EntryType::message);
  CHECK(p.entry->protocol == "none");
  CHECK(p.entry->body == "no OMEMO here");

  // a message bob's Multiend device sent to carol's legacy app, seen by alice (no key for her):
  auto carol = Device::create(dir.path / "carol.db", "carol@example.org", rng, 0);
  auto for_carol = legacy_to(*bob, *carol, "for carol");
  auto shown = receive(*alice, chat(bob->jid(), alice->jid(), "o3", for_carol));
  REQUIRE(shown.entry);  // bob's device is on no archive list known here: reported
  CHECK(shown.entry->reason.starts_with("not-encrypted-for-this-device"));
  omemo::DeviceList list;
  list.devices.push_back({bob->device_id(), std::nullopt, std::nullopt});
  alice->store().save_device_list(bob->jid(), list);
  auto silent = receive(*alice, chat(bob->jid(), alice->jid(), "o4", legacy_to(*bob, *carol, "again")));
  CHECK_FALSE(silent.entry);  // a Multiend device: what it had for us came through the archive
}
