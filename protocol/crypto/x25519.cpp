#include "protocol/crypto/x25519.hpp"

namespace multiend::crypto {

X25519KeyPair X25519KeyPair::generate(Rng& rng) {
  Secret<32> priv;
  rng.fill(priv.span());
  return from_private(std::move(priv));
}

X25519KeyPair X25519KeyPair::from_private(Secret<32> priv) {
  X25519KeyPair kp{std::move(priv), {}};
  crypto_scalarmult_base(kp.pub.data(), kp.priv.data());
  return kp;
}

Result<Secret<32>> x25519(const Secret<32>& priv, const X25519Public& pub) {
  Secret<32> out;
  if (crypto_scalarmult(out.data(), priv.data(), pub.data()) != 0) return Errc::bad_key;
  return out;
}

}  // namespace multiend::crypto
