// AES-128-GCM (OpenSSL, algorithm fetched once) as legacy OMEMO uses it for payloads: no AAD,
// a full 16-byte tag kept apart from the ciphertext. Knows nothing of OMEMO formats.
#pragma once

#include <array>
#include <cstdint>

#include "protocol/crypto/secret.hpp"
#include "protocol/error.hpp"

namespace multiend::crypto {

inline constexpr std::size_t kGcmTagSize = 16;

struct GcmSealed {
  Bytes ciphertext;  // as long as the plaintext
  std::array<std::uint8_t, kGcmTagSize> tag{};
};

// `iv`: 12 bytes (what we send); 16 is accepted as well (old Conversations). Other sizes throw.
GcmSealed aes128_gcm_encrypt(const Secret<16>& key, ByteView iv, ByteView plaintext);
// Errc::mac_mismatch when the tag does not verify (nothing is returned then).
Result<SecretBytes> aes128_gcm_decrypt(const Secret<16>& key, ByteView iv, ByteView ciphertext, ByteView tag);

}  // namespace multiend::crypto
