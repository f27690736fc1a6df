// Randomness is passed in: production code uses SodiumRng, tests a seeded DeterministicRng,
// so every key and every padding length in a test run is reproducible.
#pragma once

#include <cstdint>
#include <span>

#include "protocol/crypto/secret.hpp"

namespace multiend::crypto {

class Rng {
 public:
  virtual ~Rng() = default;
  virtual void fill(std::span<std::uint8_t> out) = 0;

  // Uniform in [0, upper) (upper > 0), without modulo bias.
  std::uint32_t uniform(std::uint32_t upper);
};

// The operating system's CSPRNG through libsodium.
class SodiumRng final : public Rng {
 public:
  SodiumRng();
  void fill(std::span<std::uint8_t> out) override;
};

// ChaCha20 keystream from a fixed 32-byte seed (randombytes_buf_deterministic), advanced by a
// counter so successive calls differ. For tests and reproducible benchmarks only.
class DeterministicRng final : public Rng {
 public:
  explicit DeterministicRng(std::uint64_t seed);
  void fill(std::span<std::uint8_t> out) override;

 private:
  Secret<32> seed_;
  std::uint64_t counter_ = 0;
};

}  // namespace multiend::crypto
