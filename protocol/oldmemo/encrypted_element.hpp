// The legacy <encrypted xmlns='eu.siacs.conversations.axolotl'> element (XEP-0384 0.3 §4.5;
// oldmemo.md §1.4) as a typed value: a flat list of keys addressed by device id only, the IV,
// an optional payload. Serialising writes exactly what oldmemo's closed schema accepts
// (prekey='true' only on key exchanges, sid and iv always); parsing follows what peers send
// (prekey 'true'/'1' is a key exchange, absent/'false'/'0' is not) and bounds every size.
#pragma once

#include <optional>
#include <vector>

#include "protocol/crypto/secret.hpp"
#include "protocol/error.hpp"
#include "protocol/xml/element.hpp"

namespace multiend::oldmemo {

struct LegacyKey {
  std::uint32_t rid = 0;
  bool prekey = false;  // PreKeySignalMessage, else SignalMessage
  crypto::Bytes data;
};

struct LegacyEncrypted {
  std::uint32_t sid = 0;
  std::vector<LegacyKey> keys;
  crypto::Bytes iv;                      // 12 bytes (16 accepted from old senders)
  std::optional<crypto::Bytes> payload;  // AES-128-GCM ciphertext without its tag; absent when empty
  // The keys for our device (Conversations tries each one; several are allowed).
  std::vector<const LegacyKey*> keys_for(std::uint32_t rid) const;
};

xml::Element encrypted_to_xml(const LegacyEncrypted& m);
// Errc::bad_element / bad_base64 / limit_exceeded.
Result<LegacyEncrypted> encrypted_from_xml(const xml::Element& e);

}  // namespace multiend::oldmemo
