// Messages this device encrypted but the component has not acknowledged yet.
//
// Sending is: encrypt (ratchet steps spent) and put the stanza here in one transaction, send,
// and on the component's receipt move it to the history in one transaction. A process killed
// in between finds it here on the next start and sends the very same stanza again: same
// ciphertext, same origin-id, so the component stores and delivers it once (exactly-once).
// The body is plaintext, as in the history: the state file is private.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "client/store/sqlite.hpp"

namespace multiend::client {

struct OutboxEntry {
  std::string origin_id;
  std::string stanza;                   // serialised <message>, sent as is
  std::string body;                     // for the history once acknowledged
  std::vector<std::string> recipients;  // bare JIDs, for the history
  std::int64_t created_us = 0;
};

class OutboxStore {
 public:
  explicit OutboxStore(sqlite::Database& db) : db_(db) {}

  void put(const OutboxEntry& e);  // std::invalid_argument for an empty origin-id
  void remove(std::string_view origin_id);
  std::optional<OutboxEntry> find(std::string_view origin_id);
  std::vector<OutboxEntry> pending();  // oldest first

 private:
  sqlite::Database& db_;
};

}  // namespace multiend::client
