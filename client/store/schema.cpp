#include "client/store/schema.hpp"

#include <sqlite3.h>

#include <array>
#include <string>

namespace multiend::client::store_schema {
namespace {

// Never edit a migration that has shipped: append a new one.
constexpr std::array<const char*, 5> kMigrations = {
    // 1: the OMEMO stores, trust, settings, the archive position and the local history.
    R"sql(
CREATE TABLE meta (
  key TEXT PRIMARY KEY NOT NULL,
  value ANY
) STRICT, WITHOUT ROWID;

CREATE TABLE identity (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  jid TEXT NOT NULL,
  device_id INTEGER NOT NULL CHECK (device_id BETWEEN 0 AND 4294967295),
  seed BLOB NOT NULL CHECK (length(seed) = 32)
) STRICT;

CREATE TABLE prekeys (
  id INTEGER PRIMARY KEY CHECK (id BETWEEN 0 AND 4294967295),
  priv BLOB NOT NULL CHECK (length(priv) = 32),
  pub BLOB NOT NULL CHECK (length(pub) = 32),
  hidden INTEGER NOT NULL CHECK (hidden IN (0, 1))
) STRICT;

CREATE TABLE signed_prekeys (
  slot TEXT PRIMARY KEY NOT NULL CHECK (slot IN ('current', 'previous')),
  id INTEGER NOT NULL CHECK (id BETWEEN 0 AND 4294967295),
  priv BLOB NOT NULL CHECK (length(priv) = 32),
  signature BLOB NOT NULL CHECK (length(signature) = 64),
  created INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE sessions (
  jid TEXT NOT NULL,
  device INTEGER NOT NULL CHECK (device BETWEEN 0 AND 4294967295),
  state BLOB NOT NULL,
  PRIMARY KEY (jid, device)
) STRICT;

CREATE TABLE device_lists (
  jid TEXT PRIMARY KEY NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE device_list_entries (
  jid TEXT NOT NULL REFERENCES device_lists (jid) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  device INTEGER NOT NULL CHECK (device BETWEEN 0 AND 4294967295),
  label TEXT,
  labelsig TEXT,
  PRIMARY KEY (jid, position)
) STRICT, WITHOUT ROWID;

CREATE TABLE devices (
  jid TEXT NOT NULL,
  device INTEGER NOT NULL CHECK (device BETWEEN 0 AND 4294967295),
  identity_key BLOB NOT NULL CHECK (length(identity_key) = 32),
  trust TEXT NOT NULL CHECK (trust IN ('undecided_blind', 'verified', 'distrusted')),
  PRIMARY KEY (jid, device)
) STRICT, WITHOUT ROWID;

CREATE TABLE settings (
  key TEXT PRIMARY KEY NOT NULL,
  value TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE history (
  seq INTEGER PRIMARY KEY,
  stanza_id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL CHECK (type IN ('message', 'undecryptable')),
  from_jid TEXT NOT NULL,
  from_device INTEGER NOT NULL CHECK (from_device BETWEEN 0 AND 4294967295),
  body TEXT NOT NULL,
  timestamp_us INTEGER NOT NULL,
  direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
  reason TEXT NOT NULL
) STRICT;
CREATE INDEX history_by_sender ON history (from_jid, seq);

CREATE TABLE history_recipients (
  entry INTEGER NOT NULL REFERENCES history (seq) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  jid TEXT NOT NULL,
  PRIMARY KEY (entry, position)
) STRICT, WITHOUT ROWID;
CREATE INDEX history_by_recipient ON history_recipients (jid, entry);
)sql",
    // v2: messages encrypted and committed locally but not yet acknowledged by the component.
    // The stanza is kept byte for byte: its ratchet steps are already spent, so a resend must be
    // the same ciphertext under the same origin-id (the component then stores it only once).
    R"sql(
CREATE TABLE outbox (
  origin_id TEXT PRIMARY KEY NOT NULL,
  stanza TEXT NOT NULL,
  body TEXT NOT NULL,
  recipients TEXT NOT NULL,
  created_us INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
)sql",
    // v3: the session a key exchange replaced (omemo::SessionStore::load_previous_session).
    R"sql(
CREATE TABLE previous_sessions (
  jid TEXT NOT NULL,
  device INTEGER NOT NULL CHECK (device BETWEEN 0 AND 4294967295),
  state BLOB NOT NULL,
  PRIMARY KEY (jid, device)
) STRICT;
)sql",
    // v4: bounds and replay defence (omemo::SessionStore): skipped-key counts per session, the
    // key exchanges already consumed, and the sender's trust as shown when a message arrived.
    R"sql(
ALTER TABLE sessions ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0 CHECK (skipped >= 0);
ALTER TABLE previous_sessions ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0 CHECK (skipped >= 0);
CREATE TABLE consumed_key_exchanges (
  seq INTEGER PRIMARY KEY,
  ek BLOB NOT NULL UNIQUE CHECK (length(ek) = 32)
) STRICT;
ALTER TABLE history ADD COLUMN trust TEXT NOT NULL DEFAULT '';
)sql",
    // v5: OMEMO over PEP: OMEMO 2 prekeys published in PEP (apart from the component's), legacy
    // OMEMO (eu.siacs.conversations.axolotl) prekeys and sessions, each history entry's protocol,
    // path and place in the order.
    R"sql(
CREATE TABLE omemo2_pep_prekeys (
  id INTEGER PRIMARY KEY CHECK (id BETWEEN 0 AND 4294967295),
  priv BLOB NOT NULL CHECK (length(priv) = 32),
  pub BLOB NOT NULL CHECK (length(pub) = 32),
  hidden INTEGER NOT NULL CHECK (hidden IN (0, 1))
) STRICT;
CREATE TABLE legacy_prekeys (
  id INTEGER PRIMARY KEY CHECK (id BETWEEN 0 AND 4294967295),
  priv BLOB NOT NULL CHECK (length(priv) = 32),
  pub BLOB NOT NULL CHECK (length(pub) = 32),
  hidden INTEGER NOT NULL CHECK (hidden IN (0, 1))
) STRICT;
CREATE TABLE legacy_sessions (
  jid TEXT NOT NULL,
  device INTEGER NOT NULL CHECK (device BETWEEN 0 AND 4294967295),
  state BLOB NOT NULL,
  PRIMARY KEY (jid, device)
) STRICT;
CREATE TABLE legacy_previous_sessions (
  jid TEXT NOT NULL,
  device INTEGER NOT NULL CHECK (device BETWEEN 0 AND 4294967295),
  state BLOB NOT NULL,
  PRIMARY KEY (jid, device)
) STRICT;
ALTER TABLE history ADD COLUMN protocol TEXT NOT NULL DEFAULT 'omemo2' CHECK (protocol IN ('omemo2', 'oldmemo', 'none'));
ALTER TABLE history ADD COLUMN via TEXT NOT NULL DEFAULT 'archive' CHECK (via IN ('archive', 'pep'));
-- where an entry sorts: the archive's own id, or for a chat message the newest archive message
-- not later than it (it is listed after that one, before the next)
ALTER TABLE history ADD COLUMN anchor TEXT NOT NULL DEFAULT '';
CREATE INDEX history_order ON history (length(CASE WHEN via = 'pep' THEN anchor ELSE stanza_id END),
                                       CASE WHEN via = 'pep' THEN anchor ELSE stanza_id END, via, seq);
)sql",
};

[[noreturn]] void refuse(const sqlite::Database& db, const std::string& why) {
  throw sqlite::Error(SQLITE_NOTADB, "state file '" + db.path() + "': " + why);
}

}  // namespace

std::int64_t latest_version() noexcept { return static_cast<std::int64_t>(kMigrations.size()); }

void migrate(sqlite::Database& db) {
  if (sqlite3_libversion_number() < 3037000)
    refuse(db, std::string("SQLite ") + sqlite3_libversion() + " is too old (3.37 or newer needed)");
  // Checked before and again inside the write transaction (another process may migrate first).
  auto check = [&db]() -> std::int64_t {
    const std::int64_t app = db.pragma_int("application_id");
    const std::int64_t version = db.pragma_int("user_version");
    if (app == 0 && version == 0) {
      auto q = db.query("SELECT count(*) FROM sqlite_schema");
      if (q.step() && q.int64(0) != 0) refuse(db, "not a Multiend state file (an unrelated SQLite database)");
      return 0;
    }
    if (app != kApplicationId) refuse(db, "not a Multiend state file (application_id " + std::to_string(app) + ")");
    if (version > latest_version())
      refuse(db, "schema version " + std::to_string(version) + " was written by a newer Multiend (this one knows up to " +
                     std::to_string(latest_version()) + ")");
    return version;
  };
  const std::int64_t found = check();
  // Only now that the file is known to be ours (or empty); -wal and -shm inherit the mode.
  db.make_private();
  db.enable_wal();
  if (found == latest_version()) return;
  db.atomically([&] {
    std::int64_t version = check();
    if (version == 0) db.exec(("PRAGMA application_id = " + std::to_string(kApplicationId)).c_str());
    for (; version < latest_version(); ++version) {
      db.exec(kMigrations[static_cast<std::size_t>(version)]);
      db.exec(("PRAGMA user_version = " + std::to_string(version + 1)).c_str());
    }
  });
}

}  // namespace multiend::client::store_schema
