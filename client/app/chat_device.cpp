// Device and plain chat messages (devices found in PEP, not through the archive): encrypting for
// legacy devices with the pinned identities checked, the OMEMO 2 bundle published in PEP, and
// receiving chat messages (legacy OMEMO, OMEMO 2, or unencrypted) into the history.
#include "client/app/device.hpp"

#include "protocol/crypto/xeddsa.hpp"
#include "protocol/omemo/constants.hpp"
#include "protocol/omemo/sce_envelope.hpp"

namespace multiend::client {

oldmemo::LegacyEncryptOutcome Device::encrypt_legacy(const std::vector<omemo::DeviceAddress>& devices,
                                                     const std::map<omemo::DeviceAddress, oldmemo::LegacyBundle>& bundles,
                                                     std::optional<crypto::ByteView> plaintext) {
  std::vector<oldmemo::LegacyRecipient> recipients;
  std::vector<std::pair<omemo::DeviceAddress, boost::system::error_code>> refused;
  auto& trust = store_->trust();
  for (const auto& a : devices) {
    oldmemo::LegacyRecipient r;
    r.address = a;
    auto it = bundles.find(a);
    const bool has_session = store_->legacy().has_legacy_session(a);
    if (!has_session && it != bundles.end()) r.bundle = &it->second;
    auto key = legacy_->identity_for(a, r.bundle);
    if (!key) {
      refused.emplace_back(a, key.error());
      continue;
    }
    if (!trust.record_device_identity(a.jid, a.device, *key)) {
      refused.emplace_back(a, Errc::identity_mismatch);
      continue;
    }
    recipients.push_back(std::move(r));
  }
  auto out = legacy_->encrypt(plaintext, recipients);
  for (auto& f : refused) out.failed.push_back(std::move(f));
  return out;
}

Received Device::receive_chat(const ChatMessage& m, std::int64_t now) {
  auto& db = store_->database();
  if (!db.in_transaction()) throw std::logic_error("Device::receive_chat outside a transaction");
  if (store_->history().has_stanza(m.history_id)) {
    Received dup;
    dup.duplicate = true;
    return dup;
  }
  db.exec("SAVEPOINT receive_chat");
  Received r;
  try {
    r = receive_chat_in_savepoint(m, now);
  } catch (...) {
    db.exec("ROLLBACK TO receive_chat");
    db.exec("RELEASE receive_chat");
    throw;
  }
  if (r.entry && r.entry->type == EntryType::undecryptable && r.entry->reason.starts_with("identity-changed")) {
    db.exec("ROLLBACK TO receive_chat");  // the session a key exchange built never existed
    r.prekey_used = false;
  }
  db.exec("RELEASE receive_chat");
  if (r.entry) store_->history().append(*r.entry);
  return r;
}

bool Device::addressed_to_us(const omemo::DeviceAddress& peer, bool has_key, bool empty, HistoryEntry& e,
                             Received& r) {
  e.from_device = peer.device;
  if (peer.jid == jid() && peer.device == device_id()) return false;  // our own, echoed back
  if (has_key) return true;
  // Empty: ratchet upkeep between others. From a Multiend device (on its account's archive
  // list): what it had for this device came through the archive; this copy is for apps only.
  if (empty || listed(peer)) return false;
  e.reason = "not-encrypted-for-this-device: the sender's app did not encrypt for this device";
  r.entry = std::move(e);
  return false;
}

Received Device::receive_chat_in_savepoint(const ChatMessage& m, std::int64_t now) {
  Received r;
  HistoryEntry e;
  e.stanza_id = m.history_id;
  e.timestamp_us = m.timestamp_us != 0 ? m.timestamp_us : now * 1000000;
  e.live = m.timestamp_us == 0;
  e.from_jid = m.from_bare;
  e.to.push_back(m.to_bare);
  e.direction = m.direction;
  e.via = "pep";
  e.type = EntryType::undecryptable;
  if (m.omemo2 || m.omemo2_error) return receive_omemo2_chat(m, std::move(e));
  if (!m.legacy && !m.legacy_error) {
    // Never dropped, never taken for an encrypted one.
    e.protocol = "none";
    e.type = EntryType::message;
    e.body = m.body.value_or("");
    e.trust = "";
    r.entry = std::move(e);
    return r;
  }
  e.protocol = "oldmemo";
  if (m.legacy_error) {
    e.reason = "malformed: " + *m.legacy_error;
    r.entry = std::move(e);
    return r;
  }
  const auto& enc = *m.legacy;
  const bool empty = !enc.payload;
  const omemo::DeviceAddress peer{m.from_bare, enc.sid};
  if (!addressed_to_us(peer, !enc.keys_for(device_id()).empty(), empty, e, r)) return r;
  auto d = legacy_->decrypt(enc, m.from_bare);
  if (!d) {
    if (d.error() == Errc::duplicate_message) return r;
    if (empty) return r;
    e.reason = reason_for(d.error(), peer);
    r.entry = std::move(e);
    return r;
  }
  // Pinned in Edwards form with sign bit 0: the trust store compares the Curve25519 form.
  auto ed = crypto::curve25519_to_ed25519(d->sender_ik, false);
  r.prekey_used = d->prekey_used;
  if (!ed) {
    e.reason = "malformed: the sender's identity key is not a valid curve point";
    r.entry = std::move(e);
    return r;
  }
  if (!admit_sender(peer, *ed, d->plaintext.has_value(), e, r)) return r;
  if (d->key_exchange) r.empty_reply_to.push_back(peer);
  if (!d->plaintext) return r;  // a KeyTransport message: nothing to show
  e.type = EntryType::message;
  e.body.assign(reinterpret_cast<const char*>(d->plaintext->data()), d->plaintext->size());
  r.entry = std::move(e);
  return r;
}

Received Device::receive_omemo2_chat(const ChatMessage& m, HistoryEntry e) {
  Received r;
  e.protocol = "omemo2";
  if (m.omemo2_error) {
    e.reason = "malformed: " + *m.omemo2_error;
    r.entry = std::move(e);
    return r;
  }
  const auto& enc = *m.omemo2;
  const bool empty = !enc.payload;
  const omemo::DeviceAddress peer{m.from_bare, enc.sid};
  if (!addressed_to_us(peer, enc.find_key(jid(), device_id()) != nullptr, empty, e, r)) return r;
  auto d = manager_->decrypt(enc, m.from_bare);
  if (!d) {
    if (d.error() == Errc::duplicate_message || empty) return r;
    e.reason = reason_for(d.error(), peer);
    r.entry = std::move(e);
    return r;
  }
  r.prekey_used = d->prekey_used;
  if (!admit_sender(peer, d->sender_ik, d->plaintext.has_value(), e, r)) return r;
  if (d->send_empty_reply) r.omemo2_reply_to.push_back(peer);
  if (!d->plaintext) return r;
  open_envelope(std::string_view(reinterpret_cast<const char*>(d->plaintext->data()), d->plaintext->size()), m.from_bare,
                e);
  r.entry = std::move(e);
  return r;
}

omemo::Bundle Device::pep_bundle() {
  auto& pool = store_->pep_prekeys();
  auto tx = store_->begin();
  for (std::size_t have = pool.visible_prekeys().size(); have < omemo::kPreKeyCount; ++have) {
    const std::uint32_t id = store_->allocate_prekey_id();
    if (id == 0 || id > omemo::kMaxId) throw std::runtime_error("prekey ids exhausted");
    pool.save_prekey({id, crypto::X25519KeyPair::generate(rng_), false});
  }
  tx.commit();
  omemo::Bundle b = manager_->bundle();
  b.prekeys = pool.visible_prekeys();
  return b;
}

}  // namespace multiend::client
