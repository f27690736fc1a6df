#include "protocol/oldmemo/legacy_manager.hpp"

#include <stdexcept>

#include "protocol/crypto/xeddsa.hpp"
#include "protocol/oldmemo/payload.hpp"
#include "protocol/oldmemo/signal_message.hpp"
#include "protocol/oldmemo/x3dh.hpp"
#include "protocol/omemo/constants.hpp"

namespace multiend::oldmemo {

using omemo::DeviceAddress;

LegacyManager::LegacyManager(LegacyStores stores, crypto::Rng& rng) : stores_(stores), rng_(rng) {
  auto own = stores_.identity.load_identity();
  if (!own) throw std::logic_error("legacy OMEMO needs the device's identity first");
  jid_ = own->jid;
  device_id_ = own->device_id;
  identity_ = std::move(own->key);
  refill_prekeys();
}

LegacyBundle LegacyManager::bundle() {
  auto spk = stores_.signed_prekeys.current_signed_prekey();
  if (!spk) throw std::logic_error("device has no signed prekey");
  return LegacyBundle{spk->id, spk->key.pub, sign_signed_prekey(identity_, spk->key.pub), curve_identity(identity_),
                      stores_.prekeys.visible_prekeys()};
}

std::size_t LegacyManager::refill_prekeys() {
  const std::size_t have = stores_.prekeys.visible_prekeys().size();
  if (have >= omemo::kPreKeyCount) return 0;
  for (std::size_t i = have; i < omemo::kPreKeyCount; ++i) {
    const std::uint32_t id = stores_.prekeys.allocate_prekey_id();
    // libsignal keeps prekey ids within 24 bits (Medium.MAX_VALUE).
    if (id == 0 || id > 0xFFFFFF) throw std::runtime_error("legacy prekey ids exhausted");
    stores_.prekeys.save_prekey({id, crypto::X25519KeyPair::generate(rng_), false});
  }
  return omemo::kPreKeyCount - have;
}

Result<crypto::Ed25519Public> LegacyManager::identity_for(const DeviceAddress& peer, const LegacyBundle* bundle) {
  if (auto s = stores_.sessions.load_legacy_session(peer)) return crypto::curve25519_to_ed25519(s->peer_ik, false);
  if (bundle == nullptr) return Errc::no_session;
  return crypto::verify_with_sign_bit(bundle->ik, encode_key(bundle->spk), bundle->spk_signature);
}

LegacyEncryptOutcome LegacyManager::encrypt(std::optional<crypto::ByteView> plaintext,
                                            std::span<const LegacyRecipient> recipients) {
  SealedPayload sealed = plaintext ? seal_payload(*plaintext, rng_) : empty_message(rng_);
  LegacyEncryptOutcome out;
  out.message.sid = device_id_;
  out.message.iv = sealed.iv;
  if (plaintext) out.message.payload = sealed.ciphertext;
  for (const LegacyRecipient& r : recipients) {
    if (r.address.jid == jid_ && r.address.device == device_id_) continue;
    auto session = stores_.sessions.load_legacy_session(r.address);
    if (!session) {
      if (r.bundle == nullptr) {
        out.failed.emplace_back(r.address, Errc::no_session);
        continue;
      }
      if (stores_.sessions.legacy_session_count(r.address.jid) >= omemo::kMaxSessionsPerPeerAccount) {
        out.failed.emplace_back(r.address, Errc::limit_exceeded);
        continue;
      }
      auto started = start_session(identity_, r.address, *r.bundle, rng_);
      if (!started) {
        out.failed.emplace_back(r.address, started.error());
        continue;
      }
      session = std::move(started->session);
    }
    auto key = encrypt_key(*session, sealed.key_material.view());
    if (!key) {
      out.failed.emplace_back(r.address, key.error());
      continue;
    }
    key->rid = r.address.device;
    stores_.sessions.save_legacy_session(*session);
    out.message.keys.push_back(std::move(*key));
    out.encrypted_for.push_back(r.address);
  }
  return out;
}

Result<LegacyDecrypted> LegacyManager::decrypt(const LegacyEncrypted& message, const std::string& sender_bare_jid) {
  const auto mine = message.keys_for(device_id_);
  if (mine.empty()) return Errc::not_for_this_device;
  const DeviceAddress from{sender_bare_jid, message.sid};
  if (from.jid == jid_ && from.device == device_id_) return Errc::bad_request;  // our own id from outside
  boost::system::error_code last = Errc::not_for_this_device;
  for (const LegacyKey* key : mine) {  // several keys for one id are allowed: Conversations tries each
    auto d = decrypt_one(message, *key, from);
    if (d) return d;
    last = d.error();
  }
  return last;
}

std::optional<omemo::SignedPreKeyRecord> LegacyManager::signed_prekey(std::uint32_t id) {
  if (auto c = stores_.signed_prekeys.current_signed_prekey(); c && c->id == id) return c;
  if (auto p = stores_.signed_prekeys.previous_signed_prekey(); p && p->id == id) return p;
  return std::nullopt;
}

Result<LegacyDecrypted> LegacyManager::decrypt_one(const LegacyEncrypted& message, const LegacyKey& key,
                                                   const DeviceAddress& from) {
  std::optional<LegacySession> existing = stores_.sessions.load_legacy_session(from);
  std::optional<LegacySession> previous = stores_.sessions.load_previous_legacy_session(from);
  std::optional<LegacySession> work;
  bool on_previous = false;             // `work` is the previous session
  std::optional<LegacySession> replaced;  // the current session a new key exchange replaces
  std::optional<std::uint32_t> used_prekey;
  crypto::ByteView signal_message = key.data;
  std::optional<ParsedPreKeyMessage> kex;
  if (key.prekey) {
    auto parsed = unwrap_prekey_message(key.data);
    if (!parsed) return parsed.error();
    kex = std::move(*parsed);
    signal_message = kex->signal_message;
    if (existing && built_from(*existing, kex->header)) {
      work = existing->clone();
    } else if (previous && built_from(*previous, kex->header)) {
      work = previous->clone();
      on_previous = true;
    } else {
      if (!existing && stores_.sessions.legacy_session_count(from.jid) >= omemo::kMaxSessionsPerPeerAccount)
        return Errc::limit_exceeded;
      auto spk = signed_prekey(kex->header.signed_pre_key_id);
      if (!spk) return Errc::unknown_signed_prekey;
      auto opk = stores_.prekeys.load_prekey(kex->header.pre_key_id);
      if (!opk) return Errc::unknown_prekey;
      auto s = accept_session(identity_, from, kex->header, spk->key, opk->key);
      if (!s) return s.error();
      work = std::move(*s);
      used_prekey = opk->id;
      if (existing) replaced = std::move(existing);
    }
  } else if (existing) {
    work = existing->clone();
  } else if (previous) {
    work = previous->clone();
    on_previous = true;
  } else {
    return Errc::no_session;
  }
  auto km = decrypt_key(*work, signal_message, rng_);
  if (!km && !key.prekey && !on_previous && previous) {
    // Sent in the pairing of the session a crossing key exchange replaced.
    work = previous->clone();
    on_previous = true;
    km = decrypt_key(*work, signal_message, rng_);
  }
  if (!km) return km.error();
  LegacyDecrypted out;
  if (message.payload) {
    auto pt = open_payload(km->view(), message.iv, *message.payload);
    if (!pt) return pt.error();
    out.plaintext = std::move(*pt);
  }
  // Only now that the whole message decrypted: the session and the spent prekey.
  out.sender = from;
  out.sender_ik = work->peer_ik;
  out.key_exchange = used_prekey.has_value();
  if (on_previous && !key.prekey) {
    // The peer answers in the previous pairing: it becomes current again (as libsignal promotes
    // an archived state that decrypts), so both sides converge on one session.
    stores_.sessions.save_legacy_session(*work);
    if (existing) stores_.sessions.save_previous_legacy_session(*existing);
  } else if (on_previous) {
    stores_.sessions.save_previous_legacy_session(*work);
  } else {
    stores_.sessions.save_legacy_session(*work);
  }
  if (replaced) stores_.sessions.save_previous_legacy_session(*replaced);
  if (used_prekey) {
    stores_.prekeys.remove_prekey(*used_prekey);
    out.prekey_used = true;
    refill_prekeys();
  }
  return out;
}

}  // namespace multiend::oldmemo
