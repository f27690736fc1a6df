#include "protocol/crypto/random.hpp"

#include <cstring>
#include <stdexcept>

namespace multiend::crypto {

std::uint32_t Rng::uniform(std::uint32_t upper) {
  if (upper == 0) throw std::invalid_argument("Rng::uniform: upper bound 0");
  // Rejection sampling: drop values from the incomplete last block.
  const std::uint32_t limit = UINT32_MAX - (UINT32_MAX % upper);
  for (;;) {
    std::uint32_t v = 0;
    fill(std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(&v), sizeof v));
    if (v < limit) return v % upper;
  }
}

SodiumRng::SodiumRng() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium initialisation failed");
}

void SodiumRng::fill(std::span<std::uint8_t> out) { randombytes_buf(out.data(), out.size()); }

DeterministicRng::DeterministicRng(std::uint64_t seed) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium initialisation failed");
  std::memcpy(seed_.data(), &seed, sizeof seed);
}

void DeterministicRng::fill(std::span<std::uint8_t> out) {
  // Mix the counter into the seed so each call draws a fresh stream.
  Secret<32> s = seed_.clone();
  for (std::size_t i = 0; i < sizeof counter_; ++i)
    s.data()[24 + i] ^= static_cast<std::uint8_t>(counter_ >> (8 * i));
  ++counter_;
  randombytes_buf_deterministic(out.data(), out.size(), s.data());
}

}  // namespace multiend::crypto
