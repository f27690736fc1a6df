// Component configuration: JSON keys, unknown keys and secrets refused in the file, the
// environment wins for secrets, integer ranges (never wrapped), log levels, the HTTP address,
// validation messages.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "server/config.hpp"

using namespace multiend::server;

namespace {

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("keys are applied, unknown keys and inline secrets refused") {
  Config c;
  apply_json(c, nlohmann::json{{"component_port", 5999}, {"user_domain", "example.org"}, {"mam_max", 100}});
  CHECK(c.component_port == 5999);
  CHECK(c.user_domain == "example.org");
  CHECK(c.mam_max == 100);
  CHECK(message_of([&] { apply_json(c, nlohmann::json{{"componet_port", 1}}); }).find("unknown key componet_port") !=
        std::string::npos);
  CHECK(message_of([&] { apply_json(c, nlohmann::json{{"component_secret", "x"}}); }).find("MULTIEND_COMPONENT_SECRET") !=
        std::string::npos);
  CHECK(message_of([&] { apply_json(c, nlohmann::json{{"component_port", "five"}}); }) ==
        "config: component_port must be an integer in 1..65535 (got a string)");
  CHECK(message_of([&] { apply_json(c, nlohmann::json{{"xmpp_host", 5}}); }) == "config: xmpp_host must be a string");
  CHECK(message_of([&] { apply_json(c, nlohmann::json::array()); }) != "");
}

TEST_CASE("secrets come from the environment or a secret file") {
  Config c;
  ::setenv("MULTIEND_COMPONENT_SECRET", "s3cret", 1);
  ::setenv("MULTIEND_DATABASE_URL", "postgresql://db/x", 1);
  apply_environment(c);
  CHECK(c.component_secret == "s3cret");
  CHECK(c.database_url == "postgresql://db/x");
  ::unsetenv("MULTIEND_COMPONENT_SECRET");
  ::unsetenv("MULTIEND_DATABASE_URL");

  const std::string path = "/tmp/multiend_config_test_secret";
  std::ofstream(path) << "from-file\n";
  ::chmod(path.c_str(), 0600);
  Config d;
  apply_json(d, nlohmann::json{{"component_secret_file", path}});
  CHECK(d.component_secret == "from-file");
  std::remove(path.c_str());
}

TEST_CASE("a file holding a secret must not be accessible to other users") {
  const std::string secret = "/tmp/multiend_config_test_secret_open";
  std::ofstream(secret) << "from-file\n";
  ::chmod(secret.c_str(), 0644);
  Config c;
  CHECK(message_of([&] { apply_json(c, nlohmann::json{{"component_secret_file", secret}}); }) ==
        "secret file " + secret + " is accessible to other users (mode 0644): chmod 600 it");
  CHECK(c.component_secret.empty());
  ::chmod(secret.c_str(), 0640);  // group-readable is refused as well
  CHECK(message_of([&] { apply_json(c, nlohmann::json{{"component_secret_file", secret}}); }).find("mode 0640") !=
        std::string::npos);
  std::remove(secret.c_str());

  // A config file is checked only when its database_url holds a password.
  const std::string cfg = "/tmp/multiend_config_test_open.json";
  std::ofstream(cfg) << R"({"database_url": "postgresql://u:pw@db/x"})";
  ::chmod(cfg.c_str(), 0644);
  Config d;
  CHECK(message_of([&] { load_file(d, cfg); }).find("is accessible to other users (mode 0644)") != std::string::npos);
  ::chmod(cfg.c_str(), 0600);
  load_file(d, cfg);
  CHECK(d.database_url == "postgresql://u:pw@db/x");
  std::ofstream(cfg) << R"({"database_url": "postgresql://u@db/x"})";
  ::chmod(cfg.c_str(), 0644);
  Config e;
  load_file(e, cfg);  // no password in it: readable is fine
  CHECK(e.database_url == "postgresql://u@db/x");
  std::remove(cfg.c_str());
}

TEST_CASE("validation says what is wrong") {
  Config c;
  CHECK(message_of([&] { validate(c); }).find("no component secret") != std::string::npos);
  c.component_secret = "x";
  CHECK(message_of([&] { validate(c); }) == "");
  c.mam_default_max = 500;
  CHECK(message_of([&] { validate(c); }).find("mam_default_max") != std::string::npos);
  c.mam_default_max = 50;
  c.http_address = "9100";
  CHECK(message_of([&] { validate(c); }).find("http_address") != std::string::npos);
}

TEST_CASE("a config file that is not JSON is a readable error") {
  const std::string path = "/tmp/multiend_config_test.json";
  std::ofstream(path) << "{ not json";
  Config c;
  CHECK(message_of([&] { load_file(c, path); }).find("is not valid JSON") != std::string::npos);
  CHECK(message_of([&] { load_file(c, "/nonexistent/x.json"); }).find("cannot read config file") != std::string::npos);
  std::remove(path.c_str());
}

TEST_CASE("integer keys out of range or not integers are refused, never wrapped") {
  struct Bad {
    const char* key;
    nlohmann::json value;
    const char* message;
  };
  const Bad cases[] = {
      {"component_port", 70000, "config: component_port must be an integer in 1..65535 (got 70000)"},
      {"component_port", 0, "config: component_port must be an integer in 1..65535 (got 0)"},
      {"component_port", -1, "config: component_port must be an integer in 1..65535 (got -1)"},
      {"component_port", 5347.5, "config: component_port must be an integer in 1..65535 (got 5347.5)"},
      {"component_port", true, "config: component_port must be an integer in 1..65535 (got a boolean)"},
      {"max_inflight", 0, "config: max_inflight must be an integer in 1..1000000 (got 0)"},
      {"max_inflight", -5, "config: max_inflight must be an integer in 1..1000000 (got -5)"},
      {"max_inflight", 18446744073709551615ULL,
       "config: max_inflight must be an integer in 1..1000000 (got 18446744073709551615)"},
      {"prekey_low_threshold", 0, "config: prekey_low_threshold must be an integer in 1..1000 (got 0)"},
      {"claim_retry_seconds", 0, "config: claim_retry_seconds must be an integer in 1..86400 (got 0)"},
      {"claim_retry_seconds", 4294967296LL, "config: claim_retry_seconds must be an integer in 1..86400 (got 4294967296)"},
      {"shutdown_grace_seconds", -1, "config: shutdown_grace_seconds must be an integer in 0..3600 (got -1)"},
      {"reconnect_max_backoff_seconds", 0,
       "config: reconnect_max_backoff_seconds must be an integer in 1..3600 (got 0)"},
      {"reconnect_max_backoff_seconds", -3,
       "config: reconnect_max_backoff_seconds must be an integer in 1..3600 (got -3)"},
      {"db_pool_size", 65, "config: db_pool_size must be an integer in 1..64 (got 65)"},
      {"max_stanza_bytes", 1024, "config: max_stanza_bytes must be an integer in 4096..16777216 (got 1024)"},
      {"max_recipients", 0, "config: max_recipients must be an integer in 1..10000 (got 0)"},
      {"batch_max", 0, "config: batch_max must be an integer in 1..10000 (got 0)"},
      {"mam_default_max", 0, "config: mam_default_max must be an integer in 1..1000 (got 0)"},
      {"mam_max", 1001, "config: mam_max must be an integer in 1..1000 (got 1001)"},
      {"mam_max", 4294967297LL, "config: mam_max must be an integer in 1..1000 (got 4294967297)"},
      {"retention_seconds", 0, "config: retention_seconds must be an integer in 1..3153600000 (got 0)"},
      {"retention_interval_seconds", 0, "config: retention_interval_seconds must be an integer in 1..31536000 (got 0)"},
      {"device_inactivity_seconds", -1, "config: device_inactivity_seconds must be an integer in 1..3153600000 (got -1)"},
      {"prune_interval_seconds", 31536001, "config: prune_interval_seconds must be an integer in 1..31536000 (got 31536001)"},
      {"connect_timeout_seconds", 0, "config: connect_timeout_seconds must be an integer in 1..3600 (got 0)"},
      {"request_timeout_seconds", 3601, "config: request_timeout_seconds must be an integer in 1..3600 (got 3601)"},
  };
  for (const auto& b : cases) {
    CAPTURE(b.key);
    Config c;
    const Config before;
    CHECK(message_of([&] { apply_json(c, nlohmann::json{{b.key, b.value}}); }) == b.message);
    CHECK(c.component_port == before.component_port);  // nothing half-applied into a narrower field
  }
  // The edges of a range are accepted.
  Config c;
  apply_json(c, nlohmann::json{{"component_port", 65535}, {"shutdown_grace_seconds", 0}, {"max_inflight", 1}});
  CHECK(c.component_port == 65535);
  CHECK(c.shutdown_grace_seconds == 0);
  CHECK(c.max_inflight == 1);
}

TEST_CASE("validate checks the same ranges on values set by flags or code") {
  Config c;
  c.component_secret = "x";
  CHECK(message_of([&] { validate(c); }) == "");
  auto with = [&](auto&& set) {
    Config d = c;
    set(d);
    return message_of([&] { validate(d); });
  };
  CHECK(with([](Config& d) { d.component_port = 0; }) == "config: component_port must be an integer in 1..65535 (got 0)");
  CHECK(with([](Config& d) { d.reconnect_max_backoff_seconds = 0; }) ==
        "config: reconnect_max_backoff_seconds must be an integer in 1..3600 (got 0)");
  CHECK(with([](Config& d) { d.reconnect_max_backoff_seconds = -1; }).find("reconnect_max_backoff_seconds") !=
        std::string::npos);
  CHECK(with([](Config& d) { d.max_inflight = 0; }) == "config: max_inflight must be an integer in 1..1000000 (got 0)");
  CHECK(with([](Config& d) { d.max_inflight = static_cast<std::size_t>(-1); }) ==
        "config: max_inflight must be an integer in 1..1000000 (got 18446744073709551615)");
  CHECK(with([](Config& d) { d.prekey_low_threshold = 0; }).find("prekey_low_threshold") != std::string::npos);
  CHECK(with([](Config& d) { d.claim_retry_seconds = -1; }).find("claim_retry_seconds") != std::string::npos);
  CHECK(with([](Config& d) { d.shutdown_grace_seconds = -1; }).find("shutdown_grace_seconds") != std::string::npos);
  CHECK(with([](Config& d) { d.xmpp_host = ""; }) == "config: xmpp_host is required");
  CHECK(with([](Config& d) { d.component_secret = ""; }).find("no component secret") != std::string::npos);
  // migrate needs no secret, but everything else still has to be right.
  Config m;
  CHECK(message_of([&] { validate(m, SecretRequired::no); }) == "");
  m.log_level = "loud";
  CHECK(message_of([&] { validate(m, SecretRequired::no); }).find("log_level") != std::string::npos);
}

TEST_CASE("log_level must be one of the documented words") {
  Config c;
  c.component_secret = "x";
  for (const char* ok : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    c.log_level = ok;
    CHECK(message_of([&] { validate(c); }) == "");
  }
  for (const char* bad : {"verbose", "INFO", "warning", "err", ""}) {
    c.log_level = bad;
    CHECK(message_of([&] { validate(c); }) ==
          std::string("config: log_level must be one of trace, debug, info, warn, error, critical, off (got '") + bad +
              "')");
  }
}

TEST_CASE("http_address must be IP:PORT with a valid port") {
  Config c;
  c.component_secret = "x";
  for (const char* ok : {"127.0.0.1:9100", "0.0.0.0:1", "[::1]:9100", "[::]:65535"}) {
    CAPTURE(ok);
    c.http_address = ok;
    CHECK(message_of([&] { validate(c); }) == "");
  }
  struct Bad {
    const char* address;
    const char* why;
  };
  const Bad cases[] = {
      {"9100", "must be IP:PORT"},
      {"127.0.0.1", "must be IP:PORT"},
      {"127.0.0.1:", "port must be a number in 1..65535"},
      {"127.0.0.1:0", "port must be a number in 1..65535"},
      {"127.0.0.1:65536", "port must be a number in 1..65535"},
      {"127.0.0.1:99999999999", "port must be a number in 1..65535"},
      {"127.0.0.1:91a", "port must be a number in 1..65535"},
      {"127.0.0.1:-1", "port must be a number in 1..65535"},
      {"localhost:9100", "host must be an IP address"},
      {":9100", "host must be an IP address"},
      {"300.1.1.1:9100", "host must be an IP address"},
      {"::1:9100", "an IPv6 address must be in brackets"},
      {"[127.0.0.1]:9100", "only IPv6 addresses go in brackets"},
  };
  for (const auto& b : cases) {
    CAPTURE(b.address);
    c.http_address = b.address;
    const std::string m = message_of([&] { validate(c); });
    CHECK(m.rfind("config: http_address ", 0) == 0);
    CHECK(m.find(b.why) != std::string::npos);
    CHECK(m.find(std::string("(got '") + b.address + "')") != std::string::npos);
    CHECK(m.find('\n') == std::string::npos);
  }
}

TEST_CASE("a password in a connection string is recognised (--database-url refuses one)") {
  using multiend::server::url_has_password;
  CHECK(url_has_password("postgresql://multiend:s3cret@db:5432/multiend"));
  CHECK(url_has_password("postgres://u:p@host/db?sslmode=verify-full"));
  CHECK(url_has_password("postgresql://u@host/db?sslmode=require&password=x"));
  CHECK(url_has_password("postgresql://u@host/db?password=x"));
  CHECK(url_has_password("host=db user=multiend password=s3cret dbname=multiend"));
  CHECK(url_has_password("password = x host=db"));
  CHECK_FALSE(url_has_password("postgresql://multiend@127.0.0.1:5432/multiend"));
  CHECK_FALSE(url_has_password("postgresql:///multiend"));
  CHECK_FALSE(url_has_password("postgresql://u@host/db?passfile=/etc/pgpass"));
  CHECK_FALSE(url_has_password("host=db user=multiend passfile=/run/pgpass dbname=multiend"));
  CHECK_FALSE(url_has_password(""));
}
