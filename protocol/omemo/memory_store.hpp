// All five stores in memory, for tests and tools. It can serialise itself (identity, prekeys,
// signed prekeys, sessions) so tests can save and restore a device mid-conversation.
#pragma once

#include <deque>
#include <map>

#include "protocol/omemo/stores.hpp"

namespace multiend::state {
class Device;
}

namespace multiend::omemo {

class MemoryStore final : public IdentityStore,
                          public PreKeyStore,
                          public SignedPreKeyStore,
                          public SessionStore,
                          public DeviceListStore {
 public:
  Stores stores() { return {*this, *this, *this, *this, *this}; }

  std::optional<OwnIdentity> load_identity() override;
  void save_identity(const OwnIdentity& id) override;

  std::optional<PreKeyRecord> load_prekey(std::uint32_t id) override;
  void save_prekey(const PreKeyRecord& pk) override;
  void remove_prekey(std::uint32_t id) override;
  std::vector<PreKeyPublic> visible_prekeys() override;
  std::vector<std::uint32_t> hidden_prekeys() override;
  std::uint32_t allocate_prekey_id() override;

  std::optional<SignedPreKeyRecord> current_signed_prekey() override;
  std::optional<SignedPreKeyRecord> previous_signed_prekey() override;
  void rotate_signed_prekey(const SignedPreKeyRecord& next) override;

  std::optional<Session> load_session(const DeviceAddress& peer) override;
  void save_session(const Session& s) override;
  void remove_session(const DeviceAddress& peer) override;
  std::optional<Session> load_previous_session(const DeviceAddress& peer) override;
  void save_previous_session(const Session& s) override;
  std::size_t session_count(const std::string& jid) override;
  SkippedCounts skipped_keys_besides(const DeviceAddress& peer) override;
  bool key_exchange_consumed(const X25519Public& ek) override;
  void remember_key_exchange(const X25519Public& ek) override;

  std::optional<DeviceList> load_device_list(const std::string& jid) override;
  void save_device_list(const std::string& jid, const DeviceList& list) override;

  std::size_t session_count() const { return sessions_.size(); }

  // Serialised state::Device (contains secrets: the caller must protect it).
  crypto::SecretBytes serialize() const;
  static Result<MemoryStore> deserialize(crypto::ByteView bytes);

 private:
  static Result<MemoryStore> from_message(const state::Device& d);

  std::optional<OwnIdentity> identity_;
  std::map<std::uint32_t, PreKeyRecord> prekeys_;
  std::uint32_t next_prekey_id_ = 1;
  std::optional<SignedPreKeyRecord> spk_, previous_spk_;
  std::map<DeviceAddress, Session> sessions_;
  std::map<DeviceAddress, Session> previous_sessions_;  // not serialised: a restored store has none
  std::deque<X25519Public> consumed_kex_;                // not serialised either
  std::map<std::string, DeviceList> device_lists_;
};

}  // namespace multiend::omemo
