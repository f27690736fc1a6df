// The decrypted local history and the archive position (the last stanza-id seen in MAM).
//
// Entries are unique by stanza-id (the archive's id): appending one that is already there does
// nothing and returns false, which is how duplicate fan-out copies are dropped. Entries are
// listed in archive order: stanza-ids are the component's decimal ids, which grow with time, so
// they compare as numbers (shorter first, then lexically). Every device of an account thus lists
// the archive's messages in the same order, whether they came live, from MAM, or were its own.
// A plain chat message (via "pep", id "pep:<sender>:<origin-id>") is listed after the newest
// archive message stored here that is not later than it (by timestamp: the server archive's
// stamp, or arrival) and before the next: devices whose clocks and archives agree list the
// same order.
// The bodies are plaintext: the state file must stay private (mode 0600).
//
// To keep "decrypted, stored, archive position advanced" atomic, call append() and
// set_last_stanza_id() inside the same SqliteStore transaction as the decryption.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/store/sqlite.hpp"

namespace multiend::client {

enum class Direction { in, out };
enum class EntryType { message, undecryptable };
std::string_view to_string(Direction d) noexcept;
std::string_view to_string(EntryType t) noexcept;

struct HistoryEntry {
  std::string stanza_id;  // the archive's id; required
  EntryType type = EntryType::message;
  std::string from_jid;  // bare
  std::uint32_t from_device = 0;
  std::vector<std::string> to;  // bare JIDs, in the order given
  std::string body;             // may be empty (an empty OMEMO message, or undecryptable)
  std::int64_t timestamp_us = 0;
  Direction direction = Direction::in;
  std::string reason;  // why it is undecryptable; empty otherwise
  // The sending device's trust when the message arrived: verified, blind, undecided,
  // distrusted, unlisted, own (this device); empty when it was never decided (docs/cli.md).
  std::string trust;
  std::string protocol = "omemo2";  // omemo2, oldmemo, or none (an unencrypted chat message)
  std::string via = "archive";      // archive (the component) or pep (a plain chat message)
  // A pep entry made now (sent by this device, or live without a delay stamp) goes after every
  // archive entry already here; otherwise after the newest one not later than its timestamp
  // (clocks and stamp precisions differ: ordering by time is for what comes from the past).
  bool live = false;
  friend bool operator==(const HistoryEntry&, const HistoryEntry&) = default;
};

class HistoryStore {
 public:
  explicit HistoryStore(sqlite::Database& db) : db_(db) {}

  // False (and nothing written) if the stanza-id is already stored.
  // std::invalid_argument for an empty stanza-id.
  bool append(const HistoryEntry& entry);
  bool has_stanza(std::string_view stanza_id);
  // The last `limit` entries (all without a limit) in archive order, oldest first; with a JID
  // only those it sent or that were addressed to it.
  std::vector<HistoryEntry> list(const std::optional<std::string>& with_jid = std::nullopt,
                                 std::optional<std::size_t> limit = std::nullopt);
  std::size_t size();

  std::optional<std::string> last_stanza_id();
  void set_last_stanza_id(std::string_view stanza_id);

 private:
  sqlite::Database& db_;
};

}  // namespace multiend::client
