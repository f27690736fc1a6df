// The `multiend` commands. Each returns normally on success and throws ClientError (or a
// connection / state error) otherwise; main() turns that into one line and an exit code.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace multiend::client::cli {

struct Common {
  std::string state;
  std::optional<std::string> password_file;  // overrides the one saved by init
  int timeout_seconds = 20;
};

struct InitArgs {
  std::string jid, password_file, server, component, label;
  std::optional<std::string> ca_file;
  bool insecure = false;
  bool no_pep = false;
};

void cmd_init(const Common& c, const InitArgs& a);
struct SendArgs {
  std::vector<std::string> to;
  std::optional<std::string> body;       // visible in /proc/PID/cmdline: stdin or body_file are private
  std::optional<std::string> body_file;
  bool lines = false;  // one message per stdin line, one connection, a window of receipts
  std::size_t window = 64;
};
void cmd_send(const Common& c, const SendArgs& a);
// send --lines (bulk_commands.cpp)
void cmd_send_lines(const Common& c, const SendArgs& a);
// run: JSON commands on stdin, JSON lines out, one connection (bulk_commands.cpp)
void cmd_run(const Common& c, std::size_t window);
void cmd_sync(const Common& c);
void cmd_listen(const Common& c, std::optional<double> seconds, std::optional<std::size_t> count);
void cmd_history(const Common& c, const std::optional<std::string>& with, std::optional<std::size_t> limit);
void cmd_devices(const Common& c, const std::optional<std::string>& of);
void cmd_fingerprint(const Common& c);
struct TrustArgs {
  std::string jid;
  std::uint32_t device = 0;
  std::optional<std::string> fingerprint;  // trust: required unless blindly
  bool blindly = false;
};
void cmd_trust(const Common& c, const TrustArgs& a, bool trust);
void cmd_reset_session(const Common& c, const std::string& jid, std::uint32_t device);
void cmd_remove_device(const Common& c, std::uint32_t device);

}  // namespace multiend::client::cli
