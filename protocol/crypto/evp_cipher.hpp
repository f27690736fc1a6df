// What the OpenSSL cipher wrappers (aes_cbc, aes_gcm) share: fetching an algorithm once (the
// implicit fetch per call doubles the cost of small operations) and an owned cipher context.
// Internal to protocol/crypto.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <new>
#include <stdexcept>
#include <string>

namespace multiend::crypto::detail {

// Throws when OpenSSL lacks the algorithm (a setup problem). Call once and keep the result.
inline EVP_CIPHER* fetch_cipher(const char* name) {
  EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, name, nullptr);
  if (!c) throw std::runtime_error(std::string("OpenSSL: ") + name + " unavailable");
  return c;
}

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

inline CipherCtx new_cipher_ctx() {
  CipherCtx c(EVP_CIPHER_CTX_new());
  if (!c) throw std::bad_alloc();
  return c;
}

}  // namespace multiend::crypto::detail
