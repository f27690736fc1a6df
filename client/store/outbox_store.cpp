#include "client/store/outbox_store.hpp"

#include <nlohmann/json.hpp>
#include <stdexcept>

namespace multiend::client {

void OutboxStore::put(const OutboxEntry& e) {
  if (e.origin_id.empty()) throw std::invalid_argument("outbox entry without an origin-id");
  const std::string recipients = nlohmann::json(e.recipients).dump();
  db_.atomically([&] {
    auto q = db_.query(
        "INSERT INTO outbox (origin_id, stanza, body, recipients, created_us) VALUES (?1, ?2, ?3, ?4, ?5) "
        "ON CONFLICT (origin_id) DO UPDATE SET stanza = excluded.stanza");
    q.bind(1, e.origin_id).bind(2, e.stanza).bind(3, e.body).bind(4, recipients).bind(5, e.created_us);
    q.run();
  });
}

void OutboxStore::remove(std::string_view origin_id) {
  db_.atomically([&] {
    auto q = db_.query("DELETE FROM outbox WHERE origin_id = ?1");
    q.bind(1, origin_id);
    q.run();
  });
}

namespace {

OutboxEntry read_entry(sqlite::Database& db, sqlite::Query& q) {
  OutboxEntry e;
  e.origin_id = q.text(0);
  e.stanza = q.text(1);
  e.body = q.text(2);
  auto recipients = nlohmann::json::parse(q.text(3), nullptr, false);
  if (!recipients.is_array()) db.corrupt("outbox recipients");
  for (const auto& r : recipients) {
    if (!r.is_string()) db.corrupt("outbox recipients");
    e.recipients.push_back(r.get<std::string>());
  }
  e.created_us = q.int64(4);
  return e;
}

}  // namespace

std::optional<OutboxEntry> OutboxStore::find(std::string_view origin_id) {
  auto q = db_.query("SELECT origin_id, stanza, body, recipients, created_us FROM outbox WHERE origin_id = ?1");
  q.bind(1, origin_id);
  if (!q.step()) return std::nullopt;
  return read_entry(db_, q);
}

std::vector<OutboxEntry> OutboxStore::pending() {
  std::vector<OutboxEntry> out;
  auto q = db_.query("SELECT origin_id, stanza, body, recipients, created_us FROM outbox ORDER BY created_us");
  while (q.step()) out.push_back(read_entry(db_, q));
  return out;
}

}  // namespace multiend::client
