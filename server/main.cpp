// multiend-component: the Multiend archive component (XEP-0114).
//   multiend-component [run] [--config FILE] [flags]    serve (default)
//   multiend-component migrate [--config FILE] [flags]  apply database migrations and exit
//   multiend-component check [--config FILE] [flags]    validate the configuration and exit
// Options go before or after the subcommand.
// Secrets come from the environment: MULTIEND_COMPONENT_SECRET (or _FILE), MULTIEND_DATABASE_URL.
#include <CLI/CLI.hpp>
#include <iostream>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "multiend/version.hpp"
#include "server/component.hpp"
#include "server/config.hpp"

using namespace multiend::server;

namespace {

// What the command line sets; empty / 0 means "not given".
struct Flags {
  std::string config_file;
  std::string xmpp_host, component_domain, user_domain, database_url, http_address, log_level;
  int component_port = 0;
};

// The same options on the app and on every subcommand, so that both
// `multiend-component --config F migrate` and `multiend-component migrate --config F` work and
// each subcommand's --help lists them. (CLI11's fallthrough() would accept them too, but a
// subcommand's --help would then not show them.)
void add_options(CLI::App& app, Flags& f) {
  app.add_option("-c,--config", f.config_file, "JSON configuration file (see deploy/multiend-component.example.json)");
  app.add_option("--xmpp-host", f.xmpp_host, "XMPP server host for the component connection");
  app.add_option("--component-port", f.component_port, "XMPP server component port")->check(CLI::Range(1, 65535));
  app.add_option("--component-domain", f.component_domain, "our component name, e.g. archive.example.org");
  app.add_option("--user-domain", f.user_domain, "the users' domain, e.g. example.org");
  app.add_option("--database-url", f.database_url, "libpq connection URI (MULTIEND_DATABASE_URL overrides)");
  app.add_option("--http-address", f.http_address, "IP:PORT for /healthz, /readyz, /metrics");
  app.add_option("--log-level", f.log_level, std::string("one of ") + kLogLevels);
}

Config load(const Flags& f) {
  Config config;
  if (!f.config_file.empty()) load_file(config, f.config_file);
  if (!f.xmpp_host.empty()) config.xmpp_host = f.xmpp_host;
  if (f.component_port) config.component_port = static_cast<std::uint16_t>(f.component_port);  // checked above
  if (!f.component_domain.empty()) config.component_domain = f.component_domain;
  if (!f.user_domain.empty()) config.user_domain = f.user_domain;
  if (!f.database_url.empty()) config.database_url = f.database_url;
  if (!f.http_address.empty()) config.http_address = f.http_address;
  if (!f.log_level.empty()) config.log_level = f.log_level;
  apply_environment(config);
  return config;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Multiend archive component: OMEMO 2 device lists, bundles, archive, fan-out and MAM for an XMPP server"};
  app.set_version_flag("--version", std::string("multiend-component ") + multiend::kVersion + " (" + multiend::kRevision + ")");
  Flags flags;
  add_options(app, flags);
  auto* run_cmd = app.add_subcommand("run", "serve (the default)");
  auto* migrate_cmd = app.add_subcommand("migrate", "apply database migrations and exit (needs no secret)");
  auto* check_cmd = app.add_subcommand("check", "validate the configuration (file, flags, environment) and exit");
  for (auto* sub : {run_cmd, migrate_cmd, check_cmd}) add_options(*sub, flags);
  app.require_subcommand(0, 1);
  app.footer("Options may be given before or after the subcommand. Secrets come from the environment:\n"
             "MULTIEND_COMPONENT_SECRET or MULTIEND_COMPONENT_SECRET_FILE, MULTIEND_DATABASE_URL.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForVersion& e) {
    std::cout << e.what() << '\n';
    return 0;
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  Config config;
  try {
    if (url_has_password(flags.database_url))
      throw std::invalid_argument(
          "--database-url holds a password, which every local user can read in the process list: give it in "
          "MULTIEND_DATABASE_URL, a ~/.pgpass or PGPASSFILE, or PGPASSWORD instead");
    config = load(flags);
    validate(config, migrate_cmd->parsed() ? SecretRequired::no : SecretRequired::yes);
  } catch (const std::exception& e) {
    std::cerr << "multiend-component: " << e.what() << "\n";
    return 2;
  }
  if (check_cmd->parsed()) {
    std::cout << "multiend-component: configuration OK\n";
    return 0;
  }
  auto logger = spdlog::stderr_color_mt("multiend");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  try {
    if (migrate_cmd->parsed()) return run_migrations(config);
    return run_component(config);
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
}
