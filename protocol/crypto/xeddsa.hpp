// Signatures under an identity known by its Curve25519 form, as libsignal and legacy OMEMO
// use them. The Montgomery u-coordinate loses the sign of the Edwards point, so the sign bit
// of the Ed25519 key rides in bit 7 of the signature's last byte (always 0 in a valid S).
// Our identities are Ed25519 seeds: signing is RFC 8032 plus that bit, which libsignal's and
// python-xeddsa's verifiers accept (shared/reference/oldmemo.md §2.3). Knows nothing of OMEMO.
#pragma once

#include "protocol/crypto/ed25519.hpp"
#include "protocol/crypto/x25519.hpp"
#include "protocol/error.hpp"

namespace multiend::crypto {

// The Ed25519 point for Curve25519 u with the given sign: y = (u − 1)/(u + 1) mod p.
// Errc::bad_key when u + 1 ≡ 0 (no Edwards point).
Result<Ed25519Public> curve25519_to_ed25519(const X25519Public& u, bool sign_bit);

// RFC 8032 signature by `ik` with sig[63] |= the sign bit of ik's Ed25519 key.
Ed25519Signature sign_with_sign_bit(const IdentityKeyPair& ik, ByteView message);

// Verifies such a signature against the Curve25519 identity `u`: rebuilds the Ed25519 key from
// u and sig[63] >> 7, clears the bit and checks with libsodium (strict: canonical S, no small
// order key). Returns the Ed25519 key (what python-omemo stores and trusts for that device);
// Errc::bad_signature otherwise.
Result<Ed25519Public> verify_with_sign_bit(const X25519Public& u, ByteView message, const Ed25519Signature& sig);

}  // namespace multiend::crypto
