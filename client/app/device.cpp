#include "client/app/device.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "client/app/errors.hpp"
#include "protocol/crypto/secret.hpp"
#include "protocol/omemo/constants.hpp"
#include "protocol/omemo/sce_envelope.hpp"
#include "protocol/xml/serializer.hpp"
#include "protocol/xmpp/namespaces.hpp"

namespace multiend::client {
namespace {

// Repair (a fresh key exchange) only when our side lost what the sender relies on, and only
// when no session with that device exists at all (SessionManager::request_repair): a key
// exchange naming an unknown prekey can be injected by anyone and is not authenticated, so it
// must never cost a working session. A MAC failure on a working session is tampering, and an
// old counter a replay or a re-read.
bool needs_repair(const boost::system::error_code& ec) {
  return ec == Errc::no_session || ec == Errc::unknown_prekey || ec == Errc::unknown_signed_prekey;
}

}  // namespace

std::string reason_for(const boost::system::error_code& ec, const omemo::DeviceAddress& peer) {
  const std::string who = std::to_string(peer.device) + " of " + peer.jid;
  if (ec == Errc::unknown_prekey) return "prekey-gone: the one-time prekey it used no longer exists here";
  if (ec == Errc::no_session) return "no-session: no session with the sending device";
  if (ec == Errc::mac_mismatch) return "tampered: authentication failed";
  if (ec == Errc::too_many_skipped)
    return "gap-too-large: more than " + std::to_string(omemo::kMaxChainJump) +
           " messages of this session are missing; run 'multiend reset-session " + peer.jid + " " +
           std::to_string(peer.device) + "' to start a new one";
  if (ec == Errc::limit_exceeded) return "limit: too many sessions with the devices of " + peer.jid;
  return "decryption-failed: " + ec.message() + " (device " + who + ")";
}

std::unique_ptr<Device> Device::open(const std::filesystem::path& path, crypto::Rng& rng, std::int64_t now) {
  std::error_code fec;
  if (!std::filesystem::exists(path, fec))
    throw ClientError(ErrorKind::state, "state file '" + path.string() + "' does not exist (run 'multiend init' first)");
  auto store = std::make_unique<SqliteStore>(path);
  auto id = store->load_identity();
  if (!id) throw ClientError(ErrorKind::state, "state file '" + path.string() + "' holds no device");
  std::unique_ptr<Device> d(new Device(std::move(store), rng));
  auto tx = d->store_->begin();
  d->manager_.emplace(omemo::SessionManager::open(d->store_->stores(), rng, id->jid, id->device_id, now));
  d->legacy_.emplace(d->store_->legacy_stores(), rng);
  tx.commit();
  return d;
}

std::unique_ptr<Device> Device::create(const std::filesystem::path& path, const std::string& bare_jid,
                                       crypto::Rng& rng, std::int64_t now) {
  std::error_code fec;
  if (std::filesystem::exists(path, fec))
    throw ClientError(ErrorKind::usage, "state file '" + path.string() + "' exists already; a device is created once");
  auto store = std::make_unique<SqliteStore>(path);
  std::unique_ptr<Device> d(new Device(std::move(store), rng));
  auto tx = d->store_->begin();
  d->manager_.emplace(omemo::SessionManager::open(d->store_->stores(), rng, bare_jid, 0, now));
  d->legacy_.emplace(d->store_->legacy_stores(), rng);
  tx.commit();
  return d;
}

void Device::add_prekeys(std::size_t n, std::size_t cap) {
  auto tx = store_->begin();
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t id = store_->allocate_prekey_id();
    if (id == 0 || id > omemo::kMaxId) throw std::runtime_error("prekey ids exhausted");
    store_->save_prekey({id, crypto::X25519KeyPair::generate(rng_), false});
  }
  auto visible = store_->visible_prekeys();
  if (visible.size() > cap) {
    std::sort(visible.begin(), visible.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    for (std::size_t i = 0; i + cap < visible.size(); ++i) store_->remove_prekey(visible[i].id);
  }
  tx.commit();
}

Received Device::receive(const component::Archived& archived, std::int64_t now, bool repair) {
  auto& db = store_->database();
  if (!db.in_transaction()) throw std::logic_error("Device::receive outside a transaction");
  if (store_->history().has_stanza(archived.stanza_id)) {
    Received dup;
    dup.duplicate = true;
    return dup;
  }
  db.exec("SAVEPOINT receive");
  Received r;
  try {
    r = receive_in_savepoint(archived, now, repair);
  } catch (...) {
    db.exec("ROLLBACK TO receive");
    db.exec("RELEASE receive");
    throw;
  }
  if (r.entry && r.entry->type == EntryType::undecryptable && r.entry->reason.starts_with("identity-changed")) {
    // Undo the session the key exchange built and the prekey it used; keep the report.
    db.exec("ROLLBACK TO receive");
    r.empty_reply_to.clear();
    r.prekey_used = false;
    manager_->discard_queued_reply({r.entry->from_jid, r.entry->from_device});
  }
  db.exec("RELEASE receive");
  if (r.entry) store_->history().append(*r.entry);
  return r;
}

bool Device::listed(const omemo::DeviceAddress& peer) {
  auto list = store_->load_device_list(peer.jid);
  return list && list->contains(peer.device);
}

std::string Device::trust_label(const omemo::DeviceAddress& peer) {
  auto& trust = store_->trust();
  auto t = trust.trust_of(peer.jid, peer.device);
  if (!t) return "undecided";
  switch (*t) {
    case Trust::verified: return "verified";
    case Trust::distrusted: return "distrusted";
    case Trust::undecided_blind: break;
  }
  return trust.usable(peer.jid, peer.device) ? "blind" : "undecided";
}

omemo::EncryptOutcome Device::encrypt(const std::vector<omemo::DeviceAddress>& devices,
                                      const std::map<omemo::DeviceAddress, omemo::Bundle>& bundles,
                                      std::optional<crypto::ByteView> plaintext) {
  // The one place sessions are used or built for sending: each peer identity key (the
  // session's, or the bundle's for a new session) must be the one pinned for that device.
  std::vector<omemo::Recipient> recipients;
  std::vector<std::pair<omemo::DeviceAddress, boost::system::error_code>> refused;
  auto& trust = store_->trust();
  for (const auto& a : devices) {
    omemo::Recipient r;
    r.address = a;
    auto it = bundles.find(a);
    std::optional<crypto::Ed25519Public> key;
    if (auto session = store_->load_session(a)) {
      key = session->peer_ik;
    } else if (it != bundles.end()) {
      key = it->second.ik;
      r.bundle = &it->second;
    }
    if (key && !(a.jid == jid() && a.device == device_id())) {
      if (!trust.record_device_identity(a.jid, a.device, *key)) {
        refused.emplace_back(a, Errc::identity_mismatch);
        continue;
      }
    }
    recipients.push_back(std::move(r));
  }
  auto out = manager_->encrypt(plaintext, recipients);
  for (auto& f : refused) out.failed.push_back(std::move(f));
  return out;
}

bool Device::admit_sender(const omemo::DeviceAddress& peer, const crypto::Ed25519Public& ik, bool has_content,
                          HistoryEntry& e, Received& r) {
  if (!store_->trust().record_device_identity(peer.jid, peer.device, ik)) {
    e.reason = "identity-changed: device " + std::to_string(peer.device) + " of " + peer.jid +
               " now presents another identity key; refused";
    r.entry = std::move(e);
    return false;
  }
  e.trust = trust_label(peer);
  if (e.trust != "distrusted") return true;
  // Decrypted only to keep the session in step; the user said never to believe this device.
  if (has_content) {
    e.reason = "distrusted: device " + std::to_string(peer.device) + " of " + peer.jid +
               " is distrusted; its messages are not shown";
    r.entry = std::move(e);
  }
  return false;
}

Received Device::receive_in_savepoint(const component::Archived& archived, std::int64_t now, bool repair) {
  Received r;
  HistoryEntry e;
  e.stanza_id = archived.stanza_id;
  e.timestamp_us = archived.stored_us;
  e.type = EntryType::undecryptable;
  auto env = component::open_archived(archived);
  if (!env) {
    e.from_jid = std::string(archived.message.attr("from").value_or(""));
    if (auto j = Jid::parse(e.from_jid)) e.from_jid = j->bare_string();
    e.reason = "malformed: " + env.error().message();
    r.entry = std::move(e);
    return r;
  }
  e.from_jid = env->sender_bare;
  e.from_device = env->encrypted.sid;
  e.to = env->recipients;
  const bool own = env->sender_bare == jid();
  e.direction = own ? Direction::out : Direction::in;
  const bool empty = !env->encrypted.payload;

  if (own && env->encrypted.sid == device_id()) {
    if (empty) return r;
    e.trust = "own";
    // Our own message: normally in the history since its receipt. If the process died before
    // the receipt, the outbox still has it, and the archive now proves it was stored.
    const xml::Element* origin = archived.message.child("origin-id", xmpp::kSidNs);
    const std::string origin_id(origin ? origin->attr("id").value_or("") : "");
    if (auto o = origin_id.empty() ? std::nullopt : store_->outbox().find(origin_id)) {
      store_->outbox().remove(o->origin_id);
      e.type = EntryType::message;
      e.body = o->body;
      e.to = o->recipients;
      r.entry = std::move(e);
      return r;
    }
    e.reason = "sent-by-this-device: its plaintext was not kept";
    r.entry = std::move(e);
    return r;
  }

  if (!env->encrypted.find_key(jid(), device_id())) {
    if (empty) return r;  // ratchet maintenance between other devices
    e.reason = "not-encrypted-for-this-device: sent before this device joined, or to its other devices only";
    r.entry = std::move(e);
    return r;
  }

  const omemo::DeviceAddress peer{env->sender_bare, env->encrypted.sid};
  // Only devices on their account's device list (the caller refreshed the stored list): no
  // session is ever built, and no prekey spent, for a device id someone made up.
  if (!listed(peer)) {
    if (empty) return r;
    e.trust = "unlisted";
    e.reason = "unlisted: device " + std::to_string(peer.device) + " is not on the device list of " + peer.jid +
               "; not decrypted";
    r.entry = std::move(e);
    return r;
  }

  auto d = manager_->decrypt(env->encrypted, env->sender_bare);
  if (!d) {
    // A message whose key is gone cannot be authenticated: a re-read, a replay or a forgery.
    // XEP-0384 says to ignore duplicates silently, and a forgery must not be attributed.
    if (d.error() == Errc::duplicate_message) return r;
    if (repair && needs_repair(d.error()) && manager_->request_repair(peer, now)) r.repair = peer;
    if (empty) return r;
    e.reason = reason_for(d.error(), peer);
    r.entry = std::move(e);
    return r;
  }
  r.prekey_used = d->prekey_used;
  if (!admit_sender(peer, d->sender_ik, d->plaintext.has_value(), e, r)) return r;
  if (d->send_empty_reply) r.empty_reply_to.push_back(peer);
  if (!d->plaintext) return r;  // an empty message: nothing to show

  open_envelope(std::string_view(reinterpret_cast<const char*>(d->plaintext->data()), d->plaintext->size()),
                env->sender_bare, e);
  r.entry = std::move(e);
  return r;
}

HistorySync::HistorySync(Device& device) : device_(&device) { device.manager().begin_history_sync(); }

std::vector<omemo::DeviceAddress> HistorySync::finish() {
  auto tx = device_->store().begin();
  auto out = device_->manager().end_history_sync();
  tx.commit();
  device_ = nullptr;
  return out;
}

HistorySync::~HistorySync() {
  if (!device_) return;
  try {
    auto tx = device_->store().begin();
    (void)device_->manager().end_history_sync();
    tx.commit();
  } catch (const std::exception& e) {
    // The state file is unusable (the reason the catch-up failed, most likely); the next
    // catch-up ends history sync again and deletes what is hidden.
    spdlog::error("could not end history sync: {}", e.what());
  }
}

void Device::open_envelope(std::string_view plaintext, const std::string& sender_bare, HistoryEntry& e) {
  auto envelope = omemo::parse_envelope(plaintext);
  if (!envelope) {
    e.reason = "bad-envelope: " + envelope.error().message();
  } else if (envelope->from && *envelope->from != sender_bare) {
    // XEP-0420: the affix must name the sender, or the content was lifted from elsewhere.
    e.reason = "bad-envelope: it names another sender";
  } else {
    e.type = EntryType::message;
    e.body = envelope->body().value_or("");
  }
}

}  // namespace multiend::client
