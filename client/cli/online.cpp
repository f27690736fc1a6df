#include "client/cli/online.hpp"

#include <chrono>
#include <fstream>
#include <iostream>
#include <sys/stat.h>
#include <sodium.h>

#include "client/app/errors.hpp"
#include "client/app/online.hpp"

namespace multiend::client::cli {
namespace {

constexpr std::size_t kMaxPasswordFile = 4096;

crypto::SecretBytes read_password(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ClientError(ErrorKind::usage, "cannot read the password file '" + path + "'");
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
    std::cerr << "multiend: warning: the password file '" << path
              << "' is readable by other users; chmod 600 it\n";
  std::string text(kMaxPasswordFile + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxPasswordFile) throw ClientError(ErrorKind::usage, "the password file is too large");
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.empty()) throw ClientError(ErrorKind::usage, "the password file '" + path + "' is empty");
  auto secret = password_from(text);
  sodium_memzero(text.data(), text.size());
  return secret;
}

}  // namespace

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

ConnectionSettings settings_of(SqliteStore& store) {
  auto& st = store.settings();
  ConnectionSettings s;
  s.jid = st.get(setting::jid).value_or("");
  s.server = st.get(setting::server).value_or("");
  s.component = st.get(setting::component).value_or("");
  s.ca_file = st.get(setting::ca_file);
  s.insecure = st.get(setting::insecure) == "1";
  s.password_file = st.get(setting::password_file).value_or("");
  s.pep = st.get(setting::pep) != "0";
  if (s.jid.empty() || s.component.empty())
    throw ClientError(ErrorKind::state, "state file '" + store.path() + "' lacks connection settings (run 'multiend init')");
  return s;
}

void save_settings(SqliteStore& store, const ConnectionSettings& s) {
  auto tx = store.begin();
  auto& st = store.settings();
  st.set(setting::jid, s.jid);
  if (!s.server.empty()) st.set(setting::server, s.server);
  st.set(setting::component, s.component);
  if (s.ca_file) st.set(setting::ca_file, *s.ca_file);
  st.set(setting::insecure, s.insecure ? "1" : "0");
  st.set(setting::password_file, s.password_file);
  st.set(setting::pep, s.pep ? "1" : "0");
  tx.commit();
}

void run_online(Device& device, const ConnectionSettings& s, std::chrono::seconds timeout,
                const std::function<asio::awaitable<void>(Client&)>& body) {
  ConnectOptions options;
  options.jid = s.jid;
  options.password = read_password(s.password_file);
  if (!s.server.empty()) {
    const auto colon = s.server.rfind(':');
    options.host = s.server.substr(0, colon);
    if (colon != std::string::npos) {
      const std::string port = s.server.substr(colon + 1);
      int p = 0;
      try {
        p = std::stoi(port);
      } catch (...) {
        p = 0;
      }
      if (p <= 0 || p > 65535) throw ClientError(ErrorKind::usage, "bad server port in '" + s.server + "'");
      options.port = static_cast<std::uint16_t>(p);
    }
  }
  options.ca_file = s.ca_file;
  options.insecure_plaintext = s.insecure;
  options.timeout = timeout;
  // A stable resource per device: the component ties claimed prekeys to the full JID.
  options.resource = "multiend-" + std::to_string(device.device_id());
  // Prosody re-escapes what it forwards; leave room for a full-size stanza from a peer.
  options.max_stanza_bytes = 2 * 1024 * 1024;

  ClientOptions copts;
  copts.component = s.component;
  copts.pep = s.pep;
  copts.timeout = timeout;
  copts.clock = unix_now;
  client::run_online(device, options, std::move(copts), body);
}

}  // namespace multiend::client::cli
