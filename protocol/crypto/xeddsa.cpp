#include "protocol/crypto/xeddsa.hpp"

#include <openssl/bn.h>

#include <memory>
#include <stdexcept>

namespace multiend::crypto {
namespace {

struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
struct CtxFree {
  void operator()(BN_CTX* c) const { BN_CTX_free(c); }
};
using Bn = std::unique_ptr<BIGNUM, BnFree>;

Bn bn() {
  Bn b(BN_new());
  if (!b) throw std::bad_alloc();
  return b;
}

}  // namespace

Result<Ed25519Public> curve25519_to_ed25519(const X25519Public& u, bool sign_bit) {
  std::unique_ptr<BN_CTX, CtxFree> ctx(BN_CTX_new());
  if (!ctx) throw std::bad_alloc();
  Bn p = bn(), one = bn(), num = bn(), den = bn();
  if (!BN_set_bit(p.get(), 255) || !BN_sub_word(p.get(), 19) || !BN_one(one.get()))
    throw std::runtime_error("OpenSSL BIGNUM failed");
  std::array<std::uint8_t, 32> t = u.bytes;
  t[31] &= 0x7f;  // bit 255 is not part of u (RFC 7748)
  Bn x(BN_lebin2bn(t.data(), static_cast<int>(t.size()), nullptr));
  if (!x) throw std::bad_alloc();
  if (!BN_nnmod(x.get(), x.get(), p.get(), ctx.get()) || !BN_mod_sub(num.get(), x.get(), one.get(), p.get(), ctx.get()) ||
      !BN_mod_add(den.get(), x.get(), one.get(), p.get(), ctx.get()))
    throw std::runtime_error("OpenSSL BIGNUM failed");
  if (BN_is_zero(den.get())) return Errc::bad_key;
  if (!BN_mod_inverse(den.get(), den.get(), p.get(), ctx.get()) ||
      !BN_mod_mul(num.get(), num.get(), den.get(), p.get(), ctx.get()))
    throw std::runtime_error("OpenSSL BIGNUM failed");
  Ed25519Public out;
  if (BN_bn2lebinpad(num.get(), out.data(), 32) != 32) throw std::runtime_error("OpenSSL BIGNUM failed");
  if (sign_bit) out.bytes[31] |= 0x80;
  return out;
}

Ed25519Signature sign_with_sign_bit(const IdentityKeyPair& ik, ByteView message) {
  Ed25519Signature sig = ik.sign(message);
  sig.bytes[63] |= ik.pub().bytes[31] & 0x80;
  return sig;
}

Result<Ed25519Public> verify_with_sign_bit(const X25519Public& u, ByteView message, const Ed25519Signature& sig) {
  auto a = curve25519_to_ed25519(u, (sig.bytes[63] & 0x80) != 0);
  if (!a) return Errc::bad_signature;
  Ed25519Signature s = sig;
  s.bytes[63] &= 0x7f;
  if (!ed25519_verify(*a, message, s)) return Errc::bad_signature;
  return *a;
}

}  // namespace multiend::crypto
