// Connection settings as key/value text: the account JID, the server's host:port, the archive
// component's JID, the CA file, this device's label, and the path of the file holding the
// password. Only those keys are accepted (std::invalid_argument otherwise), so the password
// itself has no place to go: the state file is not where secrets of the account belong.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "client/store/sqlite.hpp"

namespace multiend::client {

namespace setting {
inline constexpr std::string_view jid = "jid";                      // bare account JID
inline constexpr std::string_view server = "server";                // host:port of the XMPP server
inline constexpr std::string_view component = "component";          // the archive component's JID
inline constexpr std::string_view ca_file = "ca_file";              // PEM bundle to verify TLS with
inline constexpr std::string_view label = "label";                  // this device's label
inline constexpr std::string_view password_file = "password_file";  // a path, never the password
inline constexpr std::string_view insecure = "insecure";            // "1": plain TCP, no TLS (test servers)
inline constexpr std::string_view registered = "registered";        // "1" once the bundle was published
inline constexpr std::string_view pep = "pep";                      // "0": archive only, nothing in PEP
// The position in the account's own server archive (XEP-0313 on our bare JID): "" = from the
// start, absent = not known yet (the first catch-up only marks where the archive ends).
inline constexpr std::string_view server_archive_after = "server_archive_after";
// "<digest> <unix time>": the two PEP bundles as last published (client/app/pep_transport.cpp
// publishes them again only when they changed, or a day later).
inline constexpr std::string_view pep_bundles = "pep_bundles";
}  // namespace setting

class SettingsStore {
 public:
  explicit SettingsStore(sqlite::Database& db) : db_(db) {}

  static bool known_key(std::string_view key) noexcept;

  std::optional<std::string> get(std::string_view key);
  void set(std::string_view key, std::string_view value);  // std::invalid_argument: unknown key
  void erase(std::string_view key);
  std::vector<std::pair<std::string, std::string>> all();  // sorted by key

 private:
  sqlite::Database& db_;
};

}  // namespace multiend::client
