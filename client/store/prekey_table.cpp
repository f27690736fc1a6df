#include "client/store/prekey_table.hpp"

namespace multiend::client {
namespace {
std::int64_t as_int(std::uint32_t v) { return static_cast<std::int64_t>(v); }
}  // namespace

std::optional<omemo::PreKeyRecord> PreKeyTable::load_prekey(std::uint32_t id) {
  auto q = db_.query(("SELECT priv, hidden FROM " + table_ + " WHERE id = ?1").c_str());
  q.bind(1, as_int(id));
  if (!q.step()) return std::nullopt;
  const crypto::ByteView priv = q.blob(0);
  if (priv.size() != 32) db_.corrupt("prekey");  // Secret(ByteView) aborts on a wrong size
  return omemo::PreKeyRecord{id, crypto::X25519KeyPair::from_private(crypto::Secret<32>(priv)), q.int64(1) != 0};
}

void PreKeyTable::save_prekey(const omemo::PreKeyRecord& pk) {
  db_.atomically([&] {
    auto q = db_.query(("INSERT INTO " + table_ +
                        " (id, priv, pub, hidden) VALUES (?1, ?2, ?3, ?4) "
                        "ON CONFLICT (id) DO UPDATE SET priv = excluded.priv, pub = excluded.pub, hidden = excluded.hidden")
                           .c_str());
    q.bind(1, as_int(pk.id)).bind_blob(2, pk.key.priv.view()).bind_blob(3, pk.key.pub.view());
    q.bind(4, std::int64_t{pk.hidden ? 1 : 0});
    q.run();
  });
}

void PreKeyTable::remove_prekey(std::uint32_t id) {
  db_.atomically([&] {
    auto q = db_.query(("DELETE FROM " + table_ + " WHERE id = ?1").c_str());
    q.bind(1, as_int(id));
    q.run();
  });
}

std::vector<omemo::PreKeyPublic> PreKeyTable::visible_prekeys() {
  std::vector<omemo::PreKeyPublic> out;
  auto q = db_.query(("SELECT id, pub FROM " + table_ + " WHERE hidden = 0 ORDER BY id").c_str());
  while (q.step()) {
    const crypto::ByteView pub = q.blob(1);
    if (pub.size() != crypto::X25519Public::size()) db_.corrupt("prekey");
    out.push_back({static_cast<std::uint32_t>(q.int64(0)), crypto::X25519Public::from(pub)});
  }
  return out;
}

std::vector<std::uint32_t> PreKeyTable::hidden_prekeys() {
  std::vector<std::uint32_t> out;
  auto q = db_.query(("SELECT id FROM " + table_ + " WHERE hidden = 1 ORDER BY id").c_str());
  while (q.step()) out.push_back(static_cast<std::uint32_t>(q.int64(0)));
  return out;
}

std::uint32_t PreKeyTable::allocate_prekey_id() {
  return db_.atomically([&] {
    std::uint32_t next = 1;  // MemoryStore starts at 1 too
    {
      auto q = db_.query("SELECT value FROM meta WHERE key = ?1");
      q.bind(1, counter_key_);
      if (q.step()) next = static_cast<std::uint32_t>(q.int64(0));
    }
    auto q = db_.query("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    q.bind(1, counter_key_).bind(2, as_int(next + 1));  // wraps like MemoryStore's uint32 counter
    q.run();
    return next;
  });
}

}  // namespace multiend::client
