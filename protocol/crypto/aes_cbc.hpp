// AES-256-CBC with PKCS#7 padding (OpenSSL EVP, cipher fetched once).
#pragma once

#include "protocol/crypto/secret.hpp"
#include "protocol/error.hpp"

namespace multiend::crypto {

Bytes aes256_cbc_encrypt(const Secret<32>& key, ByteView iv16, ByteView plaintext);
// Errc::bad_padding when the ciphertext length or the padding is wrong.
Result<SecretBytes> aes256_cbc_decrypt(const Secret<32>& key, ByteView iv16, ByteView ciphertext);

}  // namespace multiend::crypto
