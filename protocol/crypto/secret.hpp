// Key material: move-only byte containers that wipe themselves (sodium_memzero), compare in
// constant time and have no stream operator, so a secret cannot be printed or copied by
// accident. Public keys are plain value types (PublicBytes) because they are not secret.
#pragma once

#include <sodium.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace multiend::crypto {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

// A fixed-size secret. Copying needs an explicit clone().
template <std::size_t N>
class Secret {
 public:
  static constexpr std::size_t size_bytes = N;

  Secret() noexcept { bytes_.fill(0); }
  explicit Secret(ByteView src) noexcept {
    // Callers pass exactly N bytes; anything else is a broken invariant.
    if (src.size() != N) std::abort();
    std::copy(src.begin(), src.end(), bytes_.begin());
  }
  ~Secret() { wipe(); }
  Secret(Secret&& o) noexcept : bytes_(o.bytes_) { o.wipe(); }
  Secret& operator=(Secret&& o) noexcept {
    if (this != &o) {
      bytes_ = o.bytes_;
      o.wipe();
    }
    return *this;
  }
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;

  Secret clone() const { return Secret(ByteView(bytes_)); }
  std::uint8_t* data() noexcept { return bytes_.data(); }
  const std::uint8_t* data() const noexcept { return bytes_.data(); }
  static constexpr std::size_t size() noexcept { return N; }
  ByteView view() const noexcept { return ByteView(bytes_); }
  std::span<std::uint8_t> span() noexcept { return std::span<std::uint8_t>(bytes_); }
  void wipe() noexcept { sodium_memzero(bytes_.data(), N); }

  friend bool operator==(const Secret& a, const Secret& b) noexcept {
    return sodium_memcmp(a.bytes_.data(), b.bytes_.data(), N) == 0;
  }

 private:
  std::array<std::uint8_t, N> bytes_;
};

// A variable-size secret (plaintexts, key material of varying length).
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(std::size_t n) : bytes_(n, 0) {}
  explicit SecretBytes(ByteView src) : bytes_(src.begin(), src.end()) {}
  ~SecretBytes() { wipe(); }
  SecretBytes(SecretBytes&& o) noexcept : bytes_(std::move(o.bytes_)) { o.bytes_.clear(); }
  SecretBytes& operator=(SecretBytes&& o) noexcept {
    if (this != &o) {
      wipe();
      bytes_ = std::move(o.bytes_);
      o.bytes_.clear();
    }
    return *this;
  }
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  SecretBytes clone() const { return SecretBytes(view()); }
  std::uint8_t* data() noexcept { return bytes_.data(); }
  const std::uint8_t* data() const noexcept { return bytes_.data(); }
  std::size_t size() const noexcept { return bytes_.size(); }
  bool empty() const noexcept { return bytes_.empty(); }
  ByteView view() const noexcept { return ByteView(bytes_); }
  // Shrinking wipes the dropped tail first.
  void resize(std::size_t n) {
    if (n < bytes_.size()) sodium_memzero(bytes_.data() + n, bytes_.size() - n);
    bytes_.resize(n);
  }
  void wipe() noexcept {
    if (!bytes_.empty()) sodium_memzero(bytes_.data(), bytes_.size());
  }

  friend bool operator==(const SecretBytes& a, const SecretBytes& b) noexcept {
    return a.size() == b.size() && (a.empty() || sodium_memcmp(a.data(), b.data(), a.size()) == 0);
  }

 private:
  std::vector<std::uint8_t> bytes_;
};

// Public (non-secret) fixed-size bytes, e.g. an X25519 or Ed25519 public key.
template <std::size_t N, class Tag>
struct PublicBytes {
  std::array<std::uint8_t, N> bytes{};
  static constexpr std::size_t size() noexcept { return N; }
  const std::uint8_t* data() const noexcept { return bytes.data(); }
  std::uint8_t* data() noexcept { return bytes.data(); }
  ByteView view() const noexcept { return ByteView(bytes); }
  static PublicBytes from(ByteView v) {
    PublicBytes p;
    if (v.size() != N) std::abort();
    std::copy(v.begin(), v.end(), p.bytes.begin());
    return p;
  }
  friend bool operator==(const PublicBytes&, const PublicBytes&) = default;
  friend auto operator<=>(const PublicBytes&, const PublicBytes&) = default;
};

// Constant-time comparison of two byte views of equal length (false if lengths differ).
inline bool ct_equal(ByteView a, ByteView b) noexcept {
  return a.size() == b.size() && (a.empty() || sodium_memcmp(a.data(), b.data(), a.size()) == 0);
}

}  // namespace multiend::crypto
