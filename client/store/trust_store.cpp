#include "client/store/trust_store.hpp"

#include <map>

#include "protocol/crypto/base64.hpp"
#include "protocol/omemo/session_manager.hpp"

namespace multiend::client {
namespace {

crypto::Ed25519Public key_of(const sqlite::Database& db, crypto::ByteView v) {
  if (v.size() != crypto::Ed25519Public::size()) db.corrupt("device identity key");
  return crypto::Ed25519Public::from(v);
}

bool label_verifies(const crypto::Ed25519Public& ik, const std::string& label, const std::string& labelsig) {
  auto sig = crypto::base64_decode(labelsig, 1024);
  if (!sig || sig->size() != crypto::Ed25519Signature::size()) return false;
  const crypto::ByteView text(reinterpret_cast<const std::uint8_t*>(label.data()), label.size());
  return crypto::ed25519_verify(ik, text, crypto::Ed25519Signature::from(*sig));
}

}  // namespace

std::string_view to_string(Trust t) noexcept {
  switch (t) {
    case Trust::verified: return "verified";
    case Trust::distrusted: return "distrusted";
    case Trust::undecided_blind: break;
  }
  return "undecided_blind";
}

std::optional<Trust> trust_from_string(std::string_view s) noexcept {
  for (Trust t : {Trust::undecided_blind, Trust::verified, Trust::distrusted})
    if (to_string(t) == s) return t;
  return std::nullopt;
}

Result<IdentityStatus> TrustStore::record_device_identity(const std::string& jid, std::uint32_t device,
                                                          const crypto::Ed25519Public& ik) {
  return db_.atomically([&]() -> Result<IdentityStatus> {
    {
      auto q = db_.query("SELECT identity_key FROM devices WHERE jid = ?1 AND device = ?2");
      q.bind(1, jid).bind(2, std::int64_t{device});
      if (q.step()) {
        if (crypto::ct_equal(q.blob(0), ik.view())) return IdentityStatus::same;
        // Legacy OMEMO carries the Curve25519 form, whose Edwards form has an unknown sign
        // bit: one identity is the same Curve25519 key in both generations.
        if (q.blob(0).size() == crypto::Ed25519Public::size()) {
          auto stored = crypto::ed25519_pub_to_x25519(crypto::Ed25519Public::from(q.blob(0)));
          auto given = crypto::ed25519_pub_to_x25519(ik);
          if (stored && given && crypto::ct_equal(stored->view(), given->view())) return IdentityStatus::same;
        }
        return Errc::identity_mismatch;
      }
    }
    auto q = db_.query("INSERT INTO devices (jid, device, identity_key, trust) VALUES (?1, ?2, ?3, ?4)");
    q.bind(1, jid).bind(2, std::int64_t{device}).bind_blob(3, ik.view()).bind(4, to_string(Trust::undecided_blind));
    q.run();
    return IdentityStatus::new_device;
  });
}

bool TrustStore::set_trust(const std::string& jid, std::uint32_t device, Trust trust) {
  return db_.atomically([&] {
    auto q = db_.query("UPDATE devices SET trust = ?3 WHERE jid = ?1 AND device = ?2 RETURNING 1");
    q.bind(1, jid).bind(2, std::int64_t{device}).bind(3, to_string(trust));
    const bool found = q.step();
    q.run();
    return found;
  });
}

std::optional<Trust> TrustStore::trust_of(const std::string& jid, std::uint32_t device) {
  auto q = db_.query("SELECT trust FROM devices WHERE jid = ?1 AND device = ?2");
  q.bind(1, jid).bind(2, std::int64_t{device});
  if (!q.step()) return std::nullopt;
  auto t = trust_from_string(q.text(0));
  if (!t) db_.corrupt("trust value");
  return t;
}

std::optional<crypto::Ed25519Public> TrustStore::identity_of(const std::string& jid, std::uint32_t device) {
  auto q = db_.query("SELECT identity_key FROM devices WHERE jid = ?1 AND device = ?2");
  q.bind(1, jid).bind(2, std::int64_t{device});
  if (!q.step()) return std::nullopt;
  return key_of(db_, q.blob(0));
}

bool TrustStore::usable(const std::string& jid, std::uint32_t device) {
  auto t = trust_of(jid, device);
  if (!t || *t == Trust::distrusted) return false;
  if (*t == Trust::verified) return true;
  auto q = db_.query("SELECT EXISTS (SELECT 1 FROM devices WHERE jid = ?1 AND trust = 'verified')");
  q.bind(1, jid);
  return q.step() && q.int64(0) == 0;
}

std::vector<DeviceInfo> TrustStore::list_devices(const std::string& jid) {
  std::map<std::uint32_t, DeviceInfo> devices;
  bool any_verified = false;
  {
    auto q = db_.query("SELECT device, identity_key, trust FROM devices WHERE jid = ?1");
    q.bind(1, jid);
    while (q.step()) {
      DeviceInfo& d = devices[static_cast<std::uint32_t>(q.int64(0))];
      d.device = static_cast<std::uint32_t>(q.int64(0));
      d.identity_key = key_of(db_, q.blob(1));
      d.fingerprint = omemo::SessionManager::fingerprint_of(*d.identity_key);
      d.trust = trust_from_string(q.text(2));
      if (!d.trust) db_.corrupt("trust value");
      any_verified = any_verified || *d.trust == Trust::verified;
    }
  }
  {
    auto q = db_.query("SELECT device, label, labelsig FROM device_list_entries WHERE jid = ?1 ORDER BY position");
    q.bind(1, jid);
    while (q.step()) {
      DeviceInfo& d = devices[static_cast<std::uint32_t>(q.int64(0))];
      d.device = static_cast<std::uint32_t>(q.int64(0));
      d.listed = true;
      auto label = q.optional_text(1);
      auto labelsig = q.optional_text(2);
      if (label && labelsig && d.identity_key && label_verifies(*d.identity_key, *label, *labelsig)) d.label = label;
    }
  }
  std::vector<DeviceInfo> out;
  out.reserve(devices.size());
  for (auto& [id, d] : devices) {
    d.usable = d.trust == Trust::verified || (d.trust == Trust::undecided_blind && !any_verified);
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace multiend::client
