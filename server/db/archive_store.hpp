// SQL for the message archive: group-committed inserts (one row per message, one small row per
// recipient archive), MAM pages, pending fan-out after a restart, and retention.
// Blocking calls on a pqxx::connection; knows nothing of XMPP beyond JIDs and stanza text.
#pragma once

#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

namespace multiend::server {

struct NewMessage {
  std::string sender_bare;
  std::string sender_full;
  std::string origin_id;
  std::string stanza;                   // serialised <message/> in jabber:client
  std::vector<std::string> recipients;  // bare JIDs whose archives get it (the sender's included)
  // Coverage check, done inside the same transaction as the insert: every device on the
  // recipients' lists (except the sending one) must be among `keyed_devices`.
  bool check_coverage = false;
  std::uint32_t sender_device = 0;
  std::vector<std::pair<std::string, std::uint32_t>> keyed_devices;  // sorted
};

struct StoredMessage {
  std::int64_t id = 0;
  bool duplicate = false;    // an earlier message from this sender had the same origin-id
  bool fanned_out = true;    // for a duplicate: whether that earlier copy was delivered
  std::int64_t stored_at_us = 0;
  // Non-empty: refused by the coverage check, nothing stored; these devices had no key.
  std::vector<std::pair<std::string, std::uint32_t>> missing;
};

struct ArchivedMessage {
  std::int64_t id = 0;
  std::int64_t stored_at_us = 0;
  std::string stanza;
};

struct PendingFanout {
  std::int64_t id = 0;
  std::int64_t stored_at_us = 0;
  std::string stanza;
  std::vector<std::string> recipients;
};

struct MamFilter {
  std::string owner;
  std::optional<std::string> with;  // bare JID
  std::optional<std::int64_t> start_us, end_us;
  // Longest a write transaction can stay open (its statements' timeouts): `start`/`end` are
  // turned into id bounds through the stored_at index with this much slack (see query()).
  std::int64_t write_slack_seconds = 300;
  std::optional<std::int64_t> after_id, before_id;  // exclusive bounds (form and RSM combined)
  std::vector<std::int64_t> ids;
  std::uint32_t max = 50;
  bool from_end = false;  // RSM <before/>: the page ending at before_id (or at the end)
};

struct MamPage {
  std::vector<ArchivedMessage> messages;  // ascending by id
  bool complete = false;                  // no more results in the paging direction
  std::optional<std::int64_t> count;      // only when asked (max = 0)
};

namespace archive_store {

// One transaction for the whole group; result i belongs to message i. Messages are stored in
// the order given (ids grow in that order), so one sender's messages keep their order.
std::vector<StoredMessage> insert_batch(pqxx::connection& c, const std::vector<const NewMessage*>& batch);
// After a commit whose outcome is unknown (the connection broke during COMMIT): each message
// as stored, if it is (a duplicate with its fanned_out mark), nullopt if it is not.
std::vector<std::optional<StoredMessage>> lookup(pqxx::connection& c, const std::vector<const NewMessage*>& batch);
// One page. `start`/`end` are served by the messages.stored_at index: a message's id is taken
// during its write transaction, which lasts less than the slack, so every message stored at or
// after `start` has a larger id than the last one stored before `start` − slack, and every
// message stored at or before `end` a smaller id than the first one stored after `end` + slack
// (two indexed LIMIT 1 lookups); the owner's archive is then read as an id range (its primary
// key), the exact time condition applied on top. A count (max = 0) stops at kMaxCount (RSM counts may be approximate).
inline constexpr std::int64_t kMaxCount = 100000;
MamPage query(pqxx::connection& c, const MamFilter& f, bool want_count);
// Whether `id` is in `owner`'s archive (RSM ids must name a result of this archive).
bool owns(pqxx::connection& c, const std::string& owner, std::int64_t id);
// Whether every id is in `owner`'s archive.
bool owns_all(pqxx::connection& c, const std::string& owner, const std::vector<std::int64_t>& ids);
// Committed messages not yet delivered, with id > after_id, oldest first.
std::vector<PendingFanout> pending_fanout(pqxx::connection& c, std::int64_t after_id, std::size_t limit);
void mark_fanned_out(pqxx::connection& c, const std::vector<std::int64_t>& ids);
// Deletes up to `batch` messages older than the retention age; returns how many.
std::int64_t expire(pqxx::connection& c, std::int64_t retention_seconds, std::int64_t batch);

}  // namespace archive_store
}  // namespace multiend::server
