#include "server/db/device_store.hpp"

#include "server/db/sql.hpp"

namespace multiend::server::device_store {
namespace {

void ensure_owner(pqxx::work& tx, const std::string& owner) {
  tx.exec0("INSERT INTO owners (owner) VALUES (" + tx.quote(owner) +
           ") ON CONFLICT (owner) DO UPDATE SET last_activity = now()");
}

template <class P>
P key_of(const pqxx::field& f) {
  auto b = sql::bytes_of(f);
  if (b.size() != P::size()) throw std::runtime_error("stored key has the wrong size");
  return P::from(b);
}

}  // namespace

PublishBundleResult publish_bundle(pqxx::connection& c, const std::string& owner, std::uint32_t device,
                                   const omemo::Bundle& b, std::size_t max_devices) {
  pqxx::work tx(c);
  ensure_owner(tx, owner);
  const std::string o = tx.quote(owner), d = tx.quote(device);
  auto count = tx.exec1("SELECT count(*) FILTER (WHERE device_id <> " + d + "), bool_or(device_id = " + d +
                        ") FROM devices WHERE owner = " + o);
  const bool known = !count[1].is_null() && count[1].as<bool>();
  if (!known && count[0].as<std::size_t>() >= max_devices) return PublishBundleResult{false, true};
  // xmax = 0 only for a freshly inserted row: the device joined the list.
  auto r = tx.exec1(
      "INSERT INTO devices (owner, device_id, ik, spk_id, spk, spks, bundle_published_at, low_notified_at) VALUES (" +
      o + ", " + d + ", " + sql::bytea(tx, b.ik.view()) + ", " + tx.quote(b.spk_id) + ", " +
      sql::bytea(tx, b.spk.view()) + ", " + sql::bytea(tx, b.spks.view()) +
      ", now(), NULL) ON CONFLICT (owner, device_id) DO UPDATE SET ik = EXCLUDED.ik, spk_id = EXCLUDED.spk_id, "
      "spk = EXCLUDED.spk, spks = EXCLUDED.spks, bundle_published_at = now(), low_notified_at = NULL "
      "RETURNING (xmax = 0) AS inserted");
  PublishBundleResult out{r[0].as<bool>()};
  // The published set replaces the stored one: prekeys absent from it go, those still present
  // (by id: OMEMO never reuses a prekey id) keep their claim state.
  std::vector<std::uint32_t> ids;
  std::string values;
  for (const auto& pk : b.prekeys) {
    ids.push_back(pk.id);
    if (!values.empty()) values += ", ";
    values += "(" + o + ", " + d + ", " + tx.quote(pk.id) + ", " + sql::bytea(tx, pk.key.view()) + ")";
  }
  tx.exec0("DELETE FROM prekeys WHERE owner = " + o + " AND device_id = " + d + " AND pk_id NOT IN " +
           sql::in_list(tx, ids));
  tx.exec0("INSERT INTO prekeys (owner, device_id, pk_id, pk) VALUES " + values +
           " ON CONFLICT (owner, device_id, pk_id) DO UPDATE SET pk = EXCLUDED.pk");
  tx.commit();
  return out;
}

bool publish_device_list(pqxx::connection& c, const std::string& owner, const std::vector<std::uint32_t>& ids) {
  pqxx::work tx(c);
  ensure_owner(tx, owner);
  const std::string o = tx.quote(owner);
  auto removed = tx.exec("DELETE FROM devices WHERE owner = " + o + " AND device_id NOT IN " + sql::in_list(tx, ids));
  std::string values;
  for (auto id : ids) {
    if (!values.empty()) values += ", ";
    values += "(" + o + ", " + tx.quote(id) + ")";
  }
  auto added = tx.exec("INSERT INTO devices (owner, device_id) VALUES " + values + " ON CONFLICT DO NOTHING");
  tx.commit();
  return removed.affected_rows() > 0 || added.affected_rows() > 0;
}

bool retract_device(pqxx::connection& c, const std::string& owner, std::uint32_t device) {
  pqxx::work tx(c);
  auto r = tx.exec("DELETE FROM devices WHERE owner = " + tx.quote(owner) + " AND device_id = " + tx.quote(device));
  tx.commit();
  return r.affected_rows() > 0;
}

std::vector<std::uint32_t> device_list(pqxx::connection& c, const std::string& owner) {
  pqxx::read_transaction tx(c);
  std::vector<std::uint32_t> out;
  for (const auto& row : tx.exec("SELECT device_id FROM devices WHERE owner = " + tx.quote(owner) + " ORDER BY device_id"))
    out.push_back(row[0].as<std::uint32_t>());
  return out;
}

std::vector<std::pair<std::string, std::uint32_t>> device_lists(pqxx::connection& c,
                                                                 const std::vector<std::string>& owners) {
  std::vector<std::pair<std::string, std::uint32_t>> out;
  if (owners.empty()) return out;
  pqxx::read_transaction tx(c);
  for (const auto& row : tx.exec("SELECT owner, device_id FROM devices WHERE owner IN " + sql::in_list(tx, owners)))
    out.emplace_back(row[0].as<std::string>(), row[1].as<std::uint32_t>());
  return out;
}

std::vector<ClaimedBundle> claim_bundles(pqxx::connection& c, const std::string& owner,
                                         const std::vector<std::uint32_t>& devices, const std::string& requester,
                                         std::int64_t retry_seconds, std::int64_t low_threshold, bool fresh) {
  pqxx::work tx(c);
  const std::string o = tx.quote(owner);
  std::string filter = devices.empty() ? "" : " AND d.device_id IN " + sql::in_list(tx, devices);
  // Lock order devices → prekeys, as publish_bundle takes them (it upserts the device row, then
  // replaces its prekeys). Claiming first (prekeys) and updating the device row after (the
  // low-prekeys mark) was the opposite order: a publish and a claim could deadlock.
  tx.exec("SELECT 1 FROM devices d WHERE d.owner = " + o + " AND d.ik IS NOT NULL" + filter +
          " ORDER BY d.device_id FOR NO KEY UPDATE");
  // One round trip: every device's bundle with one freshly claimed prekey, and whether this
  // claim is the one that should tell the owner to refill (at most once an hour per device).
  auto rows = tx.exec(
      "WITH claimed AS (SELECT d.device_id, d.ik, d.spk_id, d.spk, d.spks, c.pk_id, c.pk, c.reused, c.remaining "
      "FROM devices d LEFT JOIN LATERAL claim_prekey(d.owner, d.device_id, " +
      tx.quote(requester) + ", " + tx.quote(retry_seconds) + ", " + (fresh ? "true" : "false") +
      ") c ON true WHERE d.owner = " + o + " AND d.ik IS NOT NULL" + filter +
      "), low AS (UPDATE devices SET low_notified_at = now() FROM claimed WHERE devices.owner = " + o +
      " AND devices.device_id = claimed.device_id AND claimed.remaining < " + tx.quote(low_threshold) +
      " AND (devices.low_notified_at IS NULL OR devices.low_notified_at < now() - interval '1 hour') "
      "RETURNING devices.device_id) "
      "SELECT claimed.*, (low.device_id IS NOT NULL) AS notify FROM claimed LEFT JOIN low USING (device_id) "
      "ORDER BY claimed.device_id");
  tx.commit();
  std::vector<ClaimedBundle> out;
  for (const auto& row : rows) {
    ClaimedBundle cb;
    cb.device_id = row["device_id"].as<std::uint32_t>();
    cb.bundle.ik = key_of<crypto::Ed25519Public>(row["ik"]);
    cb.bundle.spk_id = row["spk_id"].as<std::uint32_t>();
    cb.bundle.spk = key_of<crypto::X25519Public>(row["spk"]);
    cb.bundle.spks = key_of<crypto::Ed25519Signature>(row["spks"]);
    if (!row["pk_id"].is_null())
      cb.bundle.prekeys.push_back({row["pk_id"].as<std::uint32_t>(), key_of<crypto::X25519Public>(row["pk"])});
    cb.reused = !row["reused"].is_null() && row["reused"].as<bool>();
    cb.remaining = row["remaining"].is_null() ? 0 : row["remaining"].as<std::int64_t>();
    cb.notify_low = row["notify"].as<bool>();
    out.push_back(std::move(cb));
  }
  return out;
}

std::vector<PrekeyCount> prekey_counts(pqxx::connection& c, const std::string& owner) {
  pqxx::read_transaction tx(c);
  std::vector<PrekeyCount> out;
  for (const auto& row : tx.exec(
           "SELECT d.device_id, count(p.pk_id) FILTER (WHERE p.claimed_by IS NULL), count(p.pk_id) FROM devices d "
           "LEFT JOIN prekeys p ON p.owner = d.owner AND p.device_id = d.device_id WHERE d.owner = " +
           tx.quote(owner) + " GROUP BY d.device_id ORDER BY d.device_id"))
    out.push_back({row[0].as<std::uint32_t>(), row[1].as<std::int64_t>(), row[2].as<std::int64_t>()});
  return out;
}

std::vector<std::pair<std::uint32_t, crypto::Ed25519Public>> identity_keys(pqxx::connection& c,
                                                                           const std::string& owner,
                                                                           std::optional<std::uint32_t> device) {
  pqxx::read_transaction tx(c);
  std::string q = "SELECT device_id, ik FROM devices WHERE ik IS NOT NULL AND owner = " + tx.quote(owner);
  if (device) q += " AND device_id = " + tx.quote(*device);
  std::vector<std::pair<std::uint32_t, crypto::Ed25519Public>> out;
  for (const auto& row : tx.exec(q + " ORDER BY device_id"))
    out.emplace_back(row[0].as<std::uint32_t>(), key_of<crypto::Ed25519Public>(row[1]));
  return out;
}

SubscribeResult subscribe(pqxx::connection& c, const std::string& owner, const std::string& node,
                          const std::string& subscriber, std::size_t max_per_owner, std::size_t max_per_subscriber) {
  pqxx::work tx(c);
  ensure_owner(tx, owner);
  const std::string o = tx.quote(owner), n = tx.quote(node), s = tx.quote(subscriber);
  auto have = tx.exec("SELECT 1 FROM subscriptions WHERE owner = " + o + " AND node = " + n + " AND subscriber = " + s);
  if (!have.empty()) return SubscribeResult::subscribed;
  const std::string bare = tx.quote(subscriber.substr(0, subscriber.find('/')));
  auto counts = tx.exec1("SELECT count(*) FILTER (WHERE owner = " + o + "), count(*) FILTER (WHERE split_part(subscriber, '/', 1) = " +
                         bare + ") FROM subscriptions WHERE owner = " + o + " OR split_part(subscriber, '/', 1) = " + bare);
  if (counts[0].as<std::size_t>() >= max_per_owner) return SubscribeResult::owner_full;
  if (counts[1].as<std::size_t>() >= max_per_subscriber) return SubscribeResult::subscriber_full;
  tx.exec0("INSERT INTO subscriptions (owner, node, subscriber) VALUES (" + o + ", " + n + ", " + s +
           ") ON CONFLICT DO NOTHING");
  tx.commit();
  return SubscribeResult::subscribed;
}

void unsubscribe(pqxx::connection& c, const std::string& owner, const std::string& node,
                 const std::string& subscriber) {
  pqxx::work tx(c);
  tx.exec0("DELETE FROM subscriptions WHERE owner = " + tx.quote(owner) + " AND node = " + tx.quote(node) +
           " AND subscriber = " + tx.quote(subscriber));
  tx.commit();
}

std::vector<std::string> subscribers(pqxx::connection& c, const std::string& owner, const std::string& node) {
  pqxx::read_transaction tx(c);
  std::vector<std::string> out;
  for (const auto& row : tx.exec("SELECT subscriber FROM subscriptions WHERE owner = " + tx.quote(owner) +
                                 " AND node = " + tx.quote(node)))
    out.push_back(row[0].as<std::string>());
  return out;
}

void touch_owner(pqxx::connection& c, const std::string& owner, std::int64_t resolution_seconds) {
  // Runs on every MAM page. Pruning counts in days, so a minute's resolution is plenty: most
  // calls change no row (no WAL, no commit to flush), and a lost update costs nothing, so the
  // rest do not wait for the WAL flush either (it was a durable commit per page: ~0.8 ms).
  pqxx::work tx(c);
  tx.exec0("SET LOCAL synchronous_commit = off; UPDATE owners SET last_activity = now() WHERE owner = " +
           tx.quote(owner) + " AND last_activity < now() - make_interval(secs => " + tx.quote(resolution_seconds) + ")");
  tx.commit();
}

std::int64_t prune_inactive(pqxx::connection& c, std::int64_t inactive_seconds) {
  pqxx::work tx(c);
  auto r = tx.exec("DELETE FROM devices WHERE owner IN (SELECT owner FROM owners WHERE last_activity < now() - "
                   "make_interval(secs => " +
                   tx.quote(inactive_seconds) + "))");
  tx.commit();
  return static_cast<std::int64_t>(r.affected_rows());
}

}  // namespace multiend::server::device_store
