// Which identity key each contact device has, and how far we trust it.
//
// Policy: blind trust before verification (BTBV). The first identity key seen for a device id
// is recorded as undecided_blind and the device is used at once. A different key later for
// the same (jid, device) is refused (Errc::identity_mismatch) and the old key kept: a device
// id never silently changes hands. Once the user verified any device of a JID, that JID's
// still-undecided devices are no longer used (blind trust ends with the first verification);
// a distrusted device is never used. usable() is the one question the sender asks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/store/sqlite.hpp"
#include "protocol/crypto/ed25519.hpp"
#include "protocol/error.hpp"

namespace multiend::client {

enum class Trust { undecided_blind, verified, distrusted };
std::string_view to_string(Trust t) noexcept;
std::optional<Trust> trust_from_string(std::string_view s) noexcept;

enum class IdentityStatus { new_device, same };

struct DeviceInfo {
  std::uint32_t device = 0;
  std::optional<crypto::Ed25519Public> identity_key;  // nullopt: listed, but no key seen yet
  std::string fingerprint;                            // SessionManager::fingerprint_of, "" without key
  std::optional<Trust> trust;                         // nullopt without key
  std::optional<std::string> label;  // from the device list, only if its labelsig verifies
  bool listed = false;               // in the last device list stored for the JID
  bool usable = false;               // see usable()
};

class TrustStore {
 public:
  explicit TrustStore(sqlite::Database& db) : db_(db) {}

  // new_device: recorded as undecided_blind. same: already known with this key.
  // Errc::identity_mismatch: known with another key; nothing changes.
  [[nodiscard]] Result<IdentityStatus> record_device_identity(const std::string& jid, std::uint32_t device,
                                                              const crypto::Ed25519Public& ik);
  // False if the device has no recorded identity key (nothing to trust yet).
  bool set_trust(const std::string& jid, std::uint32_t device, Trust trust);
  std::optional<Trust> trust_of(const std::string& jid, std::uint32_t device);
  std::optional<crypto::Ed25519Public> identity_of(const std::string& jid, std::uint32_t device);
  // May this device get message keys? verified: yes; distrusted or unknown: no;
  // undecided_blind: yes unless some device of the same JID is verified.
  bool usable(const std::string& jid, std::uint32_t device);
  // Every device with a recorded key or in the stored device list, by device id.
  std::vector<DeviceInfo> list_devices(const std::string& jid);

 private:
  sqlite::Database& db_;
};

}  // namespace multiend::client
