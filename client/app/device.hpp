// One device: its state file and its OMEMO session manager, and what it does with a message
// from the archive (decrypt, check, store). Knows no network: client.hpp drives it.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client/component/component_api.hpp"
#include "client/store/sqlite_store.hpp"
#include "protocol/crypto/random.hpp"
#include "protocol/omemo/session_manager.hpp"

namespace multiend::client {

// What one archived message did to this device.
struct Received {
  std::optional<HistoryEntry> entry;  // nullopt: nothing to show (duplicate, empty message, …)
  bool duplicate = false;             // already in the history
  // Devices to answer with an empty OMEMO message (key-exchange completion, heartbeat).
  std::vector<omemo::DeviceAddress> empty_reply_to;
  // A device whose message failed to decrypt and whose session was dropped: send it a fresh
  // key exchange (an empty message built from its bundle).
  std::optional<omemo::DeviceAddress> repair;
  bool prekey_used = false;  // republish the bundle
};

class Device {
 public:
  // Opens an existing state file (ClientError(state) if it holds no device).
  static std::unique_ptr<Device> open(const std::filesystem::path& path, crypto::Rng& rng, std::int64_t now);
  // Creates a new device in a new state file (ClientError(usage) if the file exists).
  static std::unique_ptr<Device> create(const std::filesystem::path& path, const std::string& bare_jid,
                                        crypto::Rng& rng, std::int64_t now);

  SqliteStore& store() noexcept { return *store_; }
  omemo::SessionManager& manager() noexcept { return *manager_; }
  const std::string& jid() const noexcept { return manager_->jid(); }
  std::uint32_t device_id() const noexcept { return manager_->device_id(); }

  // Decrypts and stores one archived message. Call inside a transaction of store(); the
  // message's own effects sit in a savepoint, so a refused identity key leaves only the
  // "undecryptable" entry behind. `repair` asks for session repair on failure.
  Received receive(const component::Archived& archived, std::int64_t now, bool repair);

  // Adds `n` fresh one-time prekeys; drops the oldest beyond `cap` visible ones (long claimed).
  void add_prekeys(std::size_t n, std::size_t cap);

 private:
  Device(std::unique_ptr<SqliteStore> store, crypto::Rng& rng) : store_(std::move(store)), rng_(rng) {}
  Received receive_in_savepoint(const component::Archived& archived, std::int64_t now, bool repair);

  std::unique_ptr<SqliteStore> store_;
  crypto::Rng& rng_;
  std::optional<omemo::SessionManager> manager_;
};

}  // namespace multiend::client
