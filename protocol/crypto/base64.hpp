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
Result<Bytes> base64_decode(std::string_view text, std::size_t max_decoded = 1 << 20);

}  // namespace multiend::crypto
