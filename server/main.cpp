// multiend-component: the Multiend archive component (XEP-0114).
//   multiend-component [run] --config FILE [flags]    serve (default)
//   multiend-component migrate --config FILE           apply database migrations and exit
// Secrets come from the environment: MULTIEND_COMPONENT_SECRET (or _FILE), MULTIEND_DATABASE_URL.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "server/component.hpp"
#include "server/config.hpp"

using namespace multiend::server;

int main(int argc, char** argv) {
  CLI::App app{"Multiend archive component: OMEMO 2 device lists, bundles, archive, fan-out and MAM for an XMPP server"};
  std::string config_file;
  Config overrides;
  std::string xmpp_host, component_domain, user_domain, database_url, http_address, log_level;
  int component_port = 0;
  app.add_option("-c,--config", config_file, "JSON configuration file (see deploy/multiend-component.example.json)");
  app.add_option("--xmpp-host", xmpp_host, "XMPP server host for the component connection");
  app.add_option("--component-port", component_port, "XMPP server component port")->check(CLI::Range(1, 65535));
  app.add_option("--component-domain", component_domain, "our component name, e.g. archive.example.org");
  app.add_option("--user-domain", user_domain, "the users' domain, e.g. example.org");
  app.add_option("--database-url", database_url, "libpq connection URI (MULTIEND_DATABASE_URL overrides)");
  app.add_option("--http-address", http_address, "HOST:PORT for /healthz, /readyz, /metrics");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  auto* run_cmd = app.add_subcommand("run", "serve (the default)");
  auto* migrate_cmd = app.add_subcommand("migrate", "apply database migrations and exit");
  app.require_subcommand(0, 1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  (void)run_cmd;

  Config config;
  try {
    if (!config_file.empty()) load_file(config, config_file);
    if (!xmpp_host.empty()) config.xmpp_host = xmpp_host;
    if (component_port) config.component_port = static_cast<std::uint16_t>(component_port);
    if (!component_domain.empty()) config.component_domain = component_domain;
    if (!user_domain.empty()) config.user_domain = user_domain;
    if (!database_url.empty()) config.database_url = database_url;
    if (!http_address.empty()) config.http_address = http_address;
    if (!log_level.empty()) config.log_level = log_level;
    apply_environment(config);
    if (!migrate_cmd->parsed()) validate(config);
  } catch (const std::exception& e) {
    std::cerr << "multiend-component: " << e.what() << "\n";
    return 2;
  }
  auto logger = spdlog::stderr_color_mt("multiend");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  setenv("PGCONNECT_TIMEOUT", std::to_string(config.connect_timeout_seconds).c_str(), 0);
  try {
    if (migrate_cmd->parsed()) return run_migrations(config);
    return run_component(config);
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
}
