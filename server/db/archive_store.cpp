#include "server/db/archive_store.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "server/db/sql.hpp"

namespace multiend::server::archive_store {
namespace {

constexpr const char* kStoredAtUs = "(extract(epoch FROM m.stored_at) * 1000000)::bigint";

}  // namespace

std::vector<StoredMessage> insert_batch(pqxx::connection& c, const std::vector<const NewMessage*>& batch) {
  std::vector<StoredMessage> out(batch.size());
  if (batch.empty()) return out;
  pqxx::work tx(c);
  // Coverage: one read of every device list the group touches.
  std::set<std::string> owners;
  for (const NewMessage* m : batch)
    if (m->check_coverage) owners.insert(m->recipients.begin(), m->recipients.end());
  std::map<std::string, std::vector<std::uint32_t>> lists;
  if (!owners.empty()) {
    std::vector<std::string> v(owners.begin(), owners.end());
    for (const auto& row : tx.exec("SELECT owner, device_id FROM devices WHERE owner IN " + sql::in_list(tx, v)))
      lists[row[0].as<std::string>()].push_back(row[1].as<std::uint32_t>());
  }
  std::vector<bool> accepted(batch.size(), true);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const NewMessage* m = batch[i];
    if (!m->check_coverage) continue;
    for (const auto& owner : m->recipients) {
      auto l = lists.find(owner);
      if (l == lists.end()) continue;
      for (auto device : l->second) {
        if (owner == m->sender_bare && device == m->sender_device) continue;
        if (!std::binary_search(m->keyed_devices.begin(), m->keyed_devices.end(), std::make_pair(owner, device)))
          out[i].missing.emplace_back(owner, device);
      }
    }
    accepted[i] = out[i].missing.empty();
  }
  // Messages: one multi-row INSERT; a resend (same sender and origin-id) conflicts and is
  // looked up afterwards, so it is stored once and fanned out once.
  std::string values;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!accepted[i]) continue;
    const NewMessage* m = batch[i];
    if (!values.empty()) values += ", ";
    values += "(" + tx.quote(m->sender_bare) + ", " + tx.quote(m->sender_full) + ", " + tx.quote(m->origin_id) + ", " +
              tx.quote(m->stanza) + ")";
  }
  if (values.empty()) return out;  // all refused by the coverage check
  auto inserted = tx.exec(
      "INSERT INTO messages AS m (sender_bare, sender_full, origin_id, stanza) VALUES " + values +
      " ON CONFLICT (sender_bare, origin_id) DO NOTHING RETURNING m.id, m.sender_bare, m.origin_id, " +
      kStoredAtUs);
  struct Row {
    std::int64_t id, stored_at_us;
    bool fanned_out;
  };
  std::map<std::pair<std::string, std::string>, Row> fresh, old;
  for (const auto& row : inserted)
    fresh[{row[1].as<std::string>(), row[2].as<std::string>()}] = {row[0].as<std::int64_t>(), row[3].as<std::int64_t>(), false};

  std::string lookup;
  for (std::size_t i = 0; i < batch.size(); ++i)
    if (const NewMessage* m = batch[i]; accepted[i] && !fresh.count({m->sender_bare, m->origin_id})) {
      if (!lookup.empty()) lookup += ", ";
      lookup += "(" + tx.quote(m->sender_bare) + ", " + tx.quote(m->origin_id) + ")";
    }
  if (!lookup.empty())
    for (const auto& row : tx.exec(std::string("SELECT m.id, m.sender_bare, m.origin_id, ") + kStoredAtUs +
                                   ", m.fanned_out FROM messages m WHERE (m.sender_bare, m.origin_id) IN (" + lookup + ")"))
      old[{row[1].as<std::string>(), row[2].as<std::string>()}] = {row[0].as<std::int64_t>(), row[3].as<std::int64_t>(),
                                                                     row[4].as<bool>()};

  std::string archive_rows;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!accepted[i]) continue;
    const auto key = std::make_pair(batch[i]->sender_bare, batch[i]->origin_id);
    auto f = fresh.find(key);
    if (f != fresh.end()) {
      out[i].id = f->second.id;
      out[i].stored_at_us = f->second.stored_at_us;
      fresh.erase(f);  // a second copy of it in this same batch is a duplicate
      old[key] = {out[i].id, out[i].stored_at_us, true};  // the first copy is fanned out now
      for (const auto& r : batch[i]->recipients) {
        if (!archive_rows.empty()) archive_rows += ", ";
        archive_rows += "(" + tx.quote(r) + ", " + tx.quote(out[i].id) + ")";
      }
    } else {
      auto o = old.find(key);
      if (o == old.end()) throw std::runtime_error("archive: resend of a message that vanished");
      out[i].id = o->second.id;
      out[i].duplicate = true;
      out[i].stored_at_us = o->second.stored_at_us;
      out[i].fanned_out = o->second.fanned_out;
    }
  }
  if (!archive_rows.empty())
    tx.exec0("INSERT INTO archive (owner, message_id) VALUES " + archive_rows + " ON CONFLICT DO NOTHING");
  tx.commit();
  return out;
}

std::vector<std::optional<StoredMessage>> lookup(pqxx::connection& c, const std::vector<const NewMessage*>& batch) {
  std::vector<std::optional<StoredMessage>> out(batch.size());
  if (batch.empty()) return out;
  pqxx::read_transaction tx(c);
  std::string keys;
  for (const NewMessage* m : batch) {
    if (!keys.empty()) keys += ", ";
    keys += "(" + tx.quote(m->sender_bare) + ", " + tx.quote(m->origin_id) + ")";
  }
  std::map<std::pair<std::string, std::string>, StoredMessage> found;
  for (const auto& row : tx.exec(std::string("SELECT m.id, m.sender_bare, m.origin_id, ") + kStoredAtUs +
                                 ", m.fanned_out FROM messages m WHERE (m.sender_bare, m.origin_id) IN (" + keys + ")")) {
    StoredMessage s;
    s.id = row[0].as<std::int64_t>();
    s.duplicate = true;
    s.stored_at_us = row[3].as<std::int64_t>();
    s.fanned_out = row[4].as<bool>();
    found[{row[1].as<std::string>(), row[2].as<std::string>()}] = s;
  }
  for (std::size_t i = 0; i < batch.size(); ++i)
    if (auto f = found.find({batch[i]->sender_bare, batch[i]->origin_id}); f != found.end()) out[i] = f->second;
  return out;
}

MamPage query(pqxx::connection& c, const MamFilter& f, bool want_count) {
  pqxx::read_transaction tx(c);
  const std::string owner = tx.quote(f.owner);
  std::string where = "a.owner = " + owner;
  if (f.with) {
    const std::string w = tx.quote(*f.with);
    // Messages from `with`, or from the owner to `with` (then `with` has an archive row too).
    where += " AND (m.sender_bare = " + w + " OR (m.sender_bare = " + owner +
             " AND EXISTS (SELECT 1 FROM archive a2 WHERE a2.owner = " + w + " AND a2.message_id = a.message_id)))";
  }
  const std::string slack = "make_interval(secs => " + tx.quote(f.write_slack_seconds) + ")";
  if (f.start_us) {
    const std::string t = "to_timestamp(" + tx.quote(static_cast<double>(*f.start_us) / 1e6) + ")";
    where += " AND m.stored_at >= " + t +
             " AND a.message_id > coalesce((SELECT s.id FROM messages s WHERE s.stored_at < " + t + " - " + slack +
             " ORDER BY s.stored_at DESC LIMIT 1), 0)";
  }
  if (f.end_us) {
    const std::string t = "to_timestamp(" + tx.quote(static_cast<double>(*f.end_us) / 1e6) + ")";
    where += " AND m.stored_at <= " + t +
             " AND a.message_id < coalesce((SELECT s.id FROM messages s WHERE s.stored_at > " + t + " + " + slack +
             " ORDER BY s.stored_at LIMIT 1), 9223372036854775807)";
  }
  if (f.after_id) where += " AND a.message_id > " + tx.quote(*f.after_id);
  if (f.before_id) where += " AND a.message_id < " + tx.quote(*f.before_id);
  if (!f.ids.empty()) where += " AND a.message_id IN " + sql::in_list(tx, f.ids);

  MamPage page;
  if (want_count)
    page.count = tx.exec1("SELECT count(*) FROM (SELECT 1 FROM archive a JOIN messages m ON m.id = a.message_id WHERE " +
                          where + " LIMIT " + tx.quote(kMaxCount) + ") bounded")[0]
                     .as<std::int64_t>();
  if (f.max == 0) {
    page.complete = true;
    return page;
  }
  auto rows = tx.exec(std::string("SELECT a.message_id, ") + kStoredAtUs +
                      ", m.stanza FROM archive a JOIN messages m ON m.id = a.message_id WHERE " + where +
                      " ORDER BY a.message_id " + (f.from_end ? "DESC" : "ASC") + " LIMIT " +
                      tx.quote(static_cast<std::int64_t>(f.max) + 1));
  page.complete = rows.size() <= f.max;
  for (const auto& row : rows) {
    if (page.messages.size() == f.max) break;
    page.messages.push_back({row[0].as<std::int64_t>(), row[1].as<std::int64_t>(), row[2].as<std::string>()});
  }
  if (f.from_end) std::reverse(page.messages.begin(), page.messages.end());
  return page;
}

bool owns(pqxx::connection& c, const std::string& owner, std::int64_t id) {
  pqxx::read_transaction tx(c);
  return !tx.exec("SELECT 1 FROM archive WHERE owner = " + tx.quote(owner) + " AND message_id = " + tx.quote(id))
              .empty();
}

bool owns_all(pqxx::connection& c, const std::string& owner, const std::vector<std::int64_t>& ids) {
  if (ids.empty()) return true;
  std::vector<std::int64_t> unique(ids);
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  pqxx::read_transaction tx(c);
  return tx.exec1("SELECT count(*) FROM archive WHERE owner = " + tx.quote(owner) + " AND message_id IN " +
                  sql::in_list(tx, unique))[0]
             .as<std::size_t>() == unique.size();
}

std::vector<PendingFanout> pending_fanout(pqxx::connection& c, std::int64_t after_id, std::size_t limit) {
  pqxx::read_transaction tx(c);
  std::vector<PendingFanout> out;
  for (const auto& row : tx.exec(std::string("SELECT m.id, ") + kStoredAtUs +
                                 ", m.stanza, array_agg(a.owner) FROM messages m JOIN archive a ON a.message_id = m.id "
                                 "WHERE NOT m.fanned_out AND m.id > " + tx.quote(after_id) + " GROUP BY m.id ORDER BY m.id LIMIT " +
                                 tx.quote(static_cast<std::int64_t>(limit)))) {
    PendingFanout p{row[0].as<std::int64_t>(), row[1].as<std::int64_t>(), row[2].as<std::string>(), {}};
    auto arr = row[3].as_array();
    for (auto [kind, value] = arr.get_next(); kind != pqxx::array_parser::done; std::tie(kind, value) = arr.get_next())
      if (kind == pqxx::array_parser::string_value) p.recipients.push_back(value);
    out.push_back(std::move(p));
  }
  return out;
}

void mark_fanned_out(pqxx::connection& c, const std::vector<std::int64_t>& ids) {
  if (ids.empty()) return;
  pqxx::work tx(c);
  tx.exec0("UPDATE messages SET fanned_out = true WHERE id IN " + sql::in_list(tx, ids));
  tx.commit();
}

std::int64_t expire(pqxx::connection& c, std::int64_t retention_seconds, std::int64_t batch) {
  pqxx::work tx(c);
  auto r = tx.exec("DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE stored_at < now() - "
                   "make_interval(secs => " +
                   tx.quote(retention_seconds) + ") ORDER BY id LIMIT " + tx.quote(batch) + ")");
  tx.commit();
  return static_cast<std::int64_t>(r.affected_rows());
}

}  // namespace multiend::server::archive_store
