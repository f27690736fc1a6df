// The XEP-0114 component handshake digest: lowercase hex of SHA-1(stream id ‖ shared secret)
// (OpenSSL EVP, SHA-1 fetched once). It owns only the digest; the stream exchange is the
// caller's. The digest is a credential — it authenticates the component for this stream —
// so never log it, like the secret itself.
#pragma once

#include <string>
#include <string_view>

namespace multiend::crypto {

// 40 lowercase hex characters. Throws std::runtime_error only if OpenSSL has no SHA-1 (setup).
std::string component_handshake_digest(std::string_view stream_id, std::string_view secret);

}  // namespace multiend::crypto
