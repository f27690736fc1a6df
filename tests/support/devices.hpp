// In-memory OMEMO devices for unit tests: a MemoryStore, a seeded RNG and a SessionManager.
#pragma once

#include <memory>

#include "protocol/omemo/memory_store.hpp"
#include "protocol/omemo/session_manager.hpp"

namespace multiend::test {

struct Device {
  omemo::MemoryStore store;
  crypto::DeterministicRng rng;
  omemo::SessionManager mgr;

  Device(std::string jid, std::uint32_t id, std::uint64_t seed)
      : rng(seed), mgr(omemo::SessionManager::open(store.stores(), rng, std::move(jid), id, 0)) {}

  omemo::DeviceAddress address() const { return {mgr.jid(), mgr.device_id()}; }

  // Encrypts `text` for the given devices (bundles fetched from them directly).
  omemo::EncryptedMessage send(const std::string& text, std::initializer_list<Device*> to) {
    std::vector<omemo::Bundle> bundles;
    bundles.reserve(to.size());
    std::vector<omemo::Recipient> rs;
    for (Device* d : to) bundles.push_back(d->mgr.bundle());
    std::size_t i = 0;
    for (Device* d : to) rs.push_back({d->address(), &bundles[i++]});
    auto out = mgr.encrypt(crypto::ByteView(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()), rs);
    if (!out.failed.empty()) throw std::runtime_error("encrypt failed: " + out.failed[0].second.message());
    return std::move(out.message);
  }

  omemo::EncryptedMessage send_empty(Device& to) {
    auto b = to.mgr.bundle();
    omemo::Recipient r{to.address(), &b};
    return std::move(mgr.encrypt(std::nullopt, std::span(&r, 1)).message);
  }

  Result<omemo::Decrypted> receive(const omemo::EncryptedMessage& m, const Device& from) {
    return mgr.decrypt(m, from.mgr.jid());
  }

  std::string receive_text(const omemo::EncryptedMessage& m, const Device& from) {
    auto d = receive(m, from);
    if (!d) throw std::runtime_error("decrypt failed: " + d.error().message());
    if (!d->plaintext) return "<empty>";
    return std::string(reinterpret_cast<const char*>(d->plaintext->data()), d->plaintext->size());
  }
};

// Confirms the session both ways, so later messages carry no key-exchange wrapper.
inline void handshake(Device& a, Device& b) {
  if (b.receive_text(a.send("hello", {&b}), a) != "hello" || a.receive_text(b.send_empty(a), b) != "<empty>")
    throw std::runtime_error("handshake failed");
}

inline std::unique_ptr<Device> make_device(std::string jid, std::uint32_t id, std::uint64_t seed) {
  return std::make_unique<Device>(std::move(jid), id, seed);
}

}  // namespace multiend::test
