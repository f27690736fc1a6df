#include "protocol/omemo/memory_store.hpp"

#include <algorithm>

#include "protocol/omemo/protobuf_parse.hpp"
#include "protocol/omemo/session_state_wipe.hpp"
#include "session_state.pb.h"

namespace multiend::omemo {
namespace {

// protobuf keeps secrets in std::string: wipe them before the message is destroyed.
void wipe(std::string& s) { wipe_secret_string(s); }

void write_spk(const SignedPreKeyRecord& r, state::SignedPreKey& out) {
  out.set_id(r.id);
  out.set_priv(r.key.priv.data(), r.key.priv.size());
  out.set_signature(r.signature.data(), r.signature.size());
  out.set_created(r.created);
}

void wipe_secrets(state::Device& d) {
  wipe(*d.mutable_identity_seed());
  for (auto& p : *d.mutable_prekeys()) wipe(*p.mutable_priv());
  if (d.has_spk()) wipe(*d.mutable_spk()->mutable_priv());
  if (d.has_previous_spk()) wipe(*d.mutable_previous_spk()->mutable_priv());
  for (auto& s : *d.mutable_sessions()) wipe_session_secrets(s);
}

Result<SignedPreKeyRecord> read_spk(const state::SignedPreKey& in) {
  if (in.priv().size() != 32 || in.signature().size() != 64) return Errc::bad_protobuf;
  return SignedPreKeyRecord{in.id(), X25519KeyPair::from_private(Secret<32>(as_bytes(in.priv()))),
                            crypto::Ed25519Signature::from(as_bytes(in.signature())), in.created()};
}

}  // namespace

std::optional<OwnIdentity> MemoryStore::load_identity() {
  if (!identity_) return std::nullopt;
  return identity_->clone();
}
void MemoryStore::save_identity(const OwnIdentity& id) { identity_ = id.clone(); }

std::optional<PreKeyRecord> MemoryStore::load_prekey(std::uint32_t id) {
  auto it = prekeys_.find(id);
  if (it == prekeys_.end()) return std::nullopt;
  return it->second.clone();
}
void MemoryStore::save_prekey(const PreKeyRecord& pk) { prekeys_.insert_or_assign(pk.id, pk.clone()); }
void MemoryStore::remove_prekey(std::uint32_t id) { prekeys_.erase(id); }
std::vector<PreKeyPublic> MemoryStore::visible_prekeys() {
  std::vector<PreKeyPublic> out;
  for (const auto& [id, pk] : prekeys_)
    if (!pk.hidden) out.push_back({id, pk.key.pub});
  return out;
}
std::vector<std::uint32_t> MemoryStore::hidden_prekeys() {
  std::vector<std::uint32_t> out;
  for (const auto& [id, pk] : prekeys_)
    if (pk.hidden) out.push_back(id);
  return out;
}
std::uint32_t MemoryStore::allocate_prekey_id() { return next_prekey_id_++; }

std::optional<SignedPreKeyRecord> MemoryStore::current_signed_prekey() {
  if (!spk_) return std::nullopt;
  return spk_->clone();
}
std::optional<SignedPreKeyRecord> MemoryStore::previous_signed_prekey() {
  if (!previous_spk_) return std::nullopt;
  return previous_spk_->clone();
}
void MemoryStore::rotate_signed_prekey(const SignedPreKeyRecord& next) {
  previous_spk_ = std::move(spk_);
  spk_ = next.clone();
}

std::optional<Session> MemoryStore::load_session(const DeviceAddress& peer) {
  auto it = sessions_.find(peer);
  if (it == sessions_.end()) return std::nullopt;
  return it->second.clone();
}
void MemoryStore::save_session(const Session& s) { sessions_.insert_or_assign(s.peer, s.clone()); }
void MemoryStore::remove_session(const DeviceAddress& peer) {
  sessions_.erase(peer);
  previous_sessions_.erase(peer);
}
std::optional<Session> MemoryStore::load_previous_session(const DeviceAddress& peer) {
  auto it = previous_sessions_.find(peer);
  if (it == previous_sessions_.end()) return std::nullopt;
  return it->second.clone();
}
void MemoryStore::save_previous_session(const Session& s) { previous_sessions_.insert_or_assign(s.peer, s.clone()); }

std::size_t MemoryStore::session_count(const std::string& jid) {
  std::size_t n = 0;
  for (const auto& [a, s] : sessions_) n += a.jid == jid;
  return n;
}

SessionStore::SkippedCounts MemoryStore::skipped_keys_besides(const DeviceAddress& peer) {
  SkippedCounts c;
  for (const auto* m : {&sessions_, &previous_sessions_})
    for (const auto& [a, s] : *m) {
      if (a == peer) continue;
      c.total += s.ratchet.skipped_key_count();
      if (a.jid == peer.jid) c.account += s.ratchet.skipped_key_count();
    }
  return c;
}

bool MemoryStore::key_exchange_consumed(const X25519Public& ek) {
  return std::find(consumed_kex_.begin(), consumed_kex_.end(), ek) != consumed_kex_.end();
}

void MemoryStore::remember_key_exchange(const X25519Public& ek) {
  if (key_exchange_consumed(ek)) return;
  consumed_kex_.push_back(ek);
  while (consumed_kex_.size() > kMaxRememberedKeyExchanges) consumed_kex_.pop_front();
}

std::optional<DeviceList> MemoryStore::load_device_list(const std::string& jid) {
  auto it = device_lists_.find(jid);
  if (it == device_lists_.end()) return std::nullopt;
  return it->second;
}
void MemoryStore::save_device_list(const std::string& jid, const DeviceList& list) {
  device_lists_.insert_or_assign(jid, list);
}

crypto::SecretBytes MemoryStore::serialize() const {
  state::Device d;
  if (identity_) {
    d.set_jid(identity_->jid);
    d.set_device_id(identity_->device_id);
    d.set_identity_seed(identity_->key.seed().data(), identity_->key.seed().size());
  } else {
    d.set_jid("");
    d.set_device_id(0);
    d.set_identity_seed("");
  }
  for (const auto& [id, pk] : prekeys_) {
    auto* p = d.add_prekeys();
    p->set_id(id);
    p->set_priv(pk.key.priv.data(), pk.key.priv.size());
    p->set_hidden(pk.hidden);
  }
  if (spk_) write_spk(*spk_, *d.mutable_spk());
  if (previous_spk_) write_spk(*previous_spk_, *d.mutable_previous_spk());
  d.set_next_prekey_id(next_prekey_id_);
  for (const auto& [addr, s] : sessions_) s.to_state(*d.add_sessions());
  crypto::SecretBytes out(d.ByteSizeLong());
  d.SerializeToArray(out.data(), static_cast<int>(out.size()));
  wipe_secrets(d);
  return out;
}

Result<MemoryStore> MemoryStore::deserialize(crypto::ByteView bytes) {
  state::Device d;
  if (!parse_protobuf(d, bytes)) return Errc::bad_protobuf;
  auto result = from_message(d);
  wipe_secrets(d);
  return result;
}

Result<MemoryStore> MemoryStore::from_message(const state::Device& d) {
  MemoryStore m;
  if (d.identity_seed().size() == 32)
    m.identity_ = OwnIdentity{d.jid(), d.device_id(),
                              crypto::IdentityKeyPair::from_seed(Secret<32>(as_bytes(d.identity_seed())))};
  else if (!d.identity_seed().empty())
    return Errc::bad_protobuf;
  for (const auto& p : d.prekeys()) {
    if (p.priv().size() != 32) return Errc::bad_protobuf;
    m.prekeys_.insert_or_assign(
        p.id(), PreKeyRecord{p.id(), X25519KeyPair::from_private(Secret<32>(as_bytes(p.priv()))), p.hidden()});
  }
  if (d.has_spk()) {
    auto r = read_spk(d.spk());
    if (!r) return r.error();
    m.spk_ = std::move(*r);
  }
  if (d.has_previous_spk()) {
    auto r = read_spk(d.previous_spk());
    if (!r) return r.error();
    m.previous_spk_ = std::move(*r);
  }
  m.next_prekey_id_ = d.next_prekey_id();
  for (const auto& s : d.sessions()) {
    auto session = Session::from_state(s);
    if (!session) return session.error();
    DeviceAddress addr = session->peer;
    m.sessions_.insert_or_assign(std::move(addr), std::move(*session));
  }
  return m;
}

}  // namespace multiend::omemo
