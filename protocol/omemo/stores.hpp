// The storage the session manager needs, as abstract interfaces. Implementations: MemoryStore
// (tests, tools) and the client's SQLite store. Loads return copies; the manager saves only
// after an operation fully succeeded, which is what makes a failed decryption leave no trace.
// Implementations report I/O failures by throwing: those are setup errors, not protocol ones.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "protocol/crypto/ed25519.hpp"
#include "protocol/omemo/bundle.hpp"
#include "protocol/omemo/device_list.hpp"
#include "protocol/omemo/session.hpp"

namespace multiend::omemo {

struct OwnIdentity {
  std::string jid;  // bare, normalised
  std::uint32_t device_id = 0;
  crypto::IdentityKeyPair key;
  OwnIdentity clone() const { return {jid, device_id, key.clone()}; }
};

struct PreKeyRecord {
  std::uint32_t id = 0;
  X25519KeyPair key;
  bool hidden = false;  // used during history sync: kept to decrypt, no longer published
  PreKeyRecord clone() const { return {id, key.clone(), hidden}; }
};

struct SignedPreKeyRecord {
  std::uint32_t id = 0;
  X25519KeyPair key;
  crypto::Ed25519Signature signature;
  std::int64_t created = 0;  // unix seconds
  SignedPreKeyRecord clone() const { return {id, key.clone(), signature, created}; }
};

class IdentityStore {
 public:
  virtual ~IdentityStore() = default;
  virtual std::optional<OwnIdentity> load_identity() = 0;
  virtual void save_identity(const OwnIdentity& id) = 0;
};

class PreKeyStore {
 public:
  virtual ~PreKeyStore() = default;
  virtual std::optional<PreKeyRecord> load_prekey(std::uint32_t id) = 0;
  virtual void save_prekey(const PreKeyRecord& pk) = 0;  // insert or replace
  virtual void remove_prekey(std::uint32_t id) = 0;
  virtual std::vector<PreKeyPublic> visible_prekeys() = 0;
  virtual std::vector<std::uint32_t> hidden_prekeys() = 0;
  // Ids are never reused: returns the next id and advances the counter.
  virtual std::uint32_t allocate_prekey_id() = 0;
};

class SignedPreKeyStore {
 public:
  virtual ~SignedPreKeyStore() = default;
  virtual std::optional<SignedPreKeyRecord> current_signed_prekey() = 0;
  virtual std::optional<SignedPreKeyRecord> previous_signed_prekey() = 0;
  // The current one becomes the previous one; the old previous one is deleted.
  virtual void rotate_signed_prekey(const SignedPreKeyRecord& next) = 0;
};

class SessionStore {
 public:
  virtual ~SessionStore() = default;
  virtual std::optional<Session> load_session(const DeviceAddress& peer) = 0;
  virtual void save_session(const Session& s) = 0;
  virtual void remove_session(const DeviceAddress& peer) = 0;  // the previous one too
  // The session a key exchange replaced. When both devices initiate at once, each replaces
  // its active session with a passive one built from the other's key exchange, and the peer
  // keeps sending in the pairing of our *old* session: the manager tries this one when the
  // current session cannot decrypt. A store that keeps none loses those messages.
  virtual std::optional<Session> load_previous_session(const DeviceAddress&) { return std::nullopt; }
  virtual void save_previous_session(const Session&) {}

  // Bounds on what peers can make us keep (SessionManager enforces them with these counts).
  virtual std::size_t session_count(const std::string& jid) = 0;  // current sessions with jid's devices
  struct SkippedCounts {
    std::size_t account = 0;  // in sessions (current and previous) with other devices of peer.jid
    std::size_t total = 0;    // in every session but peer's
  };
  virtual SkippedCounts skipped_keys_besides(const DeviceAddress& peer) = 0;

  // Key exchanges that built a session, by their ephemeral key: a replay of one (its one-time
  // prekey may still be loadable while history sync hides used prekeys) is refused. The store
  // keeps at least the newest kMaxRememberedKeyExchanges.
  virtual bool key_exchange_consumed(const X25519Public& ek) = 0;
  virtual void remember_key_exchange(const X25519Public& ek) = 0;
};

class DeviceListStore {
 public:
  virtual ~DeviceListStore() = default;
  virtual std::optional<DeviceList> load_device_list(const std::string& jid) = 0;
  virtual void save_device_list(const std::string& jid, const DeviceList& list) = 0;
};

struct Stores {
  IdentityStore& identity;
  PreKeyStore& prekeys;
  SignedPreKeyStore& signed_prekeys;
  SessionStore& sessions;
  DeviceListStore& device_lists;
};

}  // namespace multiend::omemo
