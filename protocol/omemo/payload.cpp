#include "protocol/omemo/payload.hpp"

#include <algorithm>

#include "protocol/crypto/aes_cbc.hpp"
#include "protocol/crypto/kdf.hpp"
#include "protocol/omemo/constants.hpp"

namespace multiend::omemo {
namespace {

struct PayloadKeys {
  crypto::Secret<32> aes;
  crypto::Secret<32> hmac;
  crypto::Secret<16> iv;
};

PayloadKeys expand(crypto::ByteView key) {
  crypto::Secret<80> out;
  crypto::hkdf_sha256(key, {}, kInfoPayload, out.span());
  return {crypto::Secret<32>(crypto::ByteView(out.data(), 32)),
          crypto::Secret<32>(crypto::ByteView(out.data() + 32, 32)),
          crypto::Secret<16>(crypto::ByteView(out.data() + 64, 16))};
}

}  // namespace

EncryptedPayload encrypt_payload(crypto::ByteView plaintext, crypto::Rng& rng) {
  crypto::Secret<32> key;
  rng.fill(key.span());
  return encrypt_payload(plaintext, key);
}

EncryptedPayload encrypt_payload(crypto::ByteView plaintext, const crypto::Secret<32>& key) {
  PayloadKeys k = expand(key.view());
  EncryptedPayload out;
  out.ciphertext = crypto::aes256_cbc_encrypt(k.aes, k.iv.view(), plaintext);
  crypto::Secret<32> tag = crypto::hmac_sha256(k.hmac.view(), out.ciphertext);
  std::copy_n(key.data(), 32, out.key_material.data());
  std::copy_n(tag.data(), kMacSize, out.key_material.data() + 32);
  return out;
}

Result<crypto::SecretBytes> decrypt_payload(crypto::ByteView ciphertext, crypto::ByteView key_material) {
  if (key_material.size() != kKeyMaterialSize) return Errc::bad_element;
  PayloadKeys k = expand(key_material.first(32));
  crypto::Secret<32> tag = crypto::hmac_sha256(k.hmac.view(), ciphertext);
  if (!crypto::ct_equal(crypto::ByteView(tag.data(), kMacSize), key_material.subspan(32)))
    return Errc::mac_mismatch;
  return crypto::aes256_cbc_decrypt(k.aes, k.iv.view(), ciphertext);
}

}  // namespace multiend::omemo
