// Versioned, forward-only schema migrations, applied at start and by `multiend-component
// migrate`. An advisory lock serialises instances that start together on one database.
#pragma once

#include <pqxx/pqxx>
#include <vector>

namespace multiend::server {

struct MigrationReport {
  int from_version = 0;
  int to_version = 0;
};

MigrationReport migrate(pqxx::connection& c);
int latest_schema_version();

}  // namespace multiend::server
