#include "protocol/crypto/aes_gcm.hpp"

#include <openssl/core_names.h>

#include <stdexcept>

#include "protocol/crypto/evp_cipher.hpp"

namespace multiend::crypto {
namespace {

EVP_CIPHER* gcm() {
  static EVP_CIPHER* c = detail::fetch_cipher("AES-128-GCM");
  return c;
}

using Ctx = detail::CipherCtx;

// The IV length is set before key and IV (a 16-byte IV is not GCM's default).
Ctx start(const Secret<16>& key, ByteView iv, bool encrypt) {
  if (iv.size() != 12 && iv.size() != 16) throw std::invalid_argument("AES-GCM: IV must be 12 or 16 bytes");
  Ctx ctx = detail::new_cipher_ctx();
  std::size_t ivlen = iv.size();
  OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, &ivlen), OSSL_PARAM_construct_end()};
  const int ok = encrypt ? EVP_EncryptInit_ex2(ctx.get(), gcm(), nullptr, nullptr, params) &&
                               EVP_EncryptInit_ex2(ctx.get(), nullptr, key.data(), iv.data(), nullptr)
                         : EVP_DecryptInit_ex2(ctx.get(), gcm(), nullptr, nullptr, params) &&
                               EVP_DecryptInit_ex2(ctx.get(), nullptr, key.data(), iv.data(), nullptr);
  if (!ok) throw std::runtime_error("OpenSSL: AES-GCM init failed");
  return ctx;
}

}  // namespace

GcmSealed aes128_gcm_encrypt(const Secret<16>& key, ByteView iv, ByteView plaintext) {
  Ctx ctx = start(key, iv, true);
  GcmSealed out;
  out.ciphertext.resize(plaintext.size());
  int n = 0, fin = 0;
  if ((!plaintext.empty() && EVP_EncryptUpdate(ctx.get(), out.ciphertext.data(), &n, plaintext.data(),
                                               static_cast<int>(plaintext.size())) != 1) ||
      EVP_EncryptFinal_ex(ctx.get(), out.ciphertext.data() + n, &fin) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, kGcmTagSize, out.tag.data()) != 1)
    throw std::runtime_error("OpenSSL: AES-GCM encrypt failed");
  return out;
}

Result<SecretBytes> aes128_gcm_decrypt(const Secret<16>& key, ByteView iv, ByteView ciphertext, ByteView tag) {
  if (tag.size() != kGcmTagSize) return Errc::mac_mismatch;
  Ctx ctx = start(key, iv, false);
  SecretBytes out(ciphertext.size());
  int n = 0, fin = 0;
  if (!ciphertext.empty() &&
      EVP_DecryptUpdate(ctx.get(), out.data(), &n, ciphertext.data(), static_cast<int>(ciphertext.size())) != 1)
    return Errc::mac_mismatch;
  std::array<std::uint8_t, kGcmTagSize> t{};
  std::copy(tag.begin(), tag.end(), t.begin());
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, kGcmTagSize, t.data()) != 1)
    throw std::runtime_error("OpenSSL: AES-GCM set tag failed");
  if (EVP_DecryptFinal_ex(ctx.get(), out.data() + n, &fin) != 1) {
    out.wipe();
    return Errc::mac_mismatch;
  }
  return out;
}

}  // namespace multiend::crypto
