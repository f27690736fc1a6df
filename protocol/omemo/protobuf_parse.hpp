// Parsing untrusted protobuf bytes without protobuf's own error logging: ParseFromArray logs
// every missing required field to stderr, which would let a peer fill our logs at will.
#pragma once

#include <string>

#include "protocol/crypto/secret.hpp"

namespace multiend::omemo {

template <class Message>
bool parse_protobuf(Message& m, crypto::ByteView bytes) {
  if (bytes.size() > static_cast<std::size_t>(INT32_MAX)) return false;
  return m.ParsePartialFromArray(bytes.data(), static_cast<int>(bytes.size())) && m.IsInitialized();
}

// A protobuf bytes field (a std::string) as the bytes it holds.
inline crypto::ByteView as_bytes(const std::string& s) {
  return crypto::ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

template <class Message>
bool parse_protobuf(Message& m, const std::string& bytes) {
  return parse_protobuf(m, as_bytes(bytes));
}

}  // namespace multiend::omemo
