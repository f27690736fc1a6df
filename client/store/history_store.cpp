#include "client/store/history_store.hpp"

#include <limits>
#include <stdexcept>

namespace multiend::client {
namespace {

constexpr std::string_view kColumns =
    "seq, stanza_id, type, from_jid, from_device, body, timestamp_us, direction, reason, trust, protocol, via";

}  // namespace

std::string_view to_string(Direction d) noexcept { return d == Direction::out ? "out" : "in"; }
std::string_view to_string(EntryType t) noexcept {
  return t == EntryType::undecryptable ? "undecryptable" : "message";
}

bool HistoryStore::append(const HistoryEntry& e) {
  if (e.stanza_id.empty()) throw std::invalid_argument("history entry without a stanza-id");
  return db_.atomically([&] {
    std::int64_t seq = 0;
    {
      auto q = db_.query(
          "INSERT INTO history (stanza_id, type, from_jid, from_device, body, timestamp_us, direction, reason, trust, "
          "protocol, via, anchor) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
          "CASE WHEN ?11 = 'pep' THEN coalesce((SELECT stanza_id FROM history WHERE via = 'archive' AND (?12 OR timestamp_us <= ?6) "
          "ORDER BY length(stanza_id) DESC, stanza_id DESC LIMIT 1), '') ELSE '' END) "
          "ON CONFLICT (stanza_id) DO NOTHING RETURNING seq");
      q.bind(1, e.stanza_id).bind(2, to_string(e.type)).bind(3, e.from_jid).bind(4, std::int64_t{e.from_device});
      q.bind(5, e.body).bind(6, e.timestamp_us).bind(7, to_string(e.direction)).bind(8, e.reason).bind(9, e.trust);
      q.bind(10, e.protocol).bind(11, e.via).bind(12, std::int64_t{e.live ? 1 : 0});
      if (!q.step()) return false;
      seq = q.int64(0);
      q.run();
    }
    auto q = db_.query("INSERT INTO history_recipients (entry, position, jid) VALUES (?1, ?2, ?3)");
    for (std::size_t i = 0; i < e.to.size(); ++i) {
      q.reset();
      q.bind(1, seq).bind(2, static_cast<std::int64_t>(i)).bind(3, e.to[i]);
      q.run();
    }
    return true;
  });
}

bool HistoryStore::has_stanza(std::string_view stanza_id) {
  auto q = db_.query("SELECT 1 FROM history WHERE stanza_id = ?1");
  q.bind(1, stanza_id);
  return q.step();
}

std::size_t HistoryStore::size() {
  auto q = db_.query("SELECT count(*) FROM history");
  return q.step() ? static_cast<std::size_t>(q.int64(0)) : 0;
}

std::vector<HistoryEntry> HistoryStore::list(const std::optional<std::string>& with_jid,
                                             std::optional<std::size_t> limit) {
  // Archive order (ids compare as numbers), with chat messages after the archive message that
  // was this device's position when they arrived (index history_order).
  const std::string key = "CASE WHEN via = 'pep' THEN anchor ELSE stanza_id END";
  const std::string desc = " ORDER BY length(" + key + ") DESC, " + key + " DESC, via DESC, seq DESC LIMIT ?2) ";
  const std::string asc = "ORDER BY length(" + key + "), " + key + ", via, seq";
  const std::string all = "SELECT * FROM (SELECT " + std::string(kColumns) + ", anchor FROM history" + desc + asc;
  const std::string with = "SELECT * FROM (SELECT " + std::string(kColumns) +
                           ", anchor FROM history WHERE seq IN (SELECT seq FROM history WHERE from_jid = ?1 "
                           "UNION SELECT entry FROM history_recipients WHERE jid = ?1)" + desc + asc;
  const std::int64_t n =
      limit && *limit < static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())
          ? static_cast<std::int64_t>(*limit)
          : -1;  // no limit
  std::vector<HistoryEntry> out;
  std::vector<std::int64_t> seqs;
  {
    auto q = db_.query(with_jid ? with : all);
    if (with_jid) q.bind(1, *with_jid);
    q.bind(2, n);
    while (q.step()) {
      HistoryEntry e;
      seqs.push_back(q.int64(0));
      e.stanza_id = q.text(1);
      const std::string type = q.text(2);
      if (type != "message" && type != "undecryptable") db_.corrupt("history entry type");
      e.type = type == "message" ? EntryType::message : EntryType::undecryptable;
      e.from_jid = q.text(3);
      e.from_device = static_cast<std::uint32_t>(q.int64(4));
      e.body = q.text(5);
      e.timestamp_us = q.int64(6);
      e.direction = q.text(7) == "out" ? Direction::out : Direction::in;
      e.reason = q.text(8);
      e.trust = q.text(9);
      e.protocol = q.text(10);
      e.via = q.text(11);
      out.push_back(std::move(e));
    }
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    auto q = db_.query("SELECT jid FROM history_recipients WHERE entry = ?1 ORDER BY position");
    q.bind(1, seqs[i]);
    while (q.step()) out[i].to.push_back(q.text(0));
  }
  return out;
}

std::optional<std::string> HistoryStore::last_stanza_id() {
  auto q = db_.query("SELECT value FROM meta WHERE key = 'last_stanza_id'");
  if (!q.step()) return std::nullopt;
  return q.text(0);
}

void HistoryStore::set_last_stanza_id(std::string_view stanza_id) {
  db_.atomically([&] {
    auto q = db_.query(
        "INSERT INTO meta (key, value) VALUES ('last_stanza_id', ?1) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    q.bind(1, stanza_id);
    q.run();
  });
}

}  // namespace multiend::client
