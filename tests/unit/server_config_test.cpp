// Component configuration: JSON keys, unknown keys and secrets refused in the file, the
// environment wins for secrets, validation messages.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

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
  CHECK(message_of([&] { apply_json(c, nlohmann::json{{"component_port", "five"}}); }).find("bad value") !=
        std::string::npos);
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
  Config d;
  apply_json(d, nlohmann::json{{"component_secret_file", path}});
  CHECK(d.component_secret == "from-file");
  std::remove(path.c_str());
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
