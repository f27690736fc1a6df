#include "server/config.hpp"

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace multiend::server {
namespace {

template <class T>
void take(const nlohmann::json& j, const char* key, T& out) {
  if (!j.contains(key)) return;
  try {
    out = j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw std::invalid_argument(std::string("config: bad value for ") + key);
  }
}

std::string read_secret_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::invalid_argument("cannot read secret file " + path);
  std::string s;
  std::getline(f, s);
  return s;
}

}  // namespace

void apply_json(Config& c, const nlohmann::json& j) {
  if (!j.is_object()) throw std::invalid_argument("config: top level must be an object");
  static const char* known[] = {"xmpp_host", "component_port", "component_domain", "user_domain",
                                "component_secret_file", "database_url", "db_pool_size", "http_address",
                                "log_level", "max_stanza_bytes", "max_recipients", "max_inflight", "batch_max",
                                "mam_default_max", "mam_max", "prekey_low_threshold", "claim_retry_seconds",
                                "retention_seconds", "retention_interval_seconds", "device_inactivity_seconds",
                                "prune_interval_seconds", "connect_timeout_seconds", "request_timeout_seconds",
                                "reconnect_max_backoff_seconds", "shutdown_grace_seconds"};
  for (const auto& [k, v] : j.items()) {
    bool ok = false;
    for (const char* n : known) ok |= k == n;
    if (k == "component_secret")
      throw std::invalid_argument("config: put the secret in MULTIEND_COMPONENT_SECRET or component_secret_file");
    if (!ok) throw std::invalid_argument("config: unknown key " + k);
  }
  take(j, "xmpp_host", c.xmpp_host);
  take(j, "component_port", c.component_port);
  take(j, "component_domain", c.component_domain);
  take(j, "user_domain", c.user_domain);
  if (j.contains("component_secret_file")) c.component_secret = read_secret_file(j.at("component_secret_file").get<std::string>());
  take(j, "database_url", c.database_url);
  take(j, "db_pool_size", c.db_pool_size);
  take(j, "http_address", c.http_address);
  take(j, "log_level", c.log_level);
  take(j, "max_stanza_bytes", c.max_stanza_bytes);
  take(j, "max_recipients", c.max_recipients);
  take(j, "max_inflight", c.max_inflight);
  take(j, "batch_max", c.batch_max);
  take(j, "mam_default_max", c.mam_default_max);
  take(j, "mam_max", c.mam_max);
  take(j, "prekey_low_threshold", c.prekey_low_threshold);
  take(j, "claim_retry_seconds", c.claim_retry_seconds);
  take(j, "retention_seconds", c.retention_seconds);
  take(j, "retention_interval_seconds", c.retention_interval_seconds);
  take(j, "device_inactivity_seconds", c.device_inactivity_seconds);
  take(j, "prune_interval_seconds", c.prune_interval_seconds);
  take(j, "connect_timeout_seconds", c.connect_timeout_seconds);
  take(j, "request_timeout_seconds", c.request_timeout_seconds);
  take(j, "reconnect_max_backoff_seconds", c.reconnect_max_backoff_seconds);
  take(j, "shutdown_grace_seconds", c.shutdown_grace_seconds);
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
  apply_json(c, j);
}

void apply_environment(Config& c) {
  if (const char* s = std::getenv("MULTIEND_COMPONENT_SECRET_FILE")) c.component_secret = read_secret_file(s);
  if (const char* s = std::getenv("MULTIEND_COMPONENT_SECRET")) c.component_secret = s;
  if (const char* s = std::getenv("MULTIEND_DATABASE_URL")) c.database_url = s;
}

void validate(const Config& c) {
  auto need = [](bool ok, const char* what) {
    if (!ok) throw std::invalid_argument(std::string("config: ") + what);
  };
  need(!c.component_secret.empty(), "no component secret (set MULTIEND_COMPONENT_SECRET)");
  need(!c.component_domain.empty() && !c.user_domain.empty(), "component_domain and user_domain are required");
  need(c.component_port > 0, "component_port must be 1..65535");
  need(c.db_pool_size >= 1 && c.db_pool_size <= 64, "db_pool_size must be 1..64");
  need(c.max_stanza_bytes >= 4096 && c.max_stanza_bytes <= 16 * 1024 * 1024, "max_stanza_bytes must be 4 KiB..16 MiB");
  need(c.max_recipients >= 1 && c.max_recipients <= 10000, "max_recipients must be 1..10000");
  need(c.batch_max >= 1 && c.batch_max <= 10000, "batch_max must be 1..10000");
  need(c.mam_default_max >= 1 && c.mam_default_max <= c.mam_max && c.mam_max <= 1000, "mam_default_max <= mam_max <= 1000");
  need(c.retention_seconds >= 1 && c.retention_interval_seconds >= 1, "retention values must be positive");
  need(c.device_inactivity_seconds >= 1 && c.prune_interval_seconds >= 1, "prune values must be positive");
  need(c.request_timeout_seconds >= 1 && c.connect_timeout_seconds >= 1, "timeouts must be positive");
  need(c.http_address.find(':') != std::string::npos, "http_address must be HOST:PORT");
}

}  // namespace multiend::server
