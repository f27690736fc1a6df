#include "server/config.hpp"

#include <cctype>

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <type_traits>
#include <variant>

#include "server/http/address.hpp"

namespace multiend::server {
namespace {

constexpr std::int64_t kDay = 24 * 3600;
constexpr std::int64_t kYear = 365 * kDay;

// Every integer option and its range, in one table: apply_json() refuses a JSON value outside
// it before the value can wrap into a narrower field, and validate() checks the same ranges on
// the result (flags and callers set fields too). The upper bounds keep values inside what the
// code can represent (seconds → steady_clock nanoseconds, PostgreSQL integer and interval
// arguments) and far above any sensible setting.
using IntField = std::variant<std::uint16_t Config::*, int Config::*, std::size_t Config::*, std::uint32_t Config::*,
                              std::int64_t Config::*>;
struct IntOption {
  const char* key;
  IntField field;
  std::int64_t min;
  std::int64_t max;
};

const IntOption kIntOptions[] = {
    {"component_port", &Config::component_port, 1, 65535},
    {"db_pool_size", &Config::db_pool_size, 1, 64},
    {"max_stanza_bytes", &Config::max_stanza_bytes, 4096, 16 * 1024 * 1024},
    {"max_recipients", &Config::max_recipients, 1, 10000},
    {"max_inflight", &Config::max_inflight, 1, 1000000},
    {"max_devices_per_account", &Config::max_devices_per_account, 1, 1000},
    {"max_subscriptions_per_owner", &Config::max_subscriptions_per_owner, 1, 1000000},
    {"max_subscriptions_per_subscriber", &Config::max_subscriptions_per_subscriber, 1, 1000000},
    {"output_buffer_bytes", &Config::output_buffer_bytes, 1024 * 1024, 1024 * 1024 * 1024},
    {"max_inflight_per_account", &Config::max_inflight_per_account, 1, 1000000},
    {"max_inflight_bytes", &Config::max_inflight_bytes, 1024 * 1024, std::int64_t{64} * 1024 * 1024 * 1024},
    {"max_inflight_bytes_per_account", &Config::max_inflight_bytes_per_account, 64 * 1024,
     std::int64_t{64} * 1024 * 1024 * 1024},
    {"message_rate_per_account", &Config::message_rate_per_account, 1, 1000000},
    {"message_burst_per_account", &Config::message_burst_per_account, 1, 10000000},
    {"max_mam_queries_per_account", &Config::max_mam_queries_per_account, 1, 10000},
    {"mam_max_page_bytes", &Config::mam_max_page_bytes, 64 * 1024, 1024 * 1024 * 1024},
    {"prekey_claims_per_hour", &Config::prekey_claims_per_hour, 1, 1000000},
    {"max_output_stanza_bytes", &Config::max_output_stanza_bytes, 16 * 1024, 64 * 1024 * 1024},
    {"max_missing_devices_listed", &Config::max_missing_devices_listed, 1, 100000},
    {"max_http_connections", &Config::max_http_connections, 1, 100000},
    {"batch_max", &Config::batch_max, 1, 10000},
    {"batch_max_bytes", &Config::batch_max_bytes, 1024 * 1024, 1024 * 1024 * 1024},
    {"mam_default_max", &Config::mam_default_max, 1, 1000},
    {"mam_max", &Config::mam_max, 1, 1000},
    {"prekey_low_threshold", &Config::prekey_low_threshold, 1, 1000},
    {"claim_retry_seconds", &Config::claim_retry_seconds, 1, kDay},
    {"retention_seconds", &Config::retention_seconds, 1, 100 * kYear},
    {"retention_interval_seconds", &Config::retention_interval_seconds, 1, kYear},
    {"device_inactivity_seconds", &Config::device_inactivity_seconds, 1, 100 * kYear},
    {"prune_interval_seconds", &Config::prune_interval_seconds, 1, kYear},
    {"connect_timeout_seconds", &Config::connect_timeout_seconds, 1, 3600},
    {"request_timeout_seconds", &Config::request_timeout_seconds, 1, 3600},
    {"reconnect_max_backoff_seconds", &Config::reconnect_max_backoff_seconds, 1, 3600},
    // 0 is allowed: stop at once, leaving in-flight stanzas unanswered (clients retry).
    {"shutdown_grace_seconds", &Config::shutdown_grace_seconds, 0, 3600},
};

struct StringOption {
  const char* key;
  std::string Config::*field;
};

const StringOption kStringOptions[] = {
    {"xmpp_host", &Config::xmpp_host},       {"component_domain", &Config::component_domain},
    {"user_domain", &Config::user_domain},   {"database_url", &Config::database_url},
    {"http_address", &Config::http_address}, {"log_level", &Config::log_level},
};

const char* const kLogLevelWords[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};

std::string range_of(const IntOption& o) { return std::to_string(o.min) + ".." + std::to_string(o.max); }

[[noreturn]] void out_of_range(const IntOption& o, const std::string& got) {
  throw std::invalid_argument(std::string("config: ") + o.key + " must be an integer in " + range_of(o) + " (got " +
                              got + ")");
}

// The field's value widened to int64 (unsigned values past int64 saturate: they are out of
// every range anyway).
std::int64_t read_int(const Config& c, const IntField& f) {
  return std::visit(
      [&](auto member) -> std::int64_t {
        const auto v = c.*member;
        using V = std::remove_cv_t<decltype(v)>;
        if constexpr (std::is_unsigned_v<V> && sizeof(V) >= sizeof(std::int64_t)) {
          if (v > static_cast<V>(std::numeric_limits<std::int64_t>::max()))
            return std::numeric_limits<std::int64_t>::max();
        }
        return static_cast<std::int64_t>(v);
      },
      f);
}

// Only called with a value inside the option's range, which fits every field type above.
void write_int(Config& c, const IntField& f, std::int64_t v) {
  std::visit([&](auto member) { c.*member = static_cast<std::remove_reference_t<decltype(c.*member)>>(v); }, f);
}

void take_int(const nlohmann::json& j, const IntOption& o, Config& c) {
  if (!j.contains(o.key)) return;
  const auto& v = j.at(o.key);
  // is_number_integer: not a float (1.9 must not read as 1), not a bool, not a string.
  if (!v.is_number_integer()) out_of_range(o, v.is_number() ? v.dump() : std::string("a ") + v.type_name());
  if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(o.max)) out_of_range(o, v.dump());
  const auto n = v.get<std::int64_t>();
  if (n < o.min || n > o.max) out_of_range(o, v.dump());
  write_int(c, o.field, n);
}

void take_string(const nlohmann::json& j, const char* key, std::string& out) {
  if (!j.contains(key)) return;
  const auto& v = j.at(key);
  // The value is not echoed: a misplaced secret must not end up in a log.
  if (!v.is_string()) throw std::invalid_argument(std::string("config: ") + key + " must be a string");
  out = v.get<std::string>();
}

// A file that holds a secret must not be readable by other local users (like ssh and its
// keys: refused, not merely warned about, since a warning in a service log goes unread).
void check_private(const std::string& path, const char* what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return;  // the read below reports it
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw std::invalid_argument(std::string(what) + " " + path + " is accessible to other users (mode " + mode +
                                "): chmod 600 it");
  }
}

std::string read_secret_file(const std::string& path) {
  check_private(path, "secret file");
  std::ifstream f(path);
  if (!f) throw std::invalid_argument("cannot read secret file " + path);
  std::string s;
  std::getline(f, s);
  return s;
}

}  // namespace

void apply_json(Config& c, const nlohmann::json& j) {
  if (!j.is_object()) throw std::invalid_argument("config: top level must be an object");
  for (const auto& [k, v] : j.items()) {
    if (k == "component_secret")
      throw std::invalid_argument("config: put the secret in MULTIEND_COMPONENT_SECRET or component_secret_file");
    bool ok = k == "component_secret_file";
    for (const auto& o : kStringOptions) ok |= k == o.key;
    for (const auto& o : kIntOptions) ok |= k == o.key;
    if (!ok) throw std::invalid_argument("config: unknown key " + k);
  }
  for (const auto& o : kStringOptions) take_string(j, o.key, c.*o.field);
  for (const auto& o : kIntOptions) take_int(j, o, c);
  if (j.contains("component_secret_file")) {
    std::string path;
    take_string(j, "component_secret_file", path);
    c.component_secret = read_secret_file(path);
  }
}

void load_file(Config& c, const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::invalid_argument("cannot read config file " + path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument("config file " + path + " is not valid JSON: " + e.what());
  }
  if (j.is_object() && j.contains("database_url") && j["database_url"].is_string() &&
      url_has_password(j["database_url"].get<std::string>()))
    check_private(path, "config file (its database_url holds a password)");
  apply_json(c, j);
}

void apply_environment(Config& c) {
  if (const char* s = std::getenv("MULTIEND_COMPONENT_SECRET_FILE")) c.component_secret = read_secret_file(s);
  if (const char* s = std::getenv("MULTIEND_COMPONENT_SECRET")) c.component_secret = s;
  if (const char* s = std::getenv("MULTIEND_DATABASE_URL")) c.database_url = s;
}

void validate(const Config& c, SecretRequired secret) {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("config: " + what);
  };
  if (secret == SecretRequired::yes)
    need(!c.component_secret.empty(), "no component secret (set MULTIEND_COMPONENT_SECRET)");
  need(!c.component_domain.empty() && !c.user_domain.empty(), "component_domain and user_domain are required");
  need(!c.xmpp_host.empty(), "xmpp_host is required");
  for (const auto& o : kIntOptions) {
    const std::int64_t v = read_int(c, o.field);
    if (v < o.min || v > o.max) out_of_range(o, std::visit([&](auto m) { return std::to_string(c.*m); }, o.field));
  }
  need(c.mam_default_max <= c.mam_max, "mam_default_max must be <= mam_max");
  // Fan-out headlines and MAM results wrap a stored message (up to max_stanza_bytes, and
  // stored ones are read back up to twice that) in a few hundred bytes: they must always fit.
  need(c.max_output_stanza_bytes >= c.max_stanza_bytes + 16 * 1024,
       "max_output_stanza_bytes must be >= max_stanza_bytes + 16384 (fan-out and MAM results wrap a stored message)");
  need(c.mam_max_page_bytes >= c.max_output_stanza_bytes, "mam_max_page_bytes must be >= max_output_stanza_bytes");
  need(c.batch_max_bytes >= c.max_stanza_bytes, "batch_max_bytes must be >= max_stanza_bytes");
  bool level_ok = false;
  for (const char* w : kLogLevelWords) level_ok |= c.log_level == w;
  need(level_ok, "log_level must be one of " + std::string(kLogLevels) + " (got '" + c.log_level + "')");
  if (auto ep = parse_http_address(c.http_address); !ep)
    need(false, "http_address " + ep.error() + " (got '" + c.http_address + "')");
}

bool url_has_password(std::string_view url) {
  auto lower = [](std::string_view v) {
    std::string out(v);
    for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return out;
  };
  const std::string u = lower(url);
  if (u.starts_with("postgresql://") || u.starts_with("postgres://")) {
    const std::size_t start = u.find("://") + 3;
    const std::size_t end = u.find_first_of("/?", start);
    const std::string authority = u.substr(start, end == std::string::npos ? std::string::npos : end - start);
    const std::size_t at = authority.rfind('@');
    if (at != std::string::npos && authority.substr(0, at).find(':') != std::string::npos) return true;
    const std::size_t q = u.find('?');
    if (q != std::string::npos) {
      const std::string query = "&" + u.substr(q + 1);
      if (query.find("&password=") != std::string::npos) return true;
    }
    return false;
  }
  // key=value form: a "password" keyword at the start or after whitespace.
  for (std::size_t p = u.find("password"); p != std::string::npos; p = u.find("password", p + 1)) {
    const bool starts = p == 0 || std::isspace(static_cast<unsigned char>(u[p - 1]));
    std::size_t e = p + 8;
    while (e < u.size() && std::isspace(static_cast<unsigned char>(u[e]))) ++e;
    if (starts && e < u.size() && u[e] == '=') return true;
  }
  return false;
}

}  // namespace multiend::server
