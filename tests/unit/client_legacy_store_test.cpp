// Legacy OMEMO's part of the state file (client/store/legacy_store) and trust across the two
// generations: sessions survive reopening, the two prekey pools never mix, and one identity is
// one identity whichever Edwards sign bit it arrives with.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "client/store/sqlite_store.hpp"
#include "protocol/crypto/xeddsa.hpp"
#include "protocol/omemo/session_manager.hpp"
#include "tests/support/temp_dir.hpp"

using namespace multiend;
using client::SqliteStore;

namespace {
crypto::ByteView text(const std::string& s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }
}  // namespace

TEST_CASE("a legacy conversation survives closing and reopening both state files") {
  test::TempDir dir;
  crypto::DeterministicRng rng(11);
  const auto pa = dir.path / "a.db", pb = dir.path / "b.db";
  oldmemo::LegacyEncrypted first;
  {
    SqliteStore a(pa), b(pb);
    auto ma = omemo::SessionManager::open(a.stores(), rng, "alice@example.org", 1, 0);
    auto mb = omemo::SessionManager::open(b.stores(), rng, "bob@example.org", 2, 0);
    oldmemo::LegacyManager la(a.legacy_stores(), rng), lb(b.legacy_stores(), rng);
    // separate pools: OMEMO 2 and legacy both have 100, and ids are counted apart
    CHECK(mb.visible_prekey_count() == 100);
    CHECK(lb.bundle().prekeys.size() == 100);
    auto bundle = lb.bundle();
    oldmemo::LegacyRecipient r{{"bob@example.org", 2}, &bundle};
    first = la.encrypt(text("persisted"), std::span(&r, 1)).message;
    CHECK(a.legacy().has_legacy_session({"bob@example.org", 2}));
    CHECK(a.legacy().legacy_session_count("bob@example.org") == 1);
    CHECK_FALSE(a.has_session({"bob@example.org", 2}));  // not an OMEMO 2 session
  }
  SqliteStore a(pa), b(pb);
  auto mb = omemo::SessionManager::open(b.stores(), rng, "bob@example.org", 2, 0);
  oldmemo::LegacyManager la(a.legacy_stores(), rng), lb(b.legacy_stores(), rng);
  auto d = lb.decrypt(first, "alice@example.org");
  REQUIRE(d.has_value());
  CHECK(std::string(reinterpret_cast<const char*>(d->plaintext->data()), d->plaintext->size()) == "persisted");
  CHECK(mb.visible_prekey_count() == 100);  // the legacy key exchange spent a legacy prekey only
  oldmemo::LegacyRecipient back{{"alice@example.org", 1}, nullptr};
  auto reply = lb.encrypt(text("and back"), std::span(&back, 1));
  auto d2 = la.decrypt(reply.message, "bob@example.org");
  REQUIRE(d2.has_value());
  a.legacy().remove_legacy_session({"bob@example.org", 2});
  CHECK_FALSE(a.legacy().load_legacy_session({"bob@example.org", 2}));
}

TEST_CASE("trust: the same Curve25519 identity with either sign bit is the same device key") {
  test::TempDir dir;
  SqliteStore s(dir.path / "t.db");
  crypto::DeterministicRng rng(3);
  auto ik = crypto::IdentityKeyPair::generate(rng);
  auto curve = *crypto::ed25519_pub_to_x25519(ik.pub());
  auto sign0 = *crypto::curve25519_to_ed25519(curve, false);
  auto sign1 = *crypto::curve25519_to_ed25519(curve, true);
  CHECK(*s.trust().record_device_identity("bob@example.org", 5, sign0) == client::IdentityStatus::new_device);
  CHECK(*s.trust().record_device_identity("bob@example.org", 5, sign1) == client::IdentityStatus::same);
  CHECK(*s.trust().record_device_identity("bob@example.org", 5, ik.pub()) == client::IdentityStatus::same);
  auto other = crypto::IdentityKeyPair::generate(rng);
  CHECK(s.trust().record_device_identity("bob@example.org", 5, other.pub()).error() == Errc::identity_mismatch);
}

TEST_CASE("history: a chat message is listed after the newest archive message not later than it") {
  test::TempDir dir;
  SqliteStore s(dir.path / "h.db");
  auto entry = [](std::string id, std::string via, std::int64_t ts) {
    client::HistoryEntry e;
    e.stanza_id = std::move(id);
    e.from_jid = "bob@example.org";
    e.body = e.stanza_id;
    e.via = std::move(via);
    e.protocol = e.via == "pep" ? "oldmemo" : "omemo2";
    e.timestamp_us = ts;
    return e;
  };
  CHECK(s.history().append(entry("pep:bob@example.org:first", "pep", 50)));  // before any archive message
  CHECK(s.history().append(entry("9", "archive", 100)));
  CHECK(s.history().append(entry("10", "archive", 200)));
  CHECK(s.history().append(entry("pep:bob@example.org:x", "pep", 250)));
  CHECK(s.history().append(entry("11", "archive", 300)));
  CHECK(s.history().append(entry("pep:bob@example.org:a", "pep", 150)));  // read late, from the server's MAM
  CHECK(s.history().append(entry("pep:bob@example.org:b", "pep", 260)));
  CHECK_FALSE(s.history().append(entry("pep:bob@example.org:x", "pep", 999)));  // a copy: dropped
  std::vector<std::string> ids;
  for (const auto& e : s.history().list()) ids.push_back(e.stanza_id);
  CHECK(ids == std::vector<std::string>{"pep:bob@example.org:first", "9", "pep:bob@example.org:a", "10",
                                        "pep:bob@example.org:x", "pep:bob@example.org:b", "11"});
  std::vector<std::string> last2;
  for (const auto& e : s.history().list(std::nullopt, 2)) last2.push_back(e.stanza_id);
  CHECK(last2 == std::vector<std::string>{"pep:bob@example.org:b", "11"});
  CHECK(s.history().list()[2].via == "pep");
  CHECK(s.history().list()[2].protocol == "oldmemo");
}

TEST_CASE("history: a chat message made now is listed after every archive message already here") {
  // The archive stamps in milliseconds, this device's clock in seconds, other servers' clocks
  // differ: a message sent (or received live) after the newest archive message goes after it
  // even when its timestamp says otherwise.
  test::TempDir dir;
  SqliteStore s(dir.path / "h.db");
  client::HistoryEntry archived;
  archived.stanza_id = "12";
  archived.from_jid = "bob@example.org";
  archived.timestamp_us = 1'000'500'000;  // .5 s into the second
  CHECK(s.history().append(archived));
  client::HistoryEntry sent;
  sent.stanza_id = "pep:alice@example.org:o1";
  sent.from_jid = "alice@example.org";
  sent.via = "pep";
  sent.protocol = "oldmemo";
  sent.timestamp_us = 1'000'000'000;  // the same second, truncated
  sent.live = true;
  CHECK(s.history().append(sent));
  client::HistoryEntry late = sent;  // from the server's MAM: placed by its time
  late.stanza_id = "pep:carol@example.org:o2";
  late.live = false;
  CHECK(s.history().append(late));
  std::vector<std::string> ids;
  for (const auto& e : s.history().list()) ids.push_back(e.stanza_id);
  CHECK(ids == std::vector<std::string>{"pep:carol@example.org:o2", "12", "pep:alice@example.org:o1"});
}
