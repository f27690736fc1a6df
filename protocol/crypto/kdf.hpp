// HKDF-SHA-256 (OpenSSL EVP_KDF, fetched once) and HMAC-SHA-256 (libsodium).
#pragma once

#include <string_view>

#include "protocol/crypto/secret.hpp"

namespace multiend::crypto {

// Fills `out` (1..8160 bytes) with HKDF-SHA-256(ikm, salt, info). An empty salt equals 32 zero bytes.
void hkdf_sha256(ByteView ikm, ByteView salt, std::string_view info, std::span<std::uint8_t> out);

// Full 32-byte HMAC-SHA-256 tag; keys of any length.
Secret<32> hmac_sha256(ByteView key, ByteView data);
// The same over the concatenation a ‖ b, without copying.
Secret<32> hmac_sha256(ByteView key, ByteView a, ByteView b);

}  // namespace multiend::crypto
