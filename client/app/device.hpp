// One device: its state file and its OMEMO session manager, and what it does with a message
// from the archive (decrypt, check, store). Knows no network: client.hpp drives it.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client/app/chat_message.hpp"
#include "client/component/component_api.hpp"
#include "client/store/sqlite_store.hpp"
#include "protocol/crypto/random.hpp"
#include "protocol/oldmemo/legacy_manager.hpp"
#include "protocol/omemo/session_manager.hpp"

namespace multiend::client {

// What one archived message did to this device.
struct Received {
  std::optional<HistoryEntry> entry;  // nullopt: nothing to show (duplicate, empty message, …)
  bool duplicate = false;             // already in the history
  // Devices to answer with an empty OMEMO message (key-exchange completion, heartbeat).
  std::vector<omemo::DeviceAddress> empty_reply_to;
  // A device whose message failed to decrypt and with which no session exists at all: send it
  // a fresh key exchange (an empty message built from its bundle, identity checked).
  std::optional<omemo::DeviceAddress> repair;
  bool prekey_used = false;  // republish the bundle
  // A plain OMEMO 2 app's key exchange (by chat message): answer with an empty OMEMO 2 chat message.
  std::vector<omemo::DeviceAddress> omemo2_reply_to;
};

// The "undecryptable" reason for a decryption failure from `peer` (docs/cli.md).
std::string reason_for(const boost::system::error_code& ec, const omemo::DeviceAddress& peer);

class Device {
 public:
  // Opens an existing state file (ClientError(state) if it holds no device).
  static std::unique_ptr<Device> open(const std::filesystem::path& path, crypto::Rng& rng, std::int64_t now);
  // Creates a new device in a new state file (ClientError(usage) if the file exists).
  static std::unique_ptr<Device> create(const std::filesystem::path& path, const std::string& bare_jid,
                                        crypto::Rng& rng, std::int64_t now);

  SqliteStore& store() noexcept { return *store_; }
  omemo::SessionManager& manager() noexcept { return *manager_; }
  oldmemo::LegacyManager& legacy() noexcept { return *legacy_; }
  const std::string& jid() const noexcept { return manager_->jid(); }
  std::uint32_t device_id() const noexcept { return manager_->device_id(); }

  // Decrypts and stores one archived message. Call inside a transaction of store(); the
  // message's own effects sit in a savepoint, so a refused identity key leaves only the
  // "undecryptable" entry behind. `repair` asks for session repair on failure.
  Received receive(const component::Archived& archived, std::int64_t now, bool repair);

  // Encrypts `plaintext` (an empty OMEMO message without it) for `devices`, building sessions
  // from `bundles` where none exists. Every identity key used (a session's, or a bundle's for a
  // new session) is checked against the trust store first: unknown devices are recorded (blind
  // trust), a device whose key differs from the pinned one is refused (Errc::identity_mismatch
  // in `failed`). Who is *allowed* to get content (usable(), distrusted) is the caller's plan.
  // Call inside a transaction of store().
  omemo::EncryptOutcome encrypt(const std::vector<omemo::DeviceAddress>& devices,
                                const std::map<omemo::DeviceAddress, omemo::Bundle>& bundles,
                                std::optional<crypto::ByteView> plaintext);

  // The same for legacy OMEMO devices (legacy_device.cpp): the identity a session or bundle
  // names is pinned and checked in its Curve25519 form, which both generations share.
  oldmemo::LegacyEncryptOutcome encrypt_legacy(const std::vector<omemo::DeviceAddress>& devices,
                                               const std::map<omemo::DeviceAddress, oldmemo::LegacyBundle>& bundles,
                                               std::optional<crypto::ByteView> plaintext);
  // A plain chat message (live or a Carbons copy): decrypted when it carries legacy OMEMO,
  // shown with protocol "none" when it carries only a body, stored once under its history id.
  // Call inside a transaction of store().
  Received receive_chat(const ChatMessage& m, std::int64_t now);

  // The OMEMO 2 bundle to publish in PEP: the shared signed prekey and identity, and a prekey
  // pool of its own (topped up to kPreKeyCount), never the component's: PEP gives all of them
  // to anyone, the component each to one requester.
  omemo::Bundle pep_bundle();

  // Is this device on its account's device list as stored here?
  bool listed(const omemo::DeviceAddress& peer);
  // verified, blind (undecided and used), undecided (not used: another device of the account is
  // verified, or no key known), distrusted.
  std::string trust_label(const omemo::DeviceAddress& peer);

  // Adds `n` fresh one-time prekeys; drops the oldest beyond `cap` visible ones (long claimed).
  void add_prekeys(std::size_t n, std::size_t cap);

 private:
  Device(std::unique_ptr<SqliteStore> store, crypto::Rng& rng) : store_(std::move(store)), rng_(rng) {}
  Received receive_in_savepoint(const component::Archived& archived, std::int64_t now, bool repair);

  Received receive_chat_in_savepoint(const ChatMessage& m, std::int64_t now);
  Received receive_omemo2_chat(const ChatMessage& m, HistoryEntry e);
  // Before decrypting a chat message from `peer`: false when it ends there (our own echo; no key
  // for this device: reported, unless it is empty or from a Multiend device).
  bool addressed_to_us(const omemo::DeviceAddress& peer, bool has_key, bool empty, HistoryEntry& e, Received& r);
  // After a decryption: pins the sender's identity key and labels its trust (e.trust). False
  // when that ends it: an identity changed (r.entry says so) or a distrusted sender (r.entry
  // says so when the message had content).
  bool admit_sender(const omemo::DeviceAddress& peer, const crypto::Ed25519Public& ik, bool has_content,
                    HistoryEntry& e, Received& r);
  // The body of a decrypted OMEMO 2 payload (an XEP-0420 envelope) from `sender_bare` into `e`:
  // a message, or undecryptable with the reason (malformed, or naming another sender).
  static void open_envelope(std::string_view plaintext, const std::string& sender_bare, HistoryEntry& e);

  std::unique_ptr<SqliteStore> store_;
  crypto::Rng& rng_;
  std::optional<omemo::SessionManager> manager_;
  std::optional<oldmemo::LegacyManager> legacy_;
};

// History sync for the length of one catch-up (SessionManager::begin_history_sync: used
// prekeys are hidden, empty replies queued). finish() ends it and returns who needs an empty
// message. If the catch-up ends early instead (an exception), the destructor ends it anyway:
// the prekeys hidden so far are deleted and the queue dropped, so no used prekey stays loadable
// and later receives do not run in history-sync mode.
class HistorySync {
 public:
  explicit HistorySync(Device& device);
  ~HistorySync();
  HistorySync(const HistorySync&) = delete;
  HistorySync& operator=(const HistorySync&) = delete;
  std::vector<omemo::DeviceAddress> finish();

 private:
  Device* device_;
};

}  // namespace multiend::client
