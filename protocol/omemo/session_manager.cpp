#include "protocol/omemo/session_manager.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <stdexcept>

#include "protocol/omemo/payload.hpp"

namespace multiend::omemo {
namespace {

SignedPreKeyRecord make_signed_prekey(const crypto::IdentityKeyPair& ik, std::uint32_t id,
                                      crypto::Rng& rng, std::int64_t now) {
  SignedPreKeyRecord r{id, X25519KeyPair::generate(rng), {}, now};
  r.signature = ik.sign(r.key.pub.view());
  return r;
}

}  // namespace

SessionManager::SessionManager(Stores stores, crypto::Rng& rng, OwnIdentity id, ManagerConfig config)
    : stores_(stores),
      rng_(rng),
      jid_(std::move(id.jid)),
      device_id_(id.device_id),
      identity_(std::move(id.key)),
      config_(config) {}

SessionManager SessionManager::open(Stores stores, crypto::Rng& rng, std::string own_bare_jid,
                                    std::uint32_t device_id, std::int64_t now, ManagerConfig config) {
  if (auto existing = stores.identity.load_identity()) {
    if (existing->jid != own_bare_jid)
      throw std::invalid_argument("session store belongs to another account");
    return SessionManager(stores, rng, std::move(*existing), config);
  }
  if (device_id == 0) device_id = rng.uniform(kMaxId) + 1;
  if (device_id > kMaxId) throw std::invalid_argument("device id out of range");
  OwnIdentity id{own_bare_jid, device_id, crypto::IdentityKeyPair::generate(rng)};
  stores.identity.save_identity(id);
  SessionManager m(stores, rng, std::move(id), config);
  m.rotate_signed_prekey(now);
  m.refill_prekeys();
  return m;
}

std::string SessionManager::fingerprint() const { return fingerprint_of(identity_.pub()); }

std::string SessionManager::fingerprint_of(const crypto::Ed25519Public& ik) {
  auto x = crypto::ed25519_pub_to_x25519(ik);
  if (!x) return "invalid";
  std::string out;
  char hex[3];
  for (std::size_t i = 0; i < 32; ++i) {
    if (i > 0 && i % 4 == 0) out += ' ';
    std::snprintf(hex, sizeof hex, "%02x", x->bytes[i]);
    out += hex;
  }
  return out;
}

Bundle SessionManager::bundle() {
  auto spk = stores_.signed_prekeys.current_signed_prekey();
  if (!spk) throw std::logic_error("device has no signed prekey");
  return Bundle{spk->id, spk->key.pub, spk->signature, identity_.pub(), stores_.prekeys.visible_prekeys()};
}

Result<Session> SessionManager::build_active(const DeviceAddress& peer, const Bundle& bundle) {
  if (bundle.prekeys.empty()) return Errc::no_prekeys;
  const PreKeyPublic& chosen = bundle.prekeys[rng_.uniform(static_cast<std::uint32_t>(bundle.prekeys.size()))];
  X25519KeyPair ek = X25519KeyPair::generate(rng_);
  auto x3dh = x3dh_active(identity_, ek, bundle, chosen);
  if (!x3dh) return x3dh.error();
  auto ratchet = DoubleRatchet::init_active(std::move(x3dh->shared_secret), x3dh->ad,
                                            X25519KeyPair::generate(rng_), bundle.spk);
  if (!ratchet) return ratchet.error();
  return Session{peer, Initiation::active, false, {chosen.id, bundle.spk_id, identity_.pub(), ek.pub},
                 bundle.ik, std::move(*ratchet)};
}

Result<crypto::Bytes> SessionManager::encrypt_for(Session& s, crypto::ByteView key_material) {
  auto auth = s.ratchet.encrypt(key_material);
  if (!auth) return auth.error();
  if (s.sends_key_exchange()) return wrap_key_exchange(s.kex, *auth);
  return std::move(*auth);
}

EncryptOutcome SessionManager::encrypt(std::optional<crypto::ByteView> plaintext,
                                       std::span<const Recipient> recipients) {
  EncryptOutcome out;
  out.message.sid = device_id_;
  crypto::Secret<kKeyMaterialSize> material;
  std::size_t material_size = kEmptyMessageSize;  // empty message: 32 zero bytes
  if (plaintext) {
    EncryptedPayload p = encrypt_payload(*plaintext, rng_);
    out.message.payload = std::move(p.ciphertext);
    material = std::move(p.key_material);
    material_size = kKeyMaterialSize;
  }
  const crypto::ByteView key_material(material.data(), material_size);

  for (const Recipient& r : recipients) {
    if (r.address.jid == jid_ && r.address.device == device_id_) continue;  // never to ourselves
    std::optional<Session> session = stores_.sessions.load_session(r.address);
    if (!session) {
      if (!r.bundle) {
        out.failed.emplace_back(r.address, Errc::no_session);
        continue;
      }
      if (stores_.sessions.session_count(r.address.jid) >= kMaxSessionsPerPeerAccount) {
        out.failed.emplace_back(r.address, Errc::limit_exceeded);
        continue;
      }
      auto built = build_active(r.address, *r.bundle);
      if (!built) {
        out.failed.emplace_back(r.address, built.error());
        continue;
      }
      session = std::move(*built);
    }
    auto data = encrypt_for(*session, key_material);
    if (!data) {
      out.failed.emplace_back(r.address, data.error());
      continue;
    }
    stores_.sessions.save_session(*session);
    auto group = std::find_if(out.message.groups.begin(), out.message.groups.end(),
                              [&](const KeysGroup& g) { return g.jid == r.address.jid; });
    if (group == out.message.groups.end()) {
      out.message.groups.push_back({r.address.jid, {}});
      group = std::prev(out.message.groups.end());
    }
    group->keys.push_back({r.address.device, session->sends_key_exchange(), std::move(*data)});
    out.encrypted_for.push_back(r.address);
  }
  return out;
}

Result<Session> SessionManager::build_passive(const DeviceAddress& peer, const KeyExchangeHeader& kex,
                                              std::uint32_t* used_prekey) {
  std::optional<SignedPreKeyRecord> spk = stores_.signed_prekeys.current_signed_prekey();
  if (!spk || spk->id != kex.spk_id) spk = stores_.signed_prekeys.previous_signed_prekey();
  if (!spk || spk->id != kex.spk_id) return Errc::unknown_signed_prekey;
  std::optional<PreKeyRecord> opk = stores_.prekeys.load_prekey(kex.pk_id);
  if (!opk) return Errc::unknown_prekey;
  auto x3dh = x3dh_passive(identity_, spk->key, opk->key, kex.ik, kex.ek);
  if (!x3dh) return x3dh.error();
  *used_prekey = opk->id;
  return Session{peer, Initiation::passive, false, kex, kex.ik,
                 DoubleRatchet::init_passive(std::move(x3dh->shared_secret), x3dh->ad, std::move(spk->key))};
}

Result<Decrypted> SessionManager::decrypt(const EncryptedMessage& message, const std::string& sender_bare_jid) {
  const KeyEntry* key = message.find_key(jid_, device_id_);
  if (!key) return Errc::not_for_this_device;
  const DeviceAddress sender{sender_bare_jid, message.sid};
  if (sender.jid == jid_ && sender.device == device_id_) return Errc::bad_element;  // not from ourselves

  Decrypted out;
  out.sender = sender;
  std::optional<Session> session = stores_.sessions.load_session(sender);
  std::optional<Session> replaced;  // becomes the previous session if this message succeeds
  std::optional<std::uint32_t> used_prekey;
  crypto::ByteView auth(key->data);
  crypto::Bytes inner;

  bool keep_current = false;  // decrypting with the previous session must not demote the current one
  std::optional<X25519Public> new_kex;
  if (key->kex) {
    auto kex = unwrap_key_exchange(key->data);
    if (!kex) return kex.error();
    inner = std::move(kex->authenticated_message);
    auth = inner;
    out.key_exchange = true;
    // A repeat of the key exchange that built our passive session: keep using that session.
    const bool same = session && session->initiation == Initiation::passive && session->kex == kex->header;
    if (!same && stores_.sessions.key_exchange_consumed(kex->header.ek)) {
      // It built a session before. A late message of the session it built (now the previous
      // one) still decrypts there; anything else is a replay: never rebuild from it.
      auto previous = stores_.sessions.load_previous_session(sender);
      if (!previous || previous->initiation != Initiation::passive || !(previous->kex == kex->header))
        return Errc::duplicate_message;
      replaced = std::move(previous);
      std::swap(session, replaced);
      keep_current = true;
    } else if (!same) {
      if (!session && stores_.sessions.session_count(sender.jid) >= kMaxSessionsPerPeerAccount)
        return Errc::limit_exceeded;
      std::uint32_t pk = 0;
      auto built = build_passive(sender, kex->header, &pk);
      if (!built) return built.error();
      out.identity_changed = session && !(session->peer_ik == kex->header.ik);
      if (session && !out.identity_changed) replaced = std::move(session);
      session = std::move(*built);
      used_prekey = pk;
      new_kex = kex->header.ek;
    }
  } else if (!session) {
    session = stores_.sessions.load_previous_session(sender);
    if (!session) return Errc::no_session;
  }

  // The session is a local copy: it reaches the store only if everything below succeeds.
  const bool long_jump = session->ratchet.chain_steps_for(auth) > kMaxSkippedPerMessage;
  if (long_jump) {
    // Forged messages far ahead were tried often enough: no more long jumps for this device.
    auto it = failed_jumps_.find(sender);
    if (it != failed_jumps_.end() && it->second >= kMaxFailedJumpsPerPeer) return Errc::too_many_skipped;
  }
  auto material = session->ratchet.decrypt(auth, rng_);
  if (!material && long_jump && material.error() == Errc::mac_mismatch) note_failed_jump(sender);
  if (!material && !key->kex) {
    // Both sides initiated at once (see SessionStore): the peer may still use our old session.
    if (auto previous = stores_.sessions.load_previous_session(sender)) {
      auto again = previous->ratchet.decrypt(auth, rng_);
      if (again) {
        material = std::move(again);
        replaced = stores_.sessions.load_session(sender);  // as stored: the failed attempt may have moved our copy
        session = std::move(previous);
      }
    }
  }
  if (!material) return material.error();
  if (message.payload) {
    auto pt = decrypt_payload(*message.payload, material->view());
    if (!pt) return pt.error();
    out.plaintext = std::move(*pt);
  } else {
    // An empty OMEMO message carries 32 zero bytes. Anything else is a real message whose
    // <payload> was stripped on the way: report it rather than swallow it silently.
    static constexpr std::array<std::uint8_t, kEmptyMessageSize> kZeros{};
    if (!crypto::ct_equal(material->view(), ByteView(kZeros))) return Errc::mac_mismatch;
  }
  if (session->initiation == Initiation::active) session->confirmed = true;
  out.sender_ik = session->peer_ik;
  if (keep_current)
    enforce_skipped_budget(sender, *replaced, &*session);  // the current one stays as stored
  else
    enforce_skipped_budget(sender, *session, replaced ? &*replaced : nullptr);
  if (keep_current) {
    // The previous session decrypted a late message: it stays the previous one.
    stores_.sessions.save_previous_session(*session);
  } else {
    stores_.sessions.save_session(*session);
    if (replaced) stores_.sessions.save_previous_session(*replaced);
  }
  if (new_kex) stores_.sessions.remember_key_exchange(*new_kex);
  last_repair_.erase(sender);
  failed_jumps_.erase(sender);

  if (used_prekey) {
    if (history_sync_) {
      if (auto pk = stores_.prekeys.load_prekey(*used_prekey)) {
        pk->hidden = true;
        stores_.prekeys.save_prekey(*pk);
      }
    } else {
      stores_.prekeys.remove_prekey(*used_prekey);
    }
    out.prekey_used = true;
  }
  // Kex completion, and heartbeats once the receiving chain reaches n >= 53.
  const bool wants_reply = out.key_exchange || session->ratchet.receiving_chain_length() > kHeartbeatThreshold;
  if (wants_reply) {
    if (history_sync_) {
      if (std::find(queued_empty_replies_.begin(), queued_empty_replies_.end(), sender) ==
          queued_empty_replies_.end())
        queued_empty_replies_.push_back(sender);
    } else {
      out.send_empty_reply = true;
    }
  }
  return out;
}

bool SessionManager::rotate_signed_prekey_if_due(std::int64_t now) {
  auto spk = stores_.signed_prekeys.current_signed_prekey();
  if (spk && now - spk->created < config_.signed_prekey_period) return false;
  rotate_signed_prekey(now);
  return true;
}

void SessionManager::rotate_signed_prekey(std::int64_t now) {
  auto current = stores_.signed_prekeys.current_signed_prekey();
  const std::uint32_t next_id = current ? (current->id % kMaxId) + 1 : 1;
  stores_.signed_prekeys.rotate_signed_prekey(make_signed_prekey(identity_, next_id, rng_, now));
}

std::size_t SessionManager::refill_prekeys() {
  const std::size_t have = stores_.prekeys.visible_prekeys().size();
  if (have >= kPreKeyCount) return 0;
  for (std::size_t i = have; i < kPreKeyCount; ++i) {
    const std::uint32_t id = stores_.prekeys.allocate_prekey_id();
    if (id == 0 || id > kMaxId) throw std::runtime_error("prekey ids exhausted");
    stores_.prekeys.save_prekey({id, X25519KeyPair::generate(rng_), false});
  }
  return kPreKeyCount - have;
}

std::size_t SessionManager::visible_prekey_count() { return stores_.prekeys.visible_prekeys().size(); }

std::vector<DeviceAddress> SessionManager::end_history_sync() {
  history_sync_ = false;
  for (std::uint32_t id : stores_.prekeys.hidden_prekeys()) stores_.prekeys.remove_prekey(id);
  return std::exchange(queued_empty_replies_, {});
}

void SessionManager::enforce_skipped_budget(const DeviceAddress& peer, Session& current, Session* previous) {
  const auto others = stores_.sessions.skipped_keys_besides(peer);
  auto left = [](std::size_t cap, std::size_t used) { return used >= cap ? std::size_t{0} : cap - used; };
  std::size_t budget = std::min({kMaxSkippedPerSession, left(kMaxSkippedPerPeerAccount, others.account),
                                 std::max(kMinSkippedPerSession, left(kMaxSkippedTotal, others.total))});
  current.ratchet.drop_oldest_skipped(budget);
  if (previous) previous->ratchet.drop_oldest_skipped(budget - current.ratchet.skipped_key_count());
}

Result<void> SessionManager::request_repair(const DeviceAddress& peer, std::int64_t now) {
  // Repair only where there truly is no session: a failure that anyone can cause (a key
  // exchange naming an unknown prekey) must never cost a working session.
  if (stores_.sessions.load_session(peer) || stores_.sessions.load_previous_session(peer)) return Errc::bad_request;
  auto it = last_repair_.find(peer);
  if (it != last_repair_.end() && now - it->second < config_.repair_interval) return Errc::repair_throttled;
  last_repair_[peer] = now;
  return {};
}

void SessionManager::reset_session(const DeviceAddress& peer) {
  // The old session becomes the previous one: messages already on their way in it still decrypt.
  auto old = stores_.sessions.load_session(peer);
  stores_.sessions.remove_session(peer);
  if (old) stores_.sessions.save_previous_session(*old);
}

void SessionManager::discard_queued_reply(const DeviceAddress& peer) {
  std::erase(queued_empty_replies_, peer);
}

void SessionManager::note_failed_jump(const DeviceAddress& peer) {
  if (failed_jumps_.size() >= 4096) failed_jumps_.clear();  // bounded; at worst a few more tries
  ++failed_jumps_[peer];
}

}  // namespace multiend::omemo
