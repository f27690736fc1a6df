// The client state file's schema: forward-only migrations numbered by PRAGMA user_version,
// the file marked as ours by PRAGMA application_id. A file from a newer client, another
// application's SQLite database, or a file that is not a database is refused with a clear
// sqlite::Error instead of being "upgraded". Needs SQLite >= 3.37 (STRICT tables).
#pragma once

#include <cstdint>

#include "client/store/sqlite.hpp"

namespace multiend::client::store_schema {

inline constexpr std::int64_t kApplicationId = 0x4D454E44;  // "MEND"

// The version this build writes (the number of migrations).
std::int64_t latest_version() noexcept;

// Brings the file up to latest_version() in one transaction (or refuses it).
void migrate(sqlite::Database& db);

}  // namespace multiend::client::store_schema
