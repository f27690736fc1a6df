#include "protocol/crypto/ed25519.hpp"

namespace multiend::crypto {

IdentityKeyPair IdentityKeyPair::generate(Rng& rng) {
  Secret<32> seed;
  rng.fill(seed.span());
  return from_seed(std::move(seed));
}

IdentityKeyPair IdentityKeyPair::from_seed(Secret<32> seed) {
  IdentityKeyPair kp;
  kp.seed_ = std::move(seed);
  crypto_sign_seed_keypair(kp.pub_.data(), kp.sk_.data(), kp.seed_.data());
  return kp;
}

Ed25519Signature IdentityKeyPair::sign(ByteView message) const {
  Ed25519Signature sig;
  crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), sk_.data());
  return sig;
}

Secret<32> IdentityKeyPair::x25519_private() const {
  Secret<32> out;
  crypto_sign_ed25519_sk_to_curve25519(out.data(), sk_.data());
  return out;
}

bool ed25519_verify(const Ed25519Public& pub, ByteView message, const Ed25519Signature& sig) {
  return crypto_sign_verify_detached(sig.data(), message.data(), message.size(), pub.data()) == 0;
}

Result<X25519Public> ed25519_pub_to_x25519(const Ed25519Public& pub) {
  X25519Public out;
  if (crypto_sign_ed25519_pk_to_curve25519(out.data(), pub.data()) != 0) return Errc::bad_key;
  return out;
}

}  // namespace multiend::crypto
