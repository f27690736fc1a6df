// Legacy OMEMO's part of the state file: its own one-time prekey pool (legacy_prekeys) and its
// sessions (legacy_sessions), stored as state::Session with generation 1. The identity and the
// signed prekey are OMEMO 2's (SqliteStore), shared. Same durability rules as SqliteStore:
// wrap a whole decryption in one of its transactions.
#pragma once

#include "client/store/prekey_table.hpp"
#include "client/store/sqlite.hpp"
#include "protocol/oldmemo/legacy_manager.hpp"

namespace multiend::client {

class LegacyStore final : public oldmemo::LegacySessionStore {
 public:
  explicit LegacyStore(sqlite::Database& db) : db_(db), prekeys_(db, "legacy_prekeys", "next_legacy_prekey_id") {}

  omemo::PreKeyStore& prekeys() noexcept { return prekeys_; }

  std::optional<oldmemo::LegacySession> load_legacy_session(const omemo::DeviceAddress& peer) override;
  void save_legacy_session(const oldmemo::LegacySession& s) override;
  void remove_legacy_session(const omemo::DeviceAddress& peer) override;
  std::size_t legacy_session_count(const std::string& jid) override;
  std::optional<oldmemo::LegacySession> load_previous_legacy_session(const omemo::DeviceAddress& peer) override;
  void save_previous_legacy_session(const oldmemo::LegacySession& s) override;
  bool has_legacy_session(const omemo::DeviceAddress& peer);

 private:
  std::optional<oldmemo::LegacySession> load_from(const char* table, const omemo::DeviceAddress& peer);
  void save_to(const char* table, const oldmemo::LegacySession& s);
  sqlite::Database& db_;
  PreKeyTable prekeys_;
};

}  // namespace multiend::client
