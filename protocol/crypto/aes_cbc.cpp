#include "protocol/crypto/aes_cbc.hpp"

#include <stdexcept>

#include "protocol/crypto/evp_cipher.hpp"

namespace multiend::crypto {
namespace {

EVP_CIPHER* cbc() {
  static EVP_CIPHER* c = detail::fetch_cipher("AES-256-CBC");
  return c;
}

using Ctx = detail::CipherCtx;

}  // namespace

Bytes aes256_cbc_encrypt(const Secret<32>& key, ByteView iv16, ByteView plaintext) {
  if (iv16.size() != 16) throw std::invalid_argument("AES-CBC: IV must be 16 bytes");
  Ctx ctx = detail::new_cipher_ctx();
  if (EVP_EncryptInit_ex2(ctx.get(), cbc(), key.data(), iv16.data(), nullptr) != 1)
    throw std::runtime_error("OpenSSL: EncryptInit failed");
  Bytes out(plaintext.size() + 16);
  int n1 = 0, n2 = 0;
  if (EVP_EncryptUpdate(ctx.get(), out.data(), &n1, plaintext.data(), static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + n1, &n2) != 1)
    throw std::runtime_error("OpenSSL: AES-CBC encrypt failed");
  out.resize(static_cast<std::size_t>(n1 + n2));
  return out;
}

Result<SecretBytes> aes256_cbc_decrypt(const Secret<32>& key, ByteView iv16, ByteView ciphertext) {
  if (iv16.size() != 16) throw std::invalid_argument("AES-CBC: IV must be 16 bytes");
  if (ciphertext.empty() || ciphertext.size() % 16 != 0) return Errc::bad_padding;
  Ctx ctx = detail::new_cipher_ctx();
  if (EVP_DecryptInit_ex2(ctx.get(), cbc(), key.data(), iv16.data(), nullptr) != 1)
    throw std::runtime_error("OpenSSL: DecryptInit failed");
  SecretBytes out(ciphertext.size() + 16);
  int n1 = 0, n2 = 0;
  if (EVP_DecryptUpdate(ctx.get(), out.data(), &n1, ciphertext.data(), static_cast<int>(ciphertext.size())) != 1)
    return Errc::bad_padding;
  if (EVP_DecryptFinal_ex(ctx.get(), out.data() + n1, &n2) != 1) return Errc::bad_padding;
  out.resize(static_cast<std::size_t>(n1 + n2));
  return out;
}

}  // namespace multiend::crypto
