#include "client/store/legacy_store.hpp"

#include "client/store/session_blob.hpp"
#include "protocol/omemo/protobuf_parse.hpp"

namespace multiend::client {
namespace {
std::int64_t as_int(std::uint32_t v) { return static_cast<std::int64_t>(v); }
}  // namespace

std::optional<oldmemo::LegacySession> LegacyStore::load_from(const char* table, const omemo::DeviceAddress& peer) {
  auto q = db_.query(std::string("SELECT state FROM ") + table + " WHERE jid = ?1 AND device = ?2");
  q.bind(1, peer.jid).bind(2, as_int(peer.device));
  if (!q.step()) return std::nullopt;
  state::Session msg;
  Result<oldmemo::LegacySession> session = omemo::parse_protobuf(msg, q.blob(0))
                                               ? oldmemo::LegacySession::from_state(msg)
                                               : Result<oldmemo::LegacySession>(Errc::bad_protobuf);
  wipe_secrets(msg);
  if (!session || session->peer != peer)
    db_.corrupt("legacy session with " + peer.jid + "/" + std::to_string(peer.device));
  return std::move(*session);
}

void LegacyStore::save_to(const char* table, const oldmemo::LegacySession& s) {
  state::Session msg;
  s.to_state(msg);
  const crypto::SecretBytes blob = session_blob(msg);
  db_.atomically([&] {
    auto q = db_.query(std::string("INSERT INTO ") + table +
                       " (jid, device, state) VALUES (?1, ?2, ?3) "
                       "ON CONFLICT (jid, device) DO UPDATE SET state = excluded.state");
    q.bind(1, s.peer.jid).bind(2, as_int(s.peer.device)).bind_blob(3, blob.view());
    q.run();
  });
}

std::optional<oldmemo::LegacySession> LegacyStore::load_legacy_session(const omemo::DeviceAddress& peer) {
  return load_from("legacy_sessions", peer);
}
void LegacyStore::save_legacy_session(const oldmemo::LegacySession& s) { save_to("legacy_sessions", s); }
std::optional<oldmemo::LegacySession> LegacyStore::load_previous_legacy_session(const omemo::DeviceAddress& peer) {
  return load_from("legacy_previous_sessions", peer);
}
void LegacyStore::save_previous_legacy_session(const oldmemo::LegacySession& s) {
  save_to("legacy_previous_sessions", s);
}

void LegacyStore::remove_legacy_session(const omemo::DeviceAddress& peer) {
  db_.atomically([&] {
    for (const char* sql : {"DELETE FROM legacy_sessions WHERE jid = ?1 AND device = ?2",
                            "DELETE FROM legacy_previous_sessions WHERE jid = ?1 AND device = ?2"}) {
      auto q = db_.query(sql);
      q.bind(1, peer.jid).bind(2, as_int(peer.device));
      q.run();
    }
  });
}

std::size_t LegacyStore::legacy_session_count(const std::string& jid) {
  auto q = db_.query("SELECT count(*) FROM legacy_sessions WHERE jid = ?1");
  q.bind(1, jid);
  return q.step() ? static_cast<std::size_t>(q.int64(0)) : 0;
}

bool LegacyStore::has_legacy_session(const omemo::DeviceAddress& peer) {
  auto q = db_.query("SELECT 1 FROM legacy_sessions WHERE jid = ?1 AND device = ?2");
  q.bind(1, peer.jid).bind(2, as_int(peer.device));
  return q.step();
}

}  // namespace multiend::client
