// Steps the online commands share: opening the state file, the maintenance every online
// command starts with, and the JSON of a sent message.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>

#include "client/app/client.hpp"
#include "client/cli/online.hpp"

namespace multiend::client::cli {

constexpr std::size_t kMaxBody = 64 * 1024;  // the component takes 256 KiB stanzas

struct Opened {
  crypto::SodiumRng rng;
  std::unique_ptr<Device> device;
  ConnectionSettings settings;
};
struct Common;

std::unique_ptr<Opened> open_state(const Common& c);
void print_message(const HistoryEntry& e);
// Bundle, prekeys, device still listed, then the outbox an earlier command left.
asio::awaitable<void> start(Client& client);
nlohmann::json sent_json(const std::vector<std::string>& to, const SendReport& report);

}  // namespace multiend::client::cli
