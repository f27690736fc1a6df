// One pool of one-time prekeys in the state file: a table (id, priv, pub, hidden) and its id
// counter in `meta`. OMEMO 2 and legacy OMEMO each have their own pool (SqliteStore, LegacyStore),
// so a prekey one bundle advertises is never consumed through the other.
#pragma once

#include <string>

#include "client/store/sqlite.hpp"
#include "protocol/omemo/stores.hpp"

namespace multiend::client {

class PreKeyTable final : public omemo::PreKeyStore {
 public:
  // `table` and `counter_key` are fixed names from our own code, never input.
  PreKeyTable(sqlite::Database& db, std::string table, std::string counter_key)
      : db_(db), table_(std::move(table)), counter_key_(std::move(counter_key)) {}

  std::optional<omemo::PreKeyRecord> load_prekey(std::uint32_t id) override;
  void save_prekey(const omemo::PreKeyRecord& pk) override;
  void remove_prekey(std::uint32_t id) override;
  std::vector<omemo::PreKeyPublic> visible_prekeys() override;
  std::vector<std::uint32_t> hidden_prekeys() override;
  std::uint32_t allocate_prekey_id() override;

 private:
  sqlite::Database& db_;
  std::string table_;
  std::string counter_key_;
};

}  // namespace multiend::client
