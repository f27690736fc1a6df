// Hex helpers for tests (not for secrets in production code).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/crypto/secret.hpp"

namespace multiend::test {

inline std::vector<std::uint8_t> unhex(std::string_view h) {
  if (h.size() % 2) throw std::invalid_argument("odd hex length");
  std::vector<std::uint8_t> out(h.size() / 2);
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw std::invalid_argument("bad hex digit");
  };
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<std::uint8_t>(nib(h[2 * i]) << 4 | nib(h[2 * i + 1]));
  return out;
}

inline std::string hex(crypto::ByteView b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (auto c : b) {
    s += d[c >> 4];
    s += d[c & 15];
  }
  return s;
}

template <std::size_t N>
crypto::Secret<N> secret_hex(std::string_view h) {
  auto v = unhex(h);
  return crypto::Secret<N>(v);
}

template <class P>
P public_hex(std::string_view h) {
  return P::from(unhex(h));
}

}  // namespace multiend::test
