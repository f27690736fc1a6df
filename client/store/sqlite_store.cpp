#include "client/store/sqlite_store.hpp"

#include <sodium.h>

#include "client/store/schema.hpp"
#include "protocol/omemo/protobuf_parse.hpp"
#include "client/store/session_blob.hpp"

namespace multiend::client {
namespace {

using crypto::ByteView;

std::int64_t as_int(std::uint32_t v) { return static_cast<std::int64_t>(v); }

crypto::Secret<32> secret32(const sqlite::Database& db, ByteView v, std::string_view what) {
  if (v.size() != 32) db.corrupt(what);  // Secret(ByteView) aborts on a wrong size
  return crypto::Secret<32>(v);
}

}  // namespace

SqliteStore::SqliteStore(const std::filesystem::path& path, Options options)
    : db_(path, options),
      trust_(db_),
      settings_(db_),
      history_(db_),
      outbox_(db_),
      prekeys_(db_, "prekeys", "next_prekey_id"),
      pep_prekeys_(db_, "omemo2_pep_prekeys", "next_prekey_id"),
      legacy_(db_) {
  store_schema::migrate(db_);
  count_skipped_keys_once();
}

void SqliteStore::count_skipped_keys_once() {
  // Schema v4 added sessions.skipped with 0 for sessions stored before: count them once, or
  // the caps on skipped keys would not see them until they are saved again.
  {
    auto q = db_.query("SELECT 1 FROM meta WHERE key = 'skipped_counted'");
    if (q.step()) return;
  }
  db_.atomically([&] {
    for (const char* table : {"sessions", "previous_sessions"}) {
      std::vector<omemo::DeviceAddress> peers;
      {
        auto q = db_.query((std::string("SELECT jid, device FROM ") + table).c_str());
        while (q.step()) peers.push_back({q.text(0), static_cast<std::uint32_t>(q.int64(1))});
      }
      const bool current = std::string_view(table) == "sessions";
      for (const auto& p : peers) {
        auto s = current ? load_session(p) : load_previous_session(p);
        if (s) current ? save_session(*s) : save_previous_session(*s);
      }
    }
    db_.exec("INSERT INTO meta (key, value) VALUES ('skipped_counted', 1)");
  });
}

SqliteStore::~SqliteStore() = default;

// ---- identity ----

std::optional<omemo::OwnIdentity> SqliteStore::load_identity() {
  auto q = db_.query("SELECT jid, device_id, seed FROM identity WHERE singleton = 1");
  if (!q.step()) return std::nullopt;
  return omemo::OwnIdentity{q.text(0), static_cast<std::uint32_t>(q.int64(1)),
                            crypto::IdentityKeyPair::from_seed(secret32(db_, q.blob(2), "identity key"))};
}

void SqliteStore::save_identity(const omemo::OwnIdentity& id) {
  db_.atomically([&] {
    auto q = db_.query(
        "INSERT INTO identity (singleton, jid, device_id, seed) VALUES (1, ?1, ?2, ?3) "
        "ON CONFLICT (singleton) DO UPDATE SET jid = excluded.jid, device_id = excluded.device_id, "
        "seed = excluded.seed");
    q.bind(1, id.jid).bind(2, as_int(id.device_id)).bind_blob(3, id.key.seed().view());
    q.run();
  });
}

// ---- one-time prekeys (prekey_table.cpp) ----

// Two OMEMO 2 pools with one id counter: the component's (the bundle it hands out one prekey at
// a time) and the one published in PEP (where anyone reads them all). A key exchange may name
// either; what the session manager publishes to the component is the first pool only.
std::optional<omemo::PreKeyRecord> SqliteStore::load_prekey(std::uint32_t id) {
  if (auto pk = prekeys_.load_prekey(id)) return pk;
  return pep_prekeys_.load_prekey(id);
}
void SqliteStore::save_prekey(const omemo::PreKeyRecord& pk) {
  if (pep_prekeys_.load_prekey(pk.id)) return pep_prekeys_.save_prekey(pk);
  prekeys_.save_prekey(pk);
}
void SqliteStore::remove_prekey(std::uint32_t id) {
  prekeys_.remove_prekey(id);
  pep_prekeys_.remove_prekey(id);
}
std::vector<omemo::PreKeyPublic> SqliteStore::visible_prekeys() { return prekeys_.visible_prekeys(); }
std::vector<std::uint32_t> SqliteStore::hidden_prekeys() {
  auto out = prekeys_.hidden_prekeys();
  for (auto id : pep_prekeys_.hidden_prekeys()) out.push_back(id);
  return out;
}
std::uint32_t SqliteStore::allocate_prekey_id() { return prekeys_.allocate_prekey_id(); }

// ---- signed prekeys ----

std::optional<omemo::SignedPreKeyRecord> SqliteStore::signed_prekey(std::string_view slot) {
  auto q = db_.query("SELECT id, priv, signature, created FROM signed_prekeys WHERE slot = ?1");
  q.bind(1, slot);
  if (!q.step()) return std::nullopt;
  const ByteView sig = q.blob(2);
  if (sig.size() != crypto::Ed25519Signature::size()) db_.corrupt("signed prekey");
  return omemo::SignedPreKeyRecord{
      static_cast<std::uint32_t>(q.int64(0)),
      crypto::X25519KeyPair::from_private(secret32(db_, q.blob(1), "signed prekey")),
      crypto::Ed25519Signature::from(sig), q.int64(3)};
}

std::optional<omemo::SignedPreKeyRecord> SqliteStore::current_signed_prekey() { return signed_prekey("current"); }
std::optional<omemo::SignedPreKeyRecord> SqliteStore::previous_signed_prekey() { return signed_prekey("previous"); }

void SqliteStore::rotate_signed_prekey(const omemo::SignedPreKeyRecord& next) {
  db_.atomically([&] {
    db_.query("DELETE FROM signed_prekeys WHERE slot = 'previous'").run();
    db_.query("UPDATE signed_prekeys SET slot = 'previous' WHERE slot = 'current'").run();
    auto q = db_.query(
        "INSERT INTO signed_prekeys (slot, id, priv, signature, created) VALUES ('current', ?1, ?2, ?3, ?4)");
    q.bind(1, as_int(next.id)).bind_blob(2, next.key.priv.view()).bind_blob(3, next.signature.view());
    q.bind(4, next.created);
    q.run();
  });
}

// ---- sessions ----

namespace {

std::optional<omemo::Session> load_session_from(sqlite::Database& db, const char* sql, const omemo::DeviceAddress& peer) {
  auto q = db.query(sql);
  q.bind(1, peer.jid).bind(2, as_int(peer.device));
  if (!q.step()) return std::nullopt;
  state::Session msg;
  Result<omemo::Session> session = omemo::parse_protobuf(msg, q.blob(0))
                                       ? omemo::Session::from_state(msg)
                                       : Result<omemo::Session>(Errc::bad_protobuf);
  wipe_secrets(msg);
  if (!session || session->peer != peer) db.corrupt("session with " + peer.jid + "/" + std::to_string(peer.device));
  return std::move(*session);
}

void save_session_to(sqlite::Database& db, const char* sql, const omemo::Session& s) {
  state::Session msg;
  s.to_state(msg);
  const crypto::SecretBytes blob = session_blob(msg);
  db.atomically([&] {
    auto q = db.query(sql);
    q.bind(1, s.peer.jid).bind(2, as_int(s.peer.device)).bind_blob(3, blob.view());
    q.bind(4, static_cast<std::int64_t>(s.ratchet.skipped_key_count()));
    q.run();
  });
}

}  // namespace

std::optional<omemo::Session> SqliteStore::load_session(const omemo::DeviceAddress& peer) {
  return load_session_from(db_, "SELECT state FROM sessions WHERE jid = ?1 AND device = ?2", peer);
}

void SqliteStore::save_session(const omemo::Session& s) {
  save_session_to(db_,
                  "INSERT INTO sessions (jid, device, state, skipped) VALUES (?1, ?2, ?3, ?4) "
                  "ON CONFLICT (jid, device) DO UPDATE SET state = excluded.state, skipped = excluded.skipped",
                  s);
}

std::optional<omemo::Session> SqliteStore::load_previous_session(const omemo::DeviceAddress& peer) {
  return load_session_from(db_, "SELECT state FROM previous_sessions WHERE jid = ?1 AND device = ?2", peer);
}

void SqliteStore::save_previous_session(const omemo::Session& s) {
  save_session_to(db_,
                  "INSERT INTO previous_sessions (jid, device, state, skipped) VALUES (?1, ?2, ?3, ?4) "
                  "ON CONFLICT (jid, device) DO UPDATE SET state = excluded.state, skipped = excluded.skipped",
                  s);
}

void SqliteStore::remove_session(const omemo::DeviceAddress& peer) {
  db_.atomically([&] {
    for (const char* sql : {"DELETE FROM sessions WHERE jid = ?1 AND device = ?2",
                            "DELETE FROM previous_sessions WHERE jid = ?1 AND device = ?2"}) {
      auto q = db_.query(sql);
      q.bind(1, peer.jid).bind(2, as_int(peer.device));
      q.run();
    }
  });
}

bool SqliteStore::has_session(const omemo::DeviceAddress& peer) {
  auto q = db_.query("SELECT 1 FROM sessions WHERE jid = ?1 AND device = ?2");
  q.bind(1, peer.jid).bind(2, as_int(peer.device));
  return q.step();
}

std::size_t SqliteStore::session_count(const std::string& jid) {
  auto q = db_.query("SELECT count(*) FROM sessions WHERE jid = ?1");
  q.bind(1, jid);
  return q.step() ? static_cast<std::size_t>(q.int64(0)) : 0;
}

omemo::SessionStore::SkippedCounts SqliteStore::skipped_keys_besides(const omemo::DeviceAddress& peer) {
  auto q = db_.query(
      "SELECT coalesce(sum(skipped) FILTER (WHERE jid = ?1), 0), coalesce(sum(skipped), 0) FROM ("
      " SELECT jid, device, skipped FROM sessions UNION ALL SELECT jid, device, skipped FROM previous_sessions)"
      " WHERE NOT (jid = ?1 AND device = ?2)");
  q.bind(1, peer.jid).bind(2, as_int(peer.device));
  SkippedCounts c;
  if (q.step()) {
    c.account = static_cast<std::size_t>(q.int64(0));
    c.total = static_cast<std::size_t>(q.int64(1));
  }
  return c;
}

bool SqliteStore::key_exchange_consumed(const omemo::X25519Public& ek) {
  auto q = db_.query("SELECT 1 FROM consumed_key_exchanges WHERE ek = ?1");
  q.bind_blob(1, ek.view());
  return q.step();
}

void SqliteStore::remember_key_exchange(const omemo::X25519Public& ek) {
  db_.atomically([&] {
    {
      auto q = db_.query("INSERT INTO consumed_key_exchanges (ek) VALUES (?1) ON CONFLICT (ek) DO NOTHING");
      q.bind_blob(1, ek.view());
      q.run();
    }
    auto q = db_.query("DELETE FROM consumed_key_exchanges WHERE seq <= (SELECT max(seq) FROM consumed_key_exchanges) - ?1");
    q.bind(1, static_cast<std::int64_t>(omemo::kMaxRememberedKeyExchanges));
    q.run();
  });
}

std::size_t SqliteStore::session_count() {
  auto q = db_.query("SELECT count(*) FROM sessions");
  return q.step() ? static_cast<std::size_t>(q.int64(0)) : 0;
}

// ---- device lists ----

std::optional<omemo::DeviceList> SqliteStore::load_device_list(const std::string& jid) {
  {
    auto q = db_.query("SELECT 1 FROM device_lists WHERE jid = ?1");
    q.bind(1, jid);
    if (!q.step()) return std::nullopt;
  }
  omemo::DeviceList list;
  auto q = db_.query("SELECT device, label, labelsig FROM device_list_entries WHERE jid = ?1 ORDER BY position");
  q.bind(1, jid);
  while (q.step())
    list.devices.push_back({static_cast<std::uint32_t>(q.int64(0)), q.optional_text(1), q.optional_text(2)});
  return list;
}

void SqliteStore::save_device_list(const std::string& jid, const omemo::DeviceList& list) {
  db_.atomically([&] {
    {
      auto q = db_.query("INSERT INTO device_lists (jid) VALUES (?1) ON CONFLICT (jid) DO NOTHING");
      q.bind(1, jid);
      q.run();
    }
    {
      auto q = db_.query("DELETE FROM device_list_entries WHERE jid = ?1");
      q.bind(1, jid);
      q.run();
    }
    auto q = db_.query(
        "INSERT INTO device_list_entries (jid, position, device, label, labelsig) VALUES (?1, ?2, ?3, ?4, ?5)");
    for (std::size_t i = 0; i < list.devices.size(); ++i) {
      const omemo::DeviceEntry& d = list.devices[i];
      q.reset();
      q.bind(1, jid).bind(2, static_cast<std::int64_t>(i)).bind(3, as_int(d.id));
      q.bind_optional(4, d.label).bind_optional(5, d.labelsig);
      q.run();
    }
  });
}

}  // namespace multiend::client
