// Ed25519 identity keys (libsodium): signing, verification, and the birational map to X25519
// that OMEMO 2 uses for the identity key's Diffie-Hellman. Knows nothing of OMEMO formats.
#pragma once

#include "protocol/crypto/random.hpp"
#include "protocol/crypto/secret.hpp"
#include "protocol/crypto/x25519.hpp"
#include "protocol/error.hpp"

namespace multiend::crypto {

struct Ed25519Tag {};
struct SignatureTag {};
using Ed25519Public = PublicBytes<32, Ed25519Tag>;
using Ed25519Signature = PublicBytes<64, SignatureTag>;

class IdentityKeyPair {
 public:
  static IdentityKeyPair generate(Rng& rng);
  static IdentityKeyPair from_seed(Secret<32> seed);

  const Ed25519Public& pub() const noexcept { return pub_; }
  const Secret<32>& seed() const noexcept { return seed_; }
  // Deterministic RFC 8032 signature.
  Ed25519Signature sign(ByteView message) const;
  // The X25519 private key for DH: SHA-512(seed)[0:32], clamped.
  Secret<32> x25519_private() const;
  IdentityKeyPair clone() const { return from_seed(seed_.clone()); }

 private:
  Secret<32> seed_;
  Secret<64> sk_;
  Ed25519Public pub_;
};

bool ed25519_verify(const Ed25519Public& pub, ByteView message, const Ed25519Signature& sig);

// u = (1+y)/(1-y). Errc::bad_key for small-order or non-canonical points.
Result<X25519Public> ed25519_pub_to_x25519(const Ed25519Public& pub);

}  // namespace multiend::crypto
