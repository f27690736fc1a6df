#include "client/cli/output.hpp"

#include <iostream>

#include "protocol/xmpp/datetime.hpp"

namespace multiend::client::cli {

nlohmann::json message_json(const HistoryEntry& e) {
  nlohmann::json j;
  j["type"] = std::string(to_string(e.type));
  j["id"] = e.stanza_id;
  j["from"] = e.from_jid;
  j["from_device"] = e.from_device;
  j["to"] = e.to;
  j["body"] = e.type == EntryType::message ? nlohmann::json(e.body) : nlohmann::json(nullptr);
  j["timestamp"] = xmpp::format_datetime(e.timestamp_us);
  j["direction"] = std::string(to_string(e.direction));
  j["trust"] = e.trust.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.trust);
  if (e.type == EntryType::undecryptable) j["reason"] = e.reason;
  j["protocol"] = e.protocol == "none" ? nlohmann::json(nullptr) : nlohmann::json(e.protocol);
  j["via"] = e.via;
  j["encrypted"] = e.protocol != "none";
  return j;
}

nlohmann::json address_json(const omemo::DeviceAddress& a) { return {{"jid", a.jid}, {"device", a.device}}; }

void emit(const nlohmann::json& line) {
  // Replace rather than throw on invalid UTF-8: a peer's bytes must not crash the CLI.
  std::cout << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n' << std::flush;
}

}  // namespace multiend::client::cli
