// The client's SQLite state store: the five OMEMO stores behave like MemoryStore (one
// conformance test run on both), a SessionManager on it survives close/reopen mid-conversation,
// transactions are all-or-nothing (also across a crash), removed secrets are gone from the
// file bytes, trust rules, history, settings, refusal of foreign or corrupt files, mode 0600.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "client/store/sqlite_store.hpp"
#include "protocol/crypto/base64.hpp"
#include "session_state.pb.h"
#include "tests/support/devices.hpp"
#include "tests/support/temp_dir.hpp"

using namespace multiend;
using client::SqliteStore;
namespace fs = std::filesystem;

namespace {

using test::TempDir;

crypto::ByteView bytes_of(std::string_view s) {
  return crypto::ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool file_contains(const fs::path& p, crypto::ByteView needle) {
  const std::string hay = slurp(p);
  return hay.find(std::string(needle.begin(), needle.end())) != std::string::npos;
}

// The database or its WAL holds these bytes.
bool on_disk(const fs::path& db, crypto::ByteView needle) {
  return file_contains(db, needle) || file_contains(fs::path(db.string() + "-wal"), needle);
}

std::string open_error(const fs::path& p) {
  try {
    SqliteStore s(p);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

std::string session_bytes(const omemo::Session& s) {
  state::Session m;
  s.to_state(m);
  return m.SerializeAsString();
}

void raw_exec(const fs::path& p, const char* sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(p.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  INFO(sql << ": " << (err ? err : ""));
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

std::string raw_text(const fs::path& p, const char* sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(p.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  std::string out;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

omemo::EncryptedMessage encrypt(omemo::SessionManager& from, omemo::SessionManager& to, std::string_view text) {
  auto b = to.bundle();
  omemo::Recipient r{{to.jid(), to.device_id()}, &b};
  auto out = from.encrypt(bytes_of(text), std::span(&r, 1));
  REQUIRE(out.failed.empty());
  return std::move(out.message);
}

std::string text_of(const Result<omemo::Decrypted>& d) {
  if (!d) return "error: " + d.error().message();
  if (!d->plaintext) return "<empty>";
  return std::string(reinterpret_cast<const char*>(d->plaintext->data()), d->plaintext->size());
}

// An OMEMO device whose state lives in an SQLite file and can be closed and reopened.
struct SqliteDevice {
  fs::path path;
  std::string jid;
  std::uint32_t id;
  std::unique_ptr<crypto::DeterministicRng> rng;
  std::unique_ptr<SqliteStore> store;
  std::optional<omemo::SessionManager> mgr;

  SqliteDevice(fs::path p, std::string j, std::uint32_t i, std::uint64_t seed)
      : path(std::move(p)), jid(std::move(j)), id(i) {
    open(seed);
  }
  void open(std::uint64_t seed) {
    rng = std::make_unique<crypto::DeterministicRng>(seed);
    store = std::make_unique<SqliteStore>(path);
    auto tx = store->begin();
    mgr.emplace(omemo::SessionManager::open(store->stores(), *rng, jid, id, 0));
    tx.commit();
  }
  void close() {
    mgr.reset();
    store.reset();
  }
  void reopen(std::uint64_t seed) {
    close();
    open(seed);
  }
  Result<omemo::Decrypted> receive(const omemo::EncryptedMessage& m, const std::string& from) {
    return mgr->decrypt(m, from);
  }
};

// ---- conformance: the same checks on MemoryStore and SqliteStore ----

struct MemoryFixture {
  omemo::MemoryStore store;
  omemo::MemoryStore& get() { return store; }
  void reopen() {}
};

struct SqliteFixture {
  TempDir dir;
  std::unique_ptr<SqliteStore> store = std::make_unique<SqliteStore>(dir.file("state.db"));
  SqliteStore& get() { return *store; }
  void reopen() {
    store.reset();
    store = std::make_unique<SqliteStore>(dir.file("state.db"));
  }
};

bool same_prekey(const omemo::PreKeyRecord& a, const omemo::PreKeyRecord& b) {
  return a.id == b.id && a.key.priv == b.key.priv && a.key.pub == b.key.pub && a.hidden == b.hidden;
}

bool same_spk(const omemo::SignedPreKeyRecord& a, const omemo::SignedPreKeyRecord& b) {
  return a.id == b.id && a.key.priv == b.key.priv && a.key.pub == b.key.pub && a.signature == b.signature &&
         a.created == b.created;
}

std::vector<std::uint32_t> ids_of(const std::vector<omemo::PreKeyPublic>& v) {
  std::vector<std::uint32_t> out;
  for (const auto& p : v) out.push_back(p.id);
  return out;
}

}  // namespace

TEST_CASE_TEMPLATE("store conformance: MemoryStore and SqliteStore behave the same", F, MemoryFixture,
                   SqliteFixture) {
  F f;
  crypto::DeterministicRng rng(7);

  SUBCASE("identity") {
    CHECK_FALSE(f.get().load_identity().has_value());
    omemo::OwnIdentity id{"alice@example.org", 1234, crypto::IdentityKeyPair::generate(rng)};
    f.get().save_identity(id);
    f.reopen();
    auto back = f.get().load_identity();
    REQUIRE(back.has_value());
    CHECK(back->jid == id.jid);
    CHECK(back->device_id == id.device_id);
    CHECK(back->key.seed() == id.key.seed());
    CHECK(back->key.pub() == id.key.pub());
    omemo::OwnIdentity other{"alice@example.org", 99, crypto::IdentityKeyPair::generate(rng)};
    f.get().save_identity(other);
    CHECK(f.get().load_identity()->device_id == 99);
    CHECK(f.get().load_identity()->key.pub() == other.key.pub());
  }

  SUBCASE("one-time prekeys") {
    CHECK_FALSE(f.get().load_prekey(1).has_value());
    CHECK(f.get().allocate_prekey_id() == 1);
    CHECK(f.get().allocate_prekey_id() == 2);
    omemo::PreKeyRecord p3{3, crypto::X25519KeyPair::generate(rng), false};
    omemo::PreKeyRecord p1{1, crypto::X25519KeyPair::generate(rng), false};
    omemo::PreKeyRecord p2{2, crypto::X25519KeyPair::generate(rng), true};
    f.get().save_prekey(p3);
    f.get().save_prekey(p1);
    f.get().save_prekey(p2);
    f.reopen();
    CHECK(f.get().allocate_prekey_id() == 3);  // the counter survives and never goes back
    CHECK(same_prekey(*f.get().load_prekey(2), p2));
    CHECK(ids_of(f.get().visible_prekeys()) == std::vector<std::uint32_t>{1, 3});
    CHECK(f.get().visible_prekeys()[1].key == p3.key.pub);
    CHECK(f.get().hidden_prekeys() == std::vector<std::uint32_t>{2});
    p1.hidden = true;  // save = insert or replace
    f.get().save_prekey(p1);
    CHECK(f.get().hidden_prekeys() == std::vector<std::uint32_t>{1, 2});
    CHECK(same_prekey(*f.get().load_prekey(1), p1));
    f.get().remove_prekey(1);
    f.get().remove_prekey(1);   // absent: no-op
    f.get().remove_prekey(77);  // never existed: no-op
    CHECK_FALSE(f.get().load_prekey(1).has_value());
    CHECK(ids_of(f.get().visible_prekeys()) == std::vector<std::uint32_t>{3});
    CHECK(f.get().allocate_prekey_id() == 4);
  }

  SUBCASE("signed prekeys: current and one previous") {
    CHECK_FALSE(f.get().current_signed_prekey().has_value());
    CHECK_FALSE(f.get().previous_signed_prekey().has_value());
    auto ik = crypto::IdentityKeyPair::generate(rng);
    auto make = [&](std::uint32_t id, std::int64_t created) {
      omemo::SignedPreKeyRecord r{id, crypto::X25519KeyPair::generate(rng), {}, created};
      r.signature = ik.sign(r.key.pub.view());
      return r;
    };
    auto a = make(1, 100), b = make(2, 200), c = make(3, 300);
    f.get().rotate_signed_prekey(a);
    CHECK(same_spk(*f.get().current_signed_prekey(), a));
    CHECK_FALSE(f.get().previous_signed_prekey().has_value());
    f.get().rotate_signed_prekey(b);
    f.reopen();
    CHECK(same_spk(*f.get().current_signed_prekey(), b));
    CHECK(same_spk(*f.get().previous_signed_prekey(), a));
    f.get().rotate_signed_prekey(c);
    CHECK(same_spk(*f.get().current_signed_prekey(), c));
    CHECK(same_spk(*f.get().previous_signed_prekey(), b));
  }

  SUBCASE("sessions") {
    auto alice = test::make_device("alice@example.org", 11, 1);
    auto bob = test::make_device("bob@example.org", 22, 2);
    auto m = alice->send("hi", {bob.get()});
    REQUIRE(bob->receive(m, *alice).has_value());
    auto active = alice->store.load_session(bob->address());
    auto passive = bob->store.load_session(alice->address());
    REQUIRE(active.has_value());
    REQUIRE(passive.has_value());

    CHECK_FALSE(f.get().load_session(bob->address()).has_value());
    f.get().save_session(*active);
    f.get().save_session(*passive);
    f.reopen();
    CHECK(f.get().session_count() == 2);
    CHECK(session_bytes(*f.get().load_session(bob->address())) == session_bytes(*active));
    CHECK(session_bytes(*f.get().load_session(alice->address())) == session_bytes(*passive));
    CHECK_FALSE(f.get().load_session({"bob@example.org", 23}).has_value());
    CHECK_FALSE(f.get().load_session({"Bob@example.org", 22}).has_value());  // exact, as given

    // Replacing: a later state of the same session.
    (void)alice->send("again", {bob.get()});
    auto active2 = alice->store.load_session(bob->address());
    f.get().save_session(*active2);
    CHECK(session_bytes(*f.get().load_session(bob->address())) == session_bytes(*active2));
    CHECK(f.get().session_count() == 2);
    f.get().remove_session(bob->address());
    f.get().remove_session(bob->address());
    CHECK_FALSE(f.get().load_session(bob->address()).has_value());
    CHECK(f.get().session_count() == 1);
  }

  SUBCASE("device lists") {
    CHECK_FALSE(f.get().load_device_list("bob@example.org").has_value());
    omemo::DeviceList l;
    l.devices = {{7, "phone", "c2ln"}, {3, std::nullopt, std::nullopt}, {9, "", std::nullopt}};
    f.get().save_device_list("bob@example.org", l);
    f.get().save_device_list("carol@example.org", omemo::DeviceList{});  // empty is still a list
    f.reopen();
    auto back = f.get().load_device_list("bob@example.org");
    REQUIRE(back.has_value());
    REQUIRE(back->devices.size() == 3);
    CHECK(back->devices[0].id == 7);
    CHECK(back->devices[0].label == std::optional<std::string>("phone"));
    CHECK(back->devices[0].labelsig == std::optional<std::string>("c2ln"));
    CHECK(back->devices[1].id == 3);
    CHECK_FALSE(back->devices[1].label.has_value());
    CHECK(back->devices[2].label == std::optional<std::string>(""));
    auto empty = f.get().load_device_list("carol@example.org");
    REQUIRE(empty.has_value());
    CHECK(empty->devices.empty());
    f.get().save_device_list("bob@example.org", omemo::DeviceList{{{5, std::nullopt, std::nullopt}}});
    CHECK(f.get().load_device_list("bob@example.org")->devices.size() == 1);
    CHECK(f.get().load_device_list("bob@example.org")->devices[0].id == 5);
  }
}

// ---- a SessionManager on SQLite ----

TEST_CASE("a conversation with the SQLite device closed and reopened mid-way") {
  TempDir dir;
  auto alice = test::make_device("alice@example.org", 11, 1);
  SqliteDevice bob(dir.file("bob.db"), "bob@example.org", 22, 2);
  const std::string a = "alice@example.org", b = "bob@example.org";

  auto m1 = encrypt(alice->mgr, *bob.mgr, "one");
  auto d1 = bob.receive(m1, a);
  REQUIRE(d1.has_value());
  CHECK(text_of(d1) == "one");
  CHECK(d1->prekey_used);
  CHECK(bob.mgr->visible_prekey_count() == 99);

  bob.reopen(3);
  CHECK(bob.mgr->device_id() == 22);
  CHECK(bob.mgr->visible_prekey_count() == 99);
  CHECK(text_of(alice->mgr.decrypt(encrypt(*bob.mgr, alice->mgr, "two"), b)) == "two");

  auto m3 = encrypt(alice->mgr, *bob.mgr, "three");
  auto m4 = encrypt(alice->mgr, *bob.mgr, "four");
  auto m5 = encrypt(alice->mgr, *bob.mgr, "five");
  CHECK_FALSE(m3.groups[0].keys[0].kex);  // alice saw bob's answer
  CHECK(text_of(bob.receive(m5, a)) == "five");
  bob.reopen(4);  // m3 and m4 now exist only as skipped keys in the stored session
  CHECK(text_of(bob.receive(m4, a)) == "four");
  bob.reopen(5);
  CHECK(text_of(bob.receive(m3, a)) == "three");
  CHECK(bob.receive(m5, a).error() == Errc::duplicate_message);
  CHECK(bob.receive(m4, a).error() == Errc::duplicate_message);

  CHECK(bob.mgr->refill_prekeys() == 1);
  bob.reopen(6);
  CHECK(bob.mgr->visible_prekey_count() == 100);
  for (int i = 0; i < 5; ++i) {
    const std::string t = "round " + std::to_string(i);
    CHECK(text_of(bob.receive(encrypt(alice->mgr, *bob.mgr, t), a)) == t);
    CHECK(text_of(alice->mgr.decrypt(encrypt(*bob.mgr, alice->mgr, t + "'"), b)) == t + "'");
    bob.reopen(10 + static_cast<std::uint64_t>(i));
  }
}

TEST_CASE("a rolled-back decryption leaves no trace; a committed one is a duplicate after reopen") {
  TempDir dir;
  auto alice = test::make_device("alice@example.org", 11, 1);
  SqliteDevice bob(dir.file("bob.db"), "bob@example.org", 22, 2);
  const std::string a = "alice@example.org";
  auto m = encrypt(alice->mgr, *bob.mgr, "once");
  client::HistoryEntry e{"stanza-1", client::EntryType::message, a, 11, {"bob@example.org"}, "once", 1000,
                         client::Direction::in, "", ""};

  {
    auto tx = bob.store->begin();
    CHECK(text_of(bob.receive(m, a)) == "once");
    CHECK(bob.store->history().append(e));
    bob.store->history().set_last_stanza_id("stanza-1");
    CHECK(bob.store->session_count() == 1);
    tx.rollback();
  }
  CHECK(bob.store->session_count() == 0);
  CHECK(bob.mgr->visible_prekey_count() == 100);
  CHECK_FALSE(bob.store->history().has_stanza("stanza-1"));
  CHECK_FALSE(bob.store->history().last_stanza_id().has_value());

  // An exception leaving the scope rolls back too.
  try {
    auto tx = bob.store->begin();
    CHECK(text_of(bob.receive(m, a)) == "once");
    throw std::runtime_error("crash of the caller");
  } catch (const std::runtime_error&) {
  }
  CHECK(bob.store->session_count() == 0);

  {
    auto tx = bob.store->begin();
    CHECK(text_of(bob.receive(m, a)) == "once");
    CHECK(bob.store->history().append(e));
    bob.store->history().set_last_stanza_id("stanza-1");
    tx.commit();
  }
  bob.reopen(3);
  CHECK(bob.receive(m, a).error() == Errc::duplicate_message);
  CHECK(bob.store->history().has_stanza("stanza-1"));
  CHECK(bob.store->history().last_stanza_id() == std::optional<std::string>("stanza-1"));
  CHECK(bob.mgr->visible_prekey_count() == 99);
}

TEST_CASE("a changed identity key for a known device is refused: decrypt in a transaction, roll back") {
  TempDir dir;
  auto alice = test::make_device("alice@example.org", 11, 1);
  SqliteDevice bob(dir.file("bob.db"), "bob@example.org", 22, 2);
  const std::string a = "alice@example.org";
  auto& trust = bob.store->trust();
  auto receive = [&](const omemo::EncryptedMessage& m) -> std::string {
    auto tx = bob.store->begin();
    auto d = bob.receive(m, a);
    if (!d) return "error: " + d.error().message();
    auto known = trust.record_device_identity(a, d->sender.device, d->sender_ik);
    if (!known) return "refused";  // tx rolls back: the new session and prekey use vanish
    tx.commit();
    return text_of(d);
  };
  CHECK(receive(encrypt(alice->mgr, *bob.mgr, "hello")) == "hello");
  CHECK(bob.mgr->visible_prekey_count() == 99);

  auto impostor = test::make_device("alice@example.org", 11, 99);  // same device id, another key
  CHECK(receive(encrypt(impostor->mgr, *bob.mgr, "it is me")) == "refused");
  CHECK(trust.identity_of(a, 11) == std::optional(alice->mgr.identity_key()));
  CHECK(bob.mgr->visible_prekey_count() == 99);
  CHECK(session_bytes(*bob.store->load_session({a, 11})) != "");
  CHECK(receive(encrypt(alice->mgr, *bob.mgr, "still me")) == "still me");  // the real session is intact
}

TEST_CASE("transactions do not nest; store calls inside one are savepoints") {
  TempDir dir;
  SqliteStore s(dir.file("s.db"));
  auto tx = s.begin();
  CHECK_THROWS_AS((void)s.begin(), std::logic_error);
  CHECK_THROWS_AS(s.checkpoint(), std::logic_error);
  s.history().set_last_stanza_id("a");
  CHECK_THROWS_AS(s.history().append({}), std::invalid_argument);  // refused before any write
  CHECK_THROWS_AS(s.settings().set("password", "hunter2"), std::invalid_argument);
  tx.commit();
  CHECK_THROWS_AS(tx.commit(), std::logic_error);
  CHECK(s.history().last_stanza_id() == std::optional<std::string>("a"));
  auto tx2 = s.begin();  // a new one after the first finished
  tx2.commit();
}

TEST_CASE("a process dying inside a transaction loses only that transaction") {
  TempDir dir;
  const fs::path p = dir.file("crash.db");
  std::uint32_t prekey_id = 0;
  {
    SqliteStore s(p);
    crypto::DeterministicRng rng(1);
    prekey_id = s.allocate_prekey_id();
    s.save_prekey({prekey_id, crypto::X25519KeyPair::generate(rng), false});
    s.history().set_last_stanza_id("s1");
  }

  auto child = [&](bool commit) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      try {
        SqliteStore s(p);
        auto tx = s.begin();
        s.remove_prekey(prekey_id);
        s.history().append({"s2", client::EntryType::message, "bob@example.org", 2, {}, "hi", 5, client::Direction::in, "", ""});
        s.history().set_last_stanza_id("s2");
        if (commit) tx.commit();
        ::_exit(0);  // no destructors, no rollback, no close: like a crash
      } catch (...) {
        ::_exit(3);
      }
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
  };

  child(false);
  {
    SqliteStore s(p);
    CHECK(s.load_prekey(prekey_id).has_value());
    CHECK(s.history().last_stanza_id() == std::optional<std::string>("s1"));
    CHECK_FALSE(s.history().has_stanza("s2"));
  }
  child(true);  // committed, then died without closing: durable
  {
    SqliteStore s(p);
    CHECK_FALSE(s.load_prekey(prekey_id).has_value());
    CHECK(s.history().last_stanza_id() == std::optional<std::string>("s2"));
    CHECK(s.history().has_stanza("s2"));
  }
}

TEST_CASE("removed prekeys and used message keys are gone from the file bytes (secure_delete)") {
  TempDir dir;
  const fs::path p = dir.file("bob.db");
  auto alice = test::make_device("alice@example.org", 11, 1);
  SqliteDevice bob(p, "bob@example.org", 22, 2);
  SqliteStore::Options keep_wal;
  keep_wal.checkpoint_after_commit = false;  // only the explicit checkpoint below
  bob.close();
  bob.rng = std::make_unique<crypto::DeterministicRng>(3);
  bob.store = std::make_unique<SqliteStore>(p, keep_wal);
  bob.mgr.emplace(omemo::SessionManager::open(bob.store->stores(), *bob.rng, "bob@example.org", 0, 0));

  SUBCASE("a removed one-time prekey") {
    const std::uint32_t id = bob.store->visible_prekeys().at(10).id;
    auto pk = bob.store->load_prekey(id);
    REQUIRE(pk.has_value());
    REQUIRE(bob.store->checkpoint());
    CHECK(on_disk(p, pk->key.priv.view()));  // the search does find stored keys
    bob.store->remove_prekey(id);
    REQUIRE(bob.store->checkpoint());
    CHECK_FALSE(on_disk(p, pk->key.priv.view()));
    CHECK(on_disk(p, bob.store->load_prekey(bob.store->visible_prekeys().at(10).id)->key.priv.view()));
  }

  SUBCASE("a used skipped message key and an old chain key") {
    const std::string a = "alice@example.org";
    CHECK(text_of(bob.receive(encrypt(alice->mgr, *bob.mgr, "kex"), a)) == "kex");
    state::Session before;
    bob.store->load_session({a, 11})->to_state(before);
    REQUIRE(before.ratchet().has_ckr());
    const std::string old_ckr = before.ratchet().ckr();
    auto skipped = encrypt(alice->mgr, *bob.mgr, "skipped");
    CHECK(text_of(bob.receive(encrypt(alice->mgr, *bob.mgr, "later"), a)) == "later");
    state::Session mid;
    bob.store->load_session({a, 11})->to_state(mid);
    REQUIRE(mid.ratchet().skipped_size() == 1);
    const std::string mk = mid.ratchet().skipped(0).mk();
    REQUIRE(bob.store->checkpoint());
    CHECK(on_disk(p, bytes_of(mk)));
    CHECK_FALSE(on_disk(p, bytes_of(old_ckr)));

    CHECK(text_of(bob.receive(skipped, a)) == "skipped");
    REQUIRE(bob.store->checkpoint());
    CHECK_FALSE(on_disk(p, bytes_of(mk)));
    CHECK(fs::file_size(fs::path(p.string() + "-wal")) == 0);
  }
}

TEST_CASE("trust: blind trust before verification, changed keys refused") {
  TempDir dir;
  const fs::path p = dir.file("t.db");
  crypto::DeterministicRng rng(5);
  auto ik1 = crypto::IdentityKeyPair::generate(rng);
  auto ik2 = crypto::IdentityKeyPair::generate(rng);
  const std::string bob = "bob@example.org";
  {
    SqliteStore s(p);
    auto& t = s.trust();
    CHECK_FALSE(t.trust_of(bob, 1).has_value());
    CHECK_FALSE(t.usable(bob, 1));  // no key seen: nothing to encrypt to
    auto r = t.record_device_identity(bob, 1, ik1.pub());
    REQUIRE(r.has_value());
    CHECK(*r == client::IdentityStatus::new_device);
    r = t.record_device_identity(bob, 1, ik1.pub());
    REQUIRE(r.has_value());
    CHECK(*r == client::IdentityStatus::same);
    r = t.record_device_identity(bob, 1, ik2.pub());  // another key for a known device id
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == Errc::identity_mismatch);
    CHECK(t.identity_of(bob, 1) == std::optional(ik1.pub()));
    CHECK(t.trust_of(bob, 1) == client::Trust::undecided_blind);
    CHECK(t.usable(bob, 1));  // blind trust: used at once
    REQUIRE(t.record_device_identity(bob, 2, ik2.pub()).has_value());
    CHECK(t.usable(bob, 2));
    CHECK_FALSE(t.set_trust(bob, 3, client::Trust::verified));  // unknown device
  }
  SqliteStore s(p);
  auto& t = s.trust();
  CHECK(t.set_trust(bob, 1, client::Trust::verified));
  CHECK(t.usable(bob, 1));
  CHECK_FALSE(t.usable(bob, 2));  // bob has a verified device now: no more blind trust
  CHECK(t.set_trust(bob, 2, client::Trust::distrusted));
  CHECK_FALSE(t.usable(bob, 2));
  CHECK(t.set_trust(bob, 1, client::Trust::distrusted));
  CHECK_FALSE(t.usable(bob, 1));
  CHECK(t.set_trust(bob, 1, client::Trust::undecided_blind));
  CHECK(t.usable(bob, 1));  // nothing verified any more
  REQUIRE(t.record_device_identity("carol@example.org", 1, ik2.pub()).has_value());  // per JID
  CHECK(t.usable("carol@example.org", 1));

  // Labels come from the device list and are shown only with a labelsig by the device's key.
  const std::string label = "phone";
  const std::string good = crypto::base64_encode(ik1.sign(bytes_of(label)).view());
  const std::string bad = crypto::base64_encode(ik1.sign(bytes_of("laptop")).view());  // device 2 has ik2
  s.save_device_list(bob, omemo::DeviceList{{{1, label, good}, {2, "laptop", bad}, {4, std::nullopt, std::nullopt}}});
  auto devices = t.list_devices(bob);
  REQUIRE(devices.size() == 3);
  CHECK(devices[0].device == 1);
  CHECK(devices[0].fingerprint == omemo::SessionManager::fingerprint_of(ik1.pub()));
  CHECK(devices[0].fingerprint.size() == 71);  // 8 groups of 8 hex digits
  CHECK(devices[0].label == std::optional<std::string>("phone"));
  CHECK(devices[0].trust == client::Trust::undecided_blind);
  CHECK(devices[0].listed);
  CHECK(devices[0].usable);
  CHECK(devices[1].device == 2);
  CHECK_FALSE(devices[1].label.has_value());  // signed by the wrong key
  CHECK(devices[1].trust == client::Trust::distrusted);
  CHECK_FALSE(devices[1].usable);
  CHECK(devices[2].device == 4);
  CHECK_FALSE(devices[2].identity_key.has_value());
  CHECK(devices[2].fingerprint.empty());
  CHECK_FALSE(devices[2].trust.has_value());
  CHECK(devices[2].listed);
  CHECK_FALSE(devices[2].usable);
}

TEST_CASE("history: unique by stanza-id, archive order, filter and limit") {
  TempDir dir;
  const fs::path p = dir.file("h.db");
  using client::Direction;
  using client::EntryType;
  const std::string alice = "alice@example.org", bob = "bob@example.org", carol = "carol@example.org";
  const client::HistoryEntry e1{"id-1", EntryType::message, bob, 21, {alice}, "hi alice", 3000, Direction::in, "", ""};
  const client::HistoryEntry e2{"id-2", EntryType::message, alice, 11, {bob, carol}, "hi both", 4000, Direction::out, "", ""};
  const client::HistoryEntry e3{"id-3", EntryType::undecryptable, carol, 31, {alice}, "", 1000, Direction::in,
                                "no key for this device", ""};
  const client::HistoryEntry e4{"id-4", EntryType::message, "dave@example.org", 41, {alice}, "", 5000,
                                Direction::in, "", ""};
  {
    SqliteStore s(p);
    auto& h = s.history();
    CHECK(h.list().empty());
    CHECK_FALSE(h.last_stanza_id().has_value());
    CHECK(h.append(e1));
    CHECK(h.append(e2));
    CHECK(h.append(e3));
    auto dup = e1;
    dup.body = "a fan-out copy";
    CHECK_FALSE(h.append(dup));
    CHECK(h.append(e4));
    h.set_last_stanza_id("id-4");
    CHECK(h.size() == 4);
  }
  SqliteStore s(p);
  auto& h = s.history();
  CHECK(h.has_stanza("id-3"));
  CHECK_FALSE(h.has_stanza("id-5"));
  CHECK(h.last_stanza_id() == std::optional<std::string>("id-4"));
  using V = std::vector<client::HistoryEntry>;
  CHECK(h.list() == V{e1, e2, e3, e4});  // append order, not timestamp order
  CHECK(h.list(bob) == V{e1, e2});
  CHECK(h.list(carol) == V{e2, e3});
  CHECK(h.list(std::nullopt, 2) == V{e3, e4});
  CHECK(h.list(bob, 1) == V{e2});
  CHECK(h.list(std::nullopt, 0).empty());
  CHECK(h.list("nobody@example.org").empty());
  CHECK(to_string(h.list()[2].type) == "undecryptable");
  CHECK(to_string(h.list()[1].direction) == "out");
}

TEST_CASE("settings: known keys only, the password file's path but never a password") {
  TempDir dir;
  const fs::path p = dir.file("s.db");
  {
    SqliteStore s(p);
    auto& st = s.settings();
    CHECK_FALSE(st.get("jid").has_value());
    st.set(client::setting::jid, "alice@example.org");
    st.set(client::setting::server, "localhost:5222");
    st.set(client::setting::password_file, "/home/alice/.multiend/password");
    st.set(client::setting::server, "xmpp.example.org:5222");
    CHECK_THROWS_AS(st.set("password", "secret"), std::invalid_argument);
    st.set(client::setting::label, "laptop");
    st.erase(client::setting::label);
  }
  SqliteStore s(p);
  CHECK(s.settings().get("server") == std::optional<std::string>("xmpp.example.org:5222"));
  CHECK(s.settings().all() == std::vector<std::pair<std::string, std::string>>{
                                  {"jid", "alice@example.org"},
                                  {"password_file", "/home/alice/.multiend/password"},
                                  {"server", "xmpp.example.org:5222"}});
}

TEST_CASE("garbage, foreign, newer and corrupted files give clear errors") {
  TempDir dir;
  SUBCASE("not a database") {
    const fs::path p = dir.file("garbage.db");
    std::ofstream(p, std::ios::binary) << std::string(8192, '\x5a');
    const std::string err = open_error(p);
    CHECK(err.find("not a database") != std::string::npos);
    CHECK(err.find(p.string()) != std::string::npos);
  }
  SUBCASE("another application's SQLite database") {
    const fs::path p = dir.file("other.db");
    raw_exec(p, "CREATE TABLE notes (t TEXT)");
    fs::permissions(p, fs::perms(0644));
    CHECK(open_error(p).find("not a Multiend state file") != std::string::npos);
    CHECK(mode_of(p) == 0644);  // left as it was: not converted, not chmod-ed
    CHECK(raw_text(p, "PRAGMA journal_mode") == "delete");
    CHECK(raw_text(p, "SELECT count(*) FROM sqlite_schema") == "1");
  }
  SUBCASE("a newer schema") {
    const fs::path p = dir.file("newer.db");
    { SqliteStore s(p); }
    raw_exec(p, "PRAGMA user_version = 99");
    CHECK(open_error(p).find("newer") != std::string::npos);
  }
  SUBCASE("a directory or a symlink") {
    CHECK_FALSE(open_error(dir.path).empty());
    { SqliteStore s(dir.file("real.db")); }
    fs::create_symlink(dir.file("real.db"), dir.file("link.db"));
    CHECK_FALSE(open_error(dir.file("link.db")).empty());
  }
  SUBCASE("a corrupt stored session") {
    const fs::path p = dir.file("session.db");
    auto alice = test::make_device("alice@example.org", 11, 1);
    auto bob = test::make_device("bob@example.org", 22, 2);
    alice->send("x", {bob.get()});
    { SqliteStore s(p); s.save_session(*alice->store.load_session(bob->address())); }
    raw_exec(p, "UPDATE sessions SET state = x'0a0362'");
    SqliteStore s(p);
    try {
      (void)s.load_session(bob->address());
      FAIL("no error");
    } catch (const client::sqlite::Error& e) {
      CHECK(std::string(e.what()).find("corrupt session with bob@example.org/22") != std::string::npos);
    }
  }
  SUBCASE("pages overwritten with garbage") {
    const fs::path p = dir.file("pages.db");
    {
      SqliteDevice d(p, "bob@example.org", 22, 2);
      for (int i = 0; i < 50; ++i)
        d.store->history().append({"id" + std::to_string(i), client::EntryType::message, "a@b", 1, {"c@d"},
                                   std::string(200, 'x'), i, client::Direction::in, "", ""});
    }
    std::string bytes = slurp(p);
    REQUIRE(bytes.size() > 3 * 4096);
    for (std::size_t i = 4096; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 131) & 0xff);
    std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
    CHECK_THROWS_AS(
        {
          SqliteStore s(p);
          (void)s.visible_prekeys();
          (void)s.history().list();
          (void)s.load_identity();
        },
        std::runtime_error);
  }
}

TEST_CASE("the state file and its WAL are private (0600)") {
  TempDir dir;
  const mode_t old = ::umask(0);  // even with a permissive umask
  {
    SqliteStore s(dir.file("a.db"));
    s.history().set_last_stanza_id("x");
    CHECK(mode_of(dir.file("a.db")) == 0600);
    CHECK(mode_of(dir.file("a.db-wal")) == 0600);
    CHECK(mode_of(dir.file("a.db-shm")) == 0600);
  }
  ::umask(old);
  std::ofstream(dir.file("b.db")).close();
  fs::permissions(dir.file("b.db"), fs::perms(0644));
  { SqliteStore s(dir.file("b.db")); }
  CHECK(mode_of(dir.file("b.db")) == 0600);
}
