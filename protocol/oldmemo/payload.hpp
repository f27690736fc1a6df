// Legacy OMEMO payloads (oldmemo.md §4): the body text under AES-128-GCM with a fresh 16-byte
// key and 12-byte IV shared by all recipients; each device's session carries key ‖ tag (32
// bytes). An empty (KeyTransport) message carries 16 random bytes and an IV, no payload.
#pragma once

#include "protocol/crypto/random.hpp"
#include "protocol/crypto/secret.hpp"
#include "protocol/error.hpp"

namespace multiend::oldmemo {

struct SealedPayload {
  crypto::Bytes iv;                 // 12 bytes
  crypto::Bytes ciphertext;         // without the tag; empty for an empty message
  crypto::SecretBytes key_material; // key ‖ tag (32), or the 16 transported bytes
};

SealedPayload seal_payload(crypto::ByteView plaintext, crypto::Rng& rng);
SealedPayload empty_message(crypto::Rng& rng);

// Errc::bad_element when the key material is shorter than key ‖ 16-byte tag (pre-2017
// senders put the tag on the payload: refused, as Conversations and oldmemo do);
// Errc::mac_mismatch when the tag does not verify.
Result<crypto::SecretBytes> open_payload(crypto::ByteView key_material, crypto::ByteView iv, crypto::ByteView ciphertext);

}  // namespace multiend::oldmemo
