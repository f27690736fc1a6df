// multiend: the headless Multiend client. JSON lines on stdout, one readable error line on
// stderr, exit codes per docs/cli.md.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <iostream>

#include "multiend/version.hpp"
#include "client/app/errors.hpp"
#include "client/cli/commands.hpp"
#include "client/store/sqlite.hpp"
#include "client/xmpp/c2s_connection.hpp"

using namespace multiend::client;

namespace {

int fail(int code, const std::string& what) {
  std::string line = what;
  for (char& ch : line)
    if (ch == '\n' || ch == '\r') ch = ' ';
  std::cerr << "multiend: " << line << '\n';
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"multiend: end-to-end encrypted messages on every device (OMEMO 2 over XMPP)"};
  app.set_version_flag("--version", std::string("multiend ") + multiend::kVersion + " (" + multiend::kRevision + ")");
  app.require_subcommand(1);
  cli::Common common;
  std::string log_level = "warn";
  auto add_common = [&](CLI::App* sub) {
    sub->add_option("--state", common.state, "this device's state file")->required();
    sub->add_option("--timeout", common.timeout_seconds, "seconds to wait for each answer")
        ->check(CLI::Range(1, 3600));
    sub->add_option("--log-level", log_level, "trace, debug, info, warn, error or off (stderr)")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  };
  auto add_password = [&](CLI::App* sub) {
    sub->add_option("--password-file", common.password_file, "file holding the account password (overrides init's)");
  };

  cli::InitArgs init;
  auto* init_cmd = app.add_subcommand("init", "create this device, register it with the component");
  add_common(init_cmd);
  init_cmd->add_option("--jid", init.jid, "the account, e.g. alice@example.org")->required();
  init_cmd->add_option("--password-file", init.password_file, "file holding the account password")
      ->required()
      ->check(CLI::ExistingFile);
  init_cmd->add_option("--server", init.server, "host:port of the XMPP server (default: the JID's domain:5222)");
  init_cmd->add_option("--component", init.component, "the archive component (default: archive.<domain>)");
  init_cmd->add_option("--ca-file", init.ca_file, "PEM CA certificates to verify the server with")
      ->check(CLI::ExistingFile);
  init_cmd->add_flag("--insecure", init.insecure, "plain TCP without TLS (test servers only)");
  init_cmd->add_option("--label", init.label, "a name for this device, e.g. phone");
  init_cmd->add_flag("--no-pep", init.no_pep,
                     "archive only: publish nothing in the account's PEP (plain OMEMO apps cannot reach this device)");

  cli::SendArgs send;
  auto* send_cmd = app.add_subcommand("send", "encrypt and send a message (body from stdin without --body)");
  add_common(send_cmd);
  add_password(send_cmd);
  send_cmd->add_option("--to", send.to, "a recipient's JID (repeat for several)")->required();
  send_cmd->add_option("--body", send.body, "the text (visible to other local users in the process list)");
  send_cmd->add_option("--body-file", send.body_file, "read the text from this file (private, like stdin)");
  send_cmd->add_flag("--lines", send.lines, "one message per stdin line, over one connection");
  send_cmd->add_option("--window", send.window, "--lines: messages awaiting receipts at once (1-400)")
      ->check(CLI::Range(1, 400));

  std::size_t run_window = 64;
  auto* run_cmd = app.add_subcommand("run", "read JSON commands on stdin ({\"send\":{\"to\":[…],\"body\":…}}), print JSON lines, show messages as they arrive");
  add_common(run_cmd);
  add_password(run_cmd);
  run_cmd->add_option("--window", run_window, "messages awaiting receipts at once (1-400)")->check(CLI::Range(1, 400));

  auto* sync_cmd = app.add_subcommand("sync", "catch up from the archive and exit");
  add_common(sync_cmd);
  add_password(sync_cmd);

  std::optional<double> seconds;
  std::optional<std::size_t> count;
  auto* listen_cmd = app.add_subcommand("listen", "catch up, then print messages as they arrive");
  add_common(listen_cmd);
  add_password(listen_cmd);
  listen_cmd->add_option("--seconds", seconds, "stop after this long")->check(CLI::PositiveNumber);
  listen_cmd->add_option("--count", count, "stop after this many messages")->check(CLI::PositiveNumber);

  std::optional<std::string> with;
  std::optional<std::size_t> limit;
  auto* history_cmd = app.add_subcommand("history", "print the local history (no network)");
  add_common(history_cmd);
  history_cmd->add_option("--with", with, "only messages from or to this JID");
  history_cmd->add_option("--limit", limit, "only the last N")->check(CLI::PositiveNumber);

  std::optional<std::string> of;
  auto* devices_cmd = app.add_subcommand("devices", "list an account's devices with fingerprints and trust");
  add_common(devices_cmd);
  add_password(devices_cmd);
  devices_cmd->add_option("--of", of, "whose devices (default: our own account)");

  auto* fp_cmd = app.add_subcommand("fingerprint", "print this device's fingerprint (no network)");
  add_common(fp_cmd);

  cli::TrustArgs trust;
  auto* trust_cmd = app.add_subcommand("trust", "mark a device verified (after comparing fingerprints)");
  auto* distrust_cmd = app.add_subcommand("distrust", "never encrypt for a device again");
  auto* reset_cmd = app.add_subcommand("reset-session", "replace the session with a device by a fresh key exchange");
  for (auto* sub : {trust_cmd, distrust_cmd, reset_cmd}) {
    add_common(sub);
    add_password(sub);
    sub->add_option("JID", trust.jid, "the device's account")->required();
    sub->add_option("DEVICE", trust.device, "the device id")->required()->check(CLI::Range(1u, 0x7FFFFFFFu));
  }
  trust_cmd->add_option("--fingerprint", trust.fingerprint, "the fingerprint compared out of band (hex, spaces allowed)");
  trust_cmd->add_flag("--blindly", trust.blindly, "trust without comparing a fingerprint");

  std::uint32_t remove_id = 0;
  auto* remove_cmd = app.add_subcommand("remove-device", "remove a device from this account's device list");
  add_common(remove_cmd);
  add_password(remove_cmd);
  remove_cmd->add_option("DEVICE", remove_id, "the device id")->required()->check(CLI::Range(1u, 0x7FFFFFFFu));

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    std::cout << e.what() << '\n';
    return 0;
  } catch (const CLI::ParseError& e) {
    return fail(1, e.what() + std::string(" (see --help)"));
  }

  auto logger = spdlog::stderr_color_mt("multiend");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(log_level));

  try {
    if (*init_cmd) cli::cmd_init(common, init);
    else if (*send_cmd) cli::cmd_send(common, send);
    else if (*run_cmd) cli::cmd_run(common, run_window);
    else if (*sync_cmd) cli::cmd_sync(common);
    else if (*listen_cmd) cli::cmd_listen(common, seconds, count);
    else if (*history_cmd) cli::cmd_history(common, with, limit);
    else if (*devices_cmd) cli::cmd_devices(common, of);
    else if (*fp_cmd) cli::cmd_fingerprint(common);
    else if (*trust_cmd) cli::cmd_trust(common, trust, true);
    else if (*distrust_cmd) cli::cmd_trust(common, trust, false);
    else if (*reset_cmd) cli::cmd_reset_session(common, trust.jid, trust.device);
    else if (*remove_cmd) cli::cmd_remove_device(common, remove_id);
    return 0;
  } catch (const ClientError& e) {
    return fail(static_cast<int>(e.kind()), e.what());
  } catch (const C2sError& e) {
    return fail(static_cast<int>(ErrorKind::connection), e.what());
  } catch (const sqlite::Error& e) {
    return fail(static_cast<int>(ErrorKind::state), e.what());
  } catch (const std::exception& e) {
    return fail(5, std::string("internal error: ") + e.what());
  }
}
