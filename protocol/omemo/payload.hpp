// OMEMO 2 payload encryption (XEP-0384 §4.4): a fresh 32-byte key per message, HKDF to
// AES/HMAC/IV with "OMEMO Payload", AES-256-CBC, a 16-byte HMAC over the ciphertext only.
// The 48 bytes key ‖ tag are what each device's ratchet carries.
#pragma once

#include "protocol/crypto/random.hpp"
#include "protocol/crypto/secret.hpp"
#include "protocol/error.hpp"

namespace multiend::omemo {

struct EncryptedPayload {
  crypto::Bytes ciphertext;
  crypto::Secret<48> key_material;  // key(32) ‖ tag(16)
};

EncryptedPayload encrypt_payload(crypto::ByteView plaintext, crypto::Rng& rng);
// The fixed-key variant, for test vectors.
EncryptedPayload encrypt_payload(crypto::ByteView plaintext, const crypto::Secret<32>& key);

// Checks the tag first, then decrypts. Errc::mac_mismatch, Errc::bad_padding, Errc::bad_element
// (key material of the wrong size).
Result<crypto::SecretBytes> decrypt_payload(crypto::ByteView ciphertext, crypto::ByteView key_material);

}  // namespace multiend::omemo
