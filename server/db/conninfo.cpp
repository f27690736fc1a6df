#include "server/db/conninfo.hpp"

#include <libpq-fe.h>

#include <map>
#include <memory>

namespace multiend::server {
namespace {

// libpq's quoting for key=value strings: single quotes, backslash-escaped ' and \.
std::string quoted(std::string_view v) {
  std::string out = "'";
  for (char ch : v) {
    if (ch == '\'' || ch == '\\') out += '\\';
    out += ch;
  }
  out += '\'';
  return out;
}

}  // namespace

std::optional<std::string> conninfo_with_timeouts(std::string_view url, const ConnTimeouts& t, std::string* error) {
  const std::string z(url);
  char* err = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> opts(PQconninfoParse(z.c_str(), &err), &PQconninfoFree);
  if (!opts) {
    if (error) *error = err ? err : "cannot parse the database URL";
    if (err) PQfreemem(err);
    return std::nullopt;
  }
  std::map<std::string, std::string> given;
  for (PQconninfoOption* o = opts.get(); o->keyword; ++o)
    if (o->val) given[o->keyword] = o->val;
  const std::map<std::string, std::string> defaults = {
      {"connect_timeout", std::to_string(t.connect_timeout_seconds)},
      {"keepalives", "1"},
      {"keepalives_idle", std::to_string(t.keepalive_idle_seconds)},
      {"keepalives_interval", std::to_string(t.keepalive_interval_seconds)},
      {"keepalives_count", std::to_string(t.keepalive_count)},
      {"tcp_user_timeout", std::to_string(t.tcp_user_timeout_ms)},
  };
  for (const auto& [k, v] : defaults) given.emplace(k, v);
  std::string out;
  for (const auto& [k, v] : given) {
    if (!out.empty()) out += ' ';
    out += k + "=" + quoted(v);
  }
  return out;
}

}  // namespace multiend::server
