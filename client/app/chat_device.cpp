// Device's legacy OMEMO side: encrypting for legacy devices with the pinned identities checked,
// and receiving plain chat messages (legacy OMEMO, or unencrypted) into the history.
#include "client/app/device.hpp"

#include "protocol/crypto/xeddsa.hpp"

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

Received Device::receive_chat_in_savepoint(const ChatMessage& m, std::int64_t now) {
  Received r;
  HistoryEntry e;
  e.stanza_id = m.history_id;
  e.timestamp_us = m.timestamp_us != 0 ? m.timestamp_us : now * 1000000;
  e.from_jid = m.from_bare;
  e.to.push_back(m.to_bare);
  e.direction = m.direction;
  e.via = "pep";
  e.type = EntryType::undecryptable;
  if (!m.legacy && !m.legacy_error) {
    if (m.omemo2) {
      e.protocol = "omemo2";
      e.reason = "unsupported: OMEMO 2 in a chat message is not read yet";
    } else {
      // Never dropped, never taken for an encrypted one.
      e.protocol = "none";
      e.type = EntryType::message;
      e.body = m.body.value_or("");
      e.trust = "";
    }
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
  e.from_device = enc.sid;
  const bool empty = !enc.payload;
  if (m.from_bare == jid() && enc.sid == device_id()) return r;  // our own, echoed back
  if (enc.keys_for(device_id()).empty()) {
    if (empty) return r;
    // From a Multiend device (on its account's archive list): what it has for this device came
    // through the archive; this copy carries keys for someone's legacy apps only.
    if (listed({m.from_bare, enc.sid})) return r;
    e.reason = "not-encrypted-for-this-device: the sender's app did not encrypt for this device";
    r.entry = std::move(e);
    return r;
  }
  const omemo::DeviceAddress peer{m.from_bare, enc.sid};
  auto d = legacy_->decrypt(enc, m.from_bare);
  if (!d) {
    if (d.error() == Errc::duplicate_message) return r;
    if (empty) return r;
    e.reason = reason_for(d.error(), peer);
    r.entry = std::move(e);
    return r;
  }
  auto ed = crypto::curve25519_to_ed25519(d->sender_ik, false);
  if (!ed || !store_->trust().record_device_identity(m.from_bare, enc.sid, *ed)) {
    e.reason = "identity-changed: device " + std::to_string(enc.sid) + " of " + m.from_bare +
               " now presents another identity key; refused";
    r.entry = std::move(e);
    return r;
  }
  e.trust = trust_label(peer);
  r.prekey_used = d->prekey_used;
  if (e.trust == "distrusted") {
    if (!d->plaintext) return r;
    e.reason = "distrusted: device " + std::to_string(peer.device) + " of " + peer.jid +
               " is distrusted; its messages are not shown";
    r.entry = std::move(e);
    return r;
  }
  if (d->key_exchange) r.empty_reply_to.push_back(peer);
  if (!d->plaintext) return r;  // a KeyTransport message: nothing to show
  e.type = EntryType::message;
  e.body.assign(reinterpret_cast<const char*>(d->plaintext->data()), d->plaintext->size());
  r.entry = std::move(e);
  return r;
}

}  // namespace multiend::client
