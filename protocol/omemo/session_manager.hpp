// The OMEMO 2 session manager of one device: owns the device's keys through the stores,
// builds sessions just in time from bundles, encrypts one plaintext for many devices,
// decrypts what is addressed to this device, and keeps prekeys and signed prekeys fresh.
// It knows no network: bundles come in as values, what must be sent or published goes out
// as flags and lists the caller acts on. Randomness and time are passed in.
#pragma once

#include <map>
#include <optional>
#include <span>

#include "protocol/crypto/random.hpp"
#include "protocol/omemo/encrypted_element.hpp"
#include "protocol/omemo/stores.hpp"

namespace multiend::omemo {

struct Recipient {
  DeviceAddress address;
  const Bundle* bundle = nullptr;  // needed only when no session exists yet
};

struct EncryptOutcome {
  EncryptedMessage message;
  std::vector<DeviceAddress> encrypted_for;
  std::vector<std::pair<DeviceAddress, boost::system::error_code>> failed;
};

struct Decrypted {
  std::optional<crypto::SecretBytes> plaintext;  // nullopt for an empty OMEMO message
  DeviceAddress sender;
  crypto::Ed25519Public sender_ik;
  bool key_exchange = false;      // this message built (or re-used) a passive session
  bool identity_changed = false;  // a key exchange replaced a session with another identity key
  bool send_empty_reply = false;  // answer with an empty message now (kex completion, heartbeat)
  bool prekey_used = false;       // a one-time prekey was consumed: republish the bundle
};

struct ManagerConfig {
  std::int64_t signed_prekey_period = 7 * 24 * 3600;  // rotate weekly
  std::int64_t repair_interval = 3600;                // at most one repair per device per hour
};

class SessionManager {
 public:
  // Loads the device from the stores, or creates it (identity, signed prekey, 100 prekeys)
  // when the identity store is empty. `device_id` 0 = pick a random one.
  static SessionManager open(Stores stores, crypto::Rng& rng, std::string own_bare_jid,
                             std::uint32_t device_id, std::int64_t now, ManagerConfig config = {});

  const std::string& jid() const noexcept { return jid_; }
  std::uint32_t device_id() const noexcept { return device_id_; }
  const crypto::Ed25519Public& identity_key() const noexcept { return identity_.pub(); }
  // Hex of the identity key in Curve25519 form, 8 groups of 8 (XEP-0384 §6.1).
  std::string fingerprint() const;
  static std::string fingerprint_of(const crypto::Ed25519Public& ik);

  // The bundle to publish: current signed prekey and every visible prekey.
  Bundle bundle();

  // Encrypts `plaintext` (the SCE envelope), or an empty OMEMO message when nullopt, for
  // every recipient; our own device is skipped. Per-device failures are listed, not fatal.
  EncryptOutcome encrypt(std::optional<crypto::ByteView> plaintext, std::span<const Recipient> recipients);

  // Decrypts a message addressed to this device, sent by `sender_bare_jid` (normalised).
  Result<Decrypted> decrypt(const EncryptedMessage& message, const std::string& sender_bare_jid);

  // Key maintenance. Each returns true when the bundle changed and must be republished.
  bool rotate_signed_prekey_if_due(std::int64_t now);
  void rotate_signed_prekey(std::int64_t now);
  // Tops visible prekeys up to 100 when fewer remain; returns how many were added.
  std::size_t refill_prekeys();
  std::size_t visible_prekey_count();

  // History sync (MAM catch-up): used prekeys are hidden, not deleted, and empty replies are
  // queued until end_history_sync(), which deletes them and returns who needs an empty message.
  void begin_history_sync() { history_sync_ = true; }
  std::vector<DeviceAddress> end_history_sync();

  // Session repair after a failed decryption: may the caller build a fresh session from the
  // peer's bundle (after checking its identity key) and send it an empty message? Only when no
  // session (current or previous) exists: Errc::bad_request otherwise, so an unauthenticated
  // stanza never costs a working session. Errc::repair_throttled if this device was repaired
  // within the configured interval and nothing from it decrypted since (one repair, not a loop).
  Result<void> request_repair(const DeviceAddress& peer, std::int64_t now);
  // Drops the current session with `peer` (it becomes the previous one, so messages already on
  // their way in it still decrypt): the user's explicit way out (multiend reset-session). The
  // next encrypt builds a fresh one from a bundle.
  void reset_session(const DeviceAddress& peer);
  // Forgets an empty reply queued during history sync (the caller refused what asked for it).
  void discard_queued_reply(const DeviceAddress& peer);

 private:
  SessionManager(Stores stores, crypto::Rng& rng, OwnIdentity id, ManagerConfig config);
  Result<Session> build_active(const DeviceAddress& peer, const Bundle& bundle);
  Result<Session> build_passive(const DeviceAddress& peer, const KeyExchangeHeader& kex,
                                std::uint32_t* used_prekey);
  Result<crypto::Bytes> encrypt_for(Session& s, crypto::ByteView key_material);
  // Trims skipped keys so one peer account, and all peers together, stay within their caps.
  void enforce_skipped_budget(const DeviceAddress& peer, Session& current, Session* previous);
  void note_failed_jump(const DeviceAddress& peer);

  Stores stores_;
  crypto::Rng& rng_;
  std::string jid_;
  std::uint32_t device_id_;
  crypto::IdentityKeyPair identity_;
  ManagerConfig config_;
  bool history_sync_ = false;
  std::vector<DeviceAddress> queued_empty_replies_;
  std::map<DeviceAddress, std::int64_t> last_repair_;
  std::map<DeviceAddress, int> failed_jumps_;  // MAC failures of messages far ahead, per device
};

}  // namespace multiend::omemo
