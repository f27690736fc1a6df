// The component's configuration: a JSON file, then command-line flags, then environment
// variables for secrets (MULTIEND_COMPONENT_SECRET, MULTIEND_DATABASE_URL). Knows nothing of
// sockets or the database; validates ranges so the rest of the code can trust the values.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace multiend::server {

struct Config {
  // XMPP server and our names on it
  std::string xmpp_host = "127.0.0.1";
  std::uint16_t component_port = 5347;
  std::string component_domain = "archive.localhost";
  std::string user_domain = "localhost";
  std::string component_secret;  // from the environment or secret_file only; never logged
  // PostgreSQL
  std::string database_url = "postgresql:///multiend";
  int db_pool_size = 4;
  // HTTP health and metrics
  std::string http_address = "127.0.0.1:9100";
  std::string log_level = "info";
  // limits
  std::size_t max_stanza_bytes = 256 * 1024;
  std::size_t max_recipients = 100;
  std::size_t max_inflight = 2000;       // stanzas handled at once before we answer "wait"
  std::size_t max_devices_per_account = 64;  // bundles (devices) one account may publish
  std::size_t max_subscriptions_per_owner = 2000;       // device-list subscribers of one account
  std::size_t max_subscriptions_per_subscriber = 2000;  // subscriptions one account holds
  // Bytes queued for the XMPP server above which the component stops reading from it until
  // half of it is written (backpressure); at twice this the stream counts as stalled and is
  // dropped and reconnected.
  std::size_t output_buffer_bytes = 16 * 1024 * 1024;
  // Per account (bare JID of the sender) and overall, what one account can make the
  // component hold or do; refusals are wait/resource-constraint naming the limit.
  std::size_t max_inflight_per_account = 256;                       // stanzas being handled
  std::size_t max_inflight_bytes = 256 * 1024 * 1024;               // their memory, everyone
  std::size_t max_inflight_bytes_per_account = 32 * 1024 * 1024;    // their memory, one account
  std::size_t message_rate_per_account = 100;    // messages per second, sustained...
  std::size_t message_burst_per_account = 2000;  // ...after a burst of this many
  std::size_t max_mam_queries_per_account = 4;   // MAM queries being answered at once
  std::size_t mam_max_page_bytes = 8 * 1024 * 1024;  // a page stops early (incomplete) past this
  // One-time prekeys one requester account may take from one target account per hour; past
  // it the requester gets a prekey it was already given (the last resort), not a fresh one.
  std::size_t prekey_claims_per_hour = 100;
  // Largest stanza the component writes (below Prosody's component_stanza_size_limit, 512 KiB);
  // an answer that would be larger is replaced by an error.
  std::size_t max_output_stanza_bytes = 480 * 1024;
  std::size_t max_missing_devices_listed = 1000;  // in one <missing-devices/> answer
  std::size_t max_http_connections = 64;          // /healthz, /readyz, /metrics at once
  std::size_t batch_max = 256;           // messages per group commit
  std::size_t batch_max_bytes = 16 * 1024 * 1024;  // and their bytes
  std::uint32_t mam_default_max = 50;
  std::uint32_t mam_max = 250;
  std::int64_t prekey_low_threshold = 25;
  std::int64_t claim_retry_seconds = 60;
  // background work
  std::int64_t retention_seconds = 30LL * 24 * 3600;
  std::int64_t retention_interval_seconds = 3600;
  std::int64_t device_inactivity_seconds = 90LL * 24 * 3600;
  std::int64_t prune_interval_seconds = 24 * 3600;
  // timeouts
  std::int64_t connect_timeout_seconds = 10;
  std::int64_t request_timeout_seconds = 15;
  std::int64_t reconnect_max_backoff_seconds = 30;
  std::int64_t shutdown_grace_seconds = 10;
};

// Applies the keys of a JSON object (unknown keys are an error: a typo must not pass silently).
// Integer keys must be JSON integers within their documented range: a value is never converted
// or wrapped into its field (70000 would otherwise become port 4464).
void apply_json(Config& c, const nlohmann::json& j);
void load_file(Config& c, const std::string& path);
// MULTIEND_COMPONENT_SECRET, MULTIEND_COMPONENT_SECRET_FILE, MULTIEND_DATABASE_URL.
void apply_environment(Config& c);
// Whether a libpq connection string carries a password (URI user:password@, a password=
// parameter or key=value). On the command line it would be readable by every local user
// (/proc/PID/cmdline), so --database-url refuses one.
bool url_has_password(std::string_view url);
// Whether validate() insists on the component secret: `migrate` only talks to the database.
enum class SecretRequired { yes, no };
// Checks every range and format; throws std::invalid_argument with a one-line message naming
// the key, what is allowed and (for numbers) what was given.
void validate(const Config& c, SecretRequired secret = SecretRequired::yes);
// The accepted log_level words, for messages and --help.
inline constexpr const char* kLogLevels = "trace, debug, info, warn, error, critical, off";

}  // namespace multiend::server
