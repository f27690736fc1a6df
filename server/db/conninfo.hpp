// The libpq connection string the component really uses: the operator's URL or key=value
// string with our network timeouts added where the operator set none. Knows libpq's syntax
// (through PQconninfoParse, not by hand) and nothing of connections.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace multiend::server {

struct ConnTimeouts {
  std::int64_t connect_timeout_seconds = 10;
  // A connection that stops answering (a black-holed host: packets dropped, not refused) is
  // found by TCP keepalives when idle and by tcp_user_timeout when data stays unacknowledged.
  std::int64_t keepalive_idle_seconds = 10;
  std::int64_t keepalive_interval_seconds = 5;
  std::int64_t keepalive_count = 3;
  std::int64_t tcp_user_timeout_ms = 20000;
};

// The connection string in key='value' form with the timeouts added (operator's values win);
// nullopt with `error` filled when libpq cannot parse `url`.
std::optional<std::string> conninfo_with_timeouts(std::string_view url, const ConnTimeouts& t, std::string* error);

}  // namespace multiend::server
