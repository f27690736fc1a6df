#include "protocol/crypto/sha1_hex.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <memory>
#include <new>
#include <stdexcept>

namespace multiend::crypto {
namespace {

// OpenSSL's implicit fetch per call doubles the cost of small operations: fetch once.
const EVP_MD* sha1_algorithm() {
  static EVP_MD* md = [] {
    EVP_MD* m = EVP_MD_fetch(nullptr, "SHA1", nullptr);
    if (!m) throw std::runtime_error("OpenSSL: SHA1 unavailable");
    return m;
  }();
  return md;
}

}  // namespace

std::string component_handshake_digest(std::string_view stream_id, std::string_view secret) {
  const EVP_MD* md = sha1_algorithm();
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx) throw std::bad_alloc();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestInit_ex2(ctx.get(), md, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), stream_id.data(), stream_id.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), secret.data(), secret.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest, &len) != 1)
    throw std::runtime_error("OpenSSL: SHA1 digest failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0x0F]);
  }
  OPENSSL_cleanse(digest, sizeof digest);  // a copy of the credential
  return out;
}

}  // namespace multiend::crypto
