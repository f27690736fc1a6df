// The CLI's output: one JSON object per line on stdout (docs/cli.md lists every field).
#pragma once

#include <nlohmann/json.hpp>

#include "client/app/client.hpp"

namespace multiend::client::cli {

nlohmann::json message_json(const HistoryEntry& e);
nlohmann::json address_json(const omemo::DeviceAddress& a);
void emit(const nlohmann::json& line);  // writes and flushes one line

}  // namespace multiend::client::cli
