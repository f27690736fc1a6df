// X25519 key pairs and Diffie-Hellman (libsodium). Knows nothing of OMEMO.
#pragma once

#include "protocol/crypto/random.hpp"
#include "protocol/crypto/secret.hpp"
#include "protocol/error.hpp"

namespace multiend::crypto {

struct X25519Tag {};
using X25519Public = PublicBytes<32, X25519Tag>;

struct X25519KeyPair {
  Secret<32> priv;
  X25519Public pub;

  static X25519KeyPair generate(Rng& rng);
  static X25519KeyPair from_private(Secret<32> priv);
  X25519KeyPair clone() const { return {priv.clone(), pub}; }
};

// X25519(priv, pub). Errc::bad_key when the result is all zero (a small-order peer key).
Result<Secret<32>> x25519(const Secret<32>& priv, const X25519Public& pub);

}  // namespace multiend::crypto
