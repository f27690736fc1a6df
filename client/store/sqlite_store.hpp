// One device's whole state in one SQLite file: the five OMEMO 2 stores (behaving exactly like
// omemo::MemoryStore), legacy OMEMO's own prekeys and sessions (legacy_store.hpp), plus trust, connection settings, the archive position and the local
// history (trust_store.hpp, settings_store.hpp, history_store.hpp).
//
// Durability and atomicity. The file runs in WAL mode with synchronous=FULL, so a commit is on
// disk when commit() returns. Every store call is atomic by itself; to make a whole decryption
// atomic (session saved, prekey removed, history entry, archive position), wrap it:
//
//   auto tx = store.begin();
//   auto d = manager.decrypt(message, sender);   // session + prekey writes
//   store.history().append(entry);
//   store.history().set_last_stanza_id(id);
//   tx.commit();                                 // all of it, or (crash, exception) none
//
// A message key is therefore never usable twice: either the ratchet step and everything that
// depends on it are committed together, or none of it is. Transactions do not nest: begin()
// while one is open is a std::logic_error. Store calls inside it run in savepoints, so a store
// call that throws undoes only its own writes; the caller then decides to roll back.
// Also wrap SessionManager::open and refill_prekeys in one transaction: 100 prekeys are then
// one commit instead of 200. The same pattern refuses a changed identity key: decrypt, then
// trust().record_device_identity(sender, d->sender_ik); on Errc::identity_mismatch do not
// commit, and the session the key exchange built (and the prekey it used) never existed.
//
// Forward secrecy on disk. Deleting a prekey, replacing a ratchet state (which drops used
// message keys and old chain keys) or rotating a signed prekey must not leave the old bytes
// readable in the file. `PRAGMA secure_delete=ON` makes SQLite overwrite deleted content and
// freed pages with zeros instead of merely unlinking them. In WAL mode old page images also
// live in the -wal file until a checkpoint copies the WAL back and the WAL is reset: by default
// (Options::checkpoint_after_commit) every commit is followed by a non-blocking
// wal_checkpoint(TRUNCATE), and closing the store truncates the WAL too. Limits: the
// filesystem, the SSD's flash translation layer and backups may still hold old blocks, and
// SQLite's page cache in memory is not wiped.
//
// Secrets in memory: sessions are stored as serialised state::Session protobufs; the protobuf
// message's secret fields and the serialisation buffer are wiped after use, as in MemoryStore.
//
// The file is created with mode 0600 (an existing state file, -wal and -shm included, is
// tightened to 0600; new -wal and -shm files inherit the mode); symlinks are refused. A file
// that is not a Multiend state file (left untouched), or one from a newer schema, is refused
// with an sqlite::Error (a std::runtime_error naming the file). Stored values that fail to parse also throw sqlite::Error (code SQLITE_CORRUPT).
// Not thread-safe; the object must outlive every Transaction and SessionManager using it.
#pragma once

#include <filesystem>

#include "client/store/history_store.hpp"
#include "client/store/legacy_store.hpp"
#include "client/store/outbox_store.hpp"
#include "client/store/prekey_table.hpp"
#include "client/store/settings_store.hpp"
#include "client/store/sqlite.hpp"
#include "client/store/trust_store.hpp"
#include "protocol/omemo/stores.hpp"

namespace multiend::client {

class SqliteStore final : public omemo::IdentityStore,
                          public omemo::PreKeyStore,
                          public omemo::SignedPreKeyStore,
                          public omemo::SessionStore,
                          public omemo::DeviceListStore {
 public:
  using Options = sqlite::Database::Options;
  using Transaction = sqlite::Transaction;

  // Opens or creates the file and migrates it to the current schema.
  explicit SqliteStore(const std::filesystem::path& path, Options options = {});
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  omemo::Stores stores() { return {*this, *this, *this, *this, *this}; }
  [[nodiscard]] Transaction begin() { return Transaction(db_); }
  // See sqlite::Database::checkpoint (not inside a transaction).
  bool checkpoint() { return db_.checkpoint(); }
  const std::string& path() const noexcept { return db_.path(); }
  sqlite::Database& database() noexcept { return db_; }

  TrustStore& trust() noexcept { return trust_; }
  SettingsStore& settings() noexcept { return settings_; }
  HistoryStore& history() noexcept { return history_; }
  OutboxStore& outbox() noexcept { return outbox_; }
  // Legacy OMEMO's own prekey pool and sessions; identity and signed prekey are shared.
  oldmemo::LegacyStores legacy_stores() { return {*this, *this, legacy_.prekeys(), legacy_}; }
  LegacyStore& legacy() noexcept { return legacy_; }
  // OMEMO 2 prekeys published in PEP, apart from the component's (same id counter; a key
  // exchange naming one is found through load_prekey like any other).
  PreKeyTable& pep_prekeys() noexcept { return pep_prekeys_; }

  std::optional<omemo::OwnIdentity> load_identity() override;
  void save_identity(const omemo::OwnIdentity& id) override;

  std::optional<omemo::PreKeyRecord> load_prekey(std::uint32_t id) override;
  void save_prekey(const omemo::PreKeyRecord& pk) override;
  void remove_prekey(std::uint32_t id) override;
  std::vector<omemo::PreKeyPublic> visible_prekeys() override;
  std::vector<std::uint32_t> hidden_prekeys() override;
  std::uint32_t allocate_prekey_id() override;

  std::optional<omemo::SignedPreKeyRecord> current_signed_prekey() override;
  std::optional<omemo::SignedPreKeyRecord> previous_signed_prekey() override;
  void rotate_signed_prekey(const omemo::SignedPreKeyRecord& next) override;

  std::optional<omemo::Session> load_session(const omemo::DeviceAddress& peer) override;
  void save_session(const omemo::Session& s) override;
  void remove_session(const omemo::DeviceAddress& peer) override;
  std::optional<omemo::Session> load_previous_session(const omemo::DeviceAddress& peer) override;
  void save_previous_session(const omemo::Session& s) override;
  std::size_t session_count(const std::string& jid) override;
  SkippedCounts skipped_keys_besides(const omemo::DeviceAddress& peer) override;
  bool key_exchange_consumed(const omemo::X25519Public& ek) override;
  void remember_key_exchange(const omemo::X25519Public& ek) override;

  std::optional<omemo::DeviceList> load_device_list(const std::string& jid) override;
  void save_device_list(const std::string& jid, const omemo::DeviceList& list) override;

  bool has_session(const omemo::DeviceAddress& peer);  // without loading the ratchet state
  std::size_t session_count();

 private:
  std::optional<omemo::SignedPreKeyRecord> signed_prekey(std::string_view slot);
  void count_skipped_keys_once();

  sqlite::Database db_;
  TrustStore trust_;
  SettingsStore settings_;
  HistoryStore history_;
  OutboxStore outbox_;
  PreKeyTable prekeys_;
  PreKeyTable pep_prekeys_;
  LegacyStore legacy_;
};

}  // namespace multiend::client
