#include "client/store/settings_store.hpp"

#include <array>
#include <stdexcept>

namespace multiend::client {

bool SettingsStore::known_key(std::string_view key) noexcept {
  static constexpr std::array kKeys = {setting::jid,   setting::server, setting::component,
                                       setting::ca_file, setting::label, setting::password_file,
                                       setting::registered, setting::insecure, setting::pep,
                                       setting::server_archive_after, setting::pep_bundles};
  for (std::string_view k : kKeys)
    if (k == key) return true;
  return false;
}

std::optional<std::string> SettingsStore::get(std::string_view key) {
  auto q = db_.query("SELECT value FROM settings WHERE key = ?1");
  q.bind(1, key);
  if (!q.step()) return std::nullopt;
  return q.text(0);
}

void SettingsStore::set(std::string_view key, std::string_view value) {
  if (!known_key(key)) throw std::invalid_argument("unknown setting '" + std::string(key) + "'");
  db_.atomically([&] {
    auto q = db_.query(
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    q.bind(1, key).bind(2, value);
    q.run();
  });
}

void SettingsStore::erase(std::string_view key) {
  db_.atomically([&] {
    auto q = db_.query("DELETE FROM settings WHERE key = ?1");
    q.bind(1, key);
    q.run();
  });
}

std::vector<std::pair<std::string, std::string>> SettingsStore::all() {
  std::vector<std::pair<std::string, std::string>> out;
  auto q = db_.query("SELECT key, value FROM settings ORDER BY key");
  while (q.step()) out.emplace_back(q.text(0), q.text(1));
  return out;
}

}  // namespace multiend::client
