// Standard base64 with padding (libsodium). Decoding accepts whitespace and line breaks, as
// twomemo's output may contain them; anything else malformed is Errc::bad_base64.
#pragma once

#include <string>
#include <string_view>

#include "protocol/crypto/secret.hpp"
#include "protocol/error.hpp"

namespace multiend::crypto {

std::string base64_encode(ByteView data);
// max_decoded bounds the output so oversized input is refused before allocation.
// Constant-time (libsodium): for anything that may be secret.
Result<Bytes> base64_decode(std::string_view text, std::size_t max_decoded = 1 << 20);
// The same accept/reject decisions and output (whitespace ignored, padding required, unused
// trailing bits zero), through OpenSSL's table decoder, several times faster: for public data
// only — OMEMO ciphertexts and keys on the wire, which the component decodes per message.
Result<Bytes> base64_decode_public(std::string_view text, std::size_t max_decoded = 1 << 20);

}  // namespace multiend::crypto
