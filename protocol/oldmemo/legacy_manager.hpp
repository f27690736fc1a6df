// The legacy OMEMO (eu.siacs.conversations.axolotl) session manager of one device, beside
// omemo::SessionManager and sharing with it the identity key and the signed prekey (one device,
// one identity, in both generations). What it owns alone: its one-time prekey pool (a prekey
// advertised in one bundle is never consumed through the other) and its sessions. It encrypts
// one body for many devices in one legacy <encrypted>, decrypts what is addressed to this
// device (a repeated key exchange reuses the session it built; a session, a used prekey is
// committed only when the whole message decrypted). Knows no XML transport, trust or network:
// bundles come in as values, identities of sessions go out for the caller's trust check.
#pragma once

#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "protocol/crypto/random.hpp"
#include "protocol/oldmemo/bundle.hpp"
#include "protocol/oldmemo/encrypted_element.hpp"
#include "protocol/oldmemo/session.hpp"
#include "protocol/omemo/stores.hpp"

namespace multiend::oldmemo {

class LegacySessionStore {
 public:
  virtual ~LegacySessionStore() = default;
  virtual std::optional<LegacySession> load_legacy_session(const omemo::DeviceAddress& peer) = 0;
  virtual void save_legacy_session(const LegacySession& s) = 0;
  virtual void remove_legacy_session(const omemo::DeviceAddress& peer) = 0;  // the previous one too
  virtual std::size_t legacy_session_count(const std::string& jid) = 0;
  // The session a key exchange replaced. When both devices start a session at once, each
  // accepts the other's key exchange, and the peer may go on sending in the pairing of our old
  // session (libsignal keeps such states and tries them): decrypt tries this one too.
  virtual std::optional<LegacySession> load_previous_legacy_session(const omemo::DeviceAddress&) { return std::nullopt; }
  virtual void save_previous_legacy_session(const LegacySession&) {}
};

struct LegacyStores {
  omemo::IdentityStore& identity;             // shared with OMEMO 2
  omemo::SignedPreKeyStore& signed_prekeys;   // shared with OMEMO 2 (signed per generation)
  omemo::PreKeyStore& prekeys;                // legacy's own pool
  LegacySessionStore& sessions;
};

struct LegacyRecipient {
  omemo::DeviceAddress address;
  const LegacyBundle* bundle = nullptr;  // needed only when no session exists yet
};

struct LegacyEncryptOutcome {
  LegacyEncrypted message;
  std::vector<omemo::DeviceAddress> encrypted_for;
  std::vector<std::pair<omemo::DeviceAddress, boost::system::error_code>> failed;
};

struct LegacyDecrypted {
  std::optional<crypto::SecretBytes> plaintext;  // the body; nullopt for an empty (KeyTransport) message
  omemo::DeviceAddress sender;
  crypto::X25519Public sender_ik;  // Curve25519 form, as legacy carries it
  bool key_exchange = false;       // a new passive session was built
  bool prekey_used = false;        // republish the legacy bundle
};

class LegacyManager {
 public:
  // The device must exist already (omemo::SessionManager::open creates it); tops the legacy
  // prekey pool up to kPreKeyCount.
  LegacyManager(LegacyStores stores, crypto::Rng& rng);

  const std::string& jid() const noexcept { return jid_; }
  std::uint32_t device_id() const noexcept { return device_id_; }

  // The bundle to publish: the shared signed prekey, signed the legacy way, and the visible
  // legacy prekeys.
  LegacyBundle bundle();
  std::size_t refill_prekeys();

  // The identity a session (or, without one, `bundle`) would encrypt to, in the Edwards form
  // the trust store keeps: the caller checks it before encrypt(). Errc::bad_signature for a
  // bundle whose signature does not verify, no_session without either.
  Result<crypto::Ed25519Public> identity_for(const omemo::DeviceAddress& peer, const LegacyBundle* bundle);

  // Encrypts `plaintext` (nullopt: an empty KeyTransport message) for every recipient, building
  // sessions from bundles where none exists. Per-device failures are listed, not fatal.
  LegacyEncryptOutcome encrypt(std::optional<crypto::ByteView> plaintext, std::span<const LegacyRecipient> recipients);

  // Decrypts `message` from `sender_bare_jid` (normalised). Errc::not_for_this_device when no
  // <key> names us; otherwise the last failure when no key for us decrypts.
  Result<LegacyDecrypted> decrypt(const LegacyEncrypted& message, const std::string& sender_bare_jid);

  // Drops the session with `peer`: the next encrypt builds a fresh one from a bundle.
  void reset_session(const omemo::DeviceAddress& peer) { stores_.sessions.remove_legacy_session(peer); }

 private:
  Result<LegacyDecrypted> decrypt_one(const LegacyEncrypted& message, const LegacyKey& key,
                                      const omemo::DeviceAddress& from);
  std::optional<omemo::SignedPreKeyRecord> signed_prekey(std::uint32_t id);

  LegacyStores stores_;
  crypto::Rng& rng_;
  std::string jid_;
  std::uint32_t device_id_ = 0;
  crypto::IdentityKeyPair identity_;
};

}  // namespace multiend::oldmemo
