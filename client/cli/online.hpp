// Running one CLI command: open the state file, connect with the settings it holds, run a
// coroutine to its end, close the stream politely. Errors surface as exceptions for main().
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "client/app/client.hpp"

namespace multiend::client::cli {

struct ConnectionSettings {
  std::string jid;
  std::string server;  // host:port; empty = the JID's domain, port 5222
  std::string component;
  std::optional<std::string> ca_file;
  bool insecure = false;
  std::string password_file;
  bool pep = true;  // publish in PEP and reach plain OMEMO devices (init --no-pep: archive only)
};

ConnectionSettings settings_of(SqliteStore& store);
void save_settings(SqliteStore& store, const ConnectionSettings& s);
std::int64_t unix_now();

// Connects `device` and runs `body` with a Client; closes the connection afterwards.
void run_online(Device& device, const ConnectionSettings& s, std::chrono::seconds timeout,
                const std::function<asio::awaitable<void>(Client&)>& body);

}  // namespace multiend::client::cli
