#include "protocol/oldmemo/payload.hpp"

#include "protocol/crypto/aes_gcm.hpp"
#include "protocol/oldmemo/constants.hpp"

namespace multiend::oldmemo {

SealedPayload seal_payload(crypto::ByteView plaintext, crypto::Rng& rng) {
  crypto::Secret<kPayloadKeySize> key;
  rng.fill(key.span());
  SealedPayload out;
  out.iv.resize(kIvSize);
  rng.fill(out.iv);
  auto sealed = crypto::aes128_gcm_encrypt(key, out.iv, plaintext);
  out.ciphertext = std::move(sealed.ciphertext);
  out.key_material = crypto::SecretBytes(kKeyMaterialSize);
  std::copy(key.data(), key.data() + kPayloadKeySize, out.key_material.data());
  std::copy(sealed.tag.begin(), sealed.tag.end(), out.key_material.data() + kPayloadKeySize);
  return out;
}

SealedPayload empty_message(crypto::Rng& rng) {
  SealedPayload out;
  out.iv.resize(kIvSize);
  rng.fill(out.iv);
  out.key_material = crypto::SecretBytes(kEmptyMessageSize);
  rng.fill(std::span<std::uint8_t>(out.key_material.data(), out.key_material.size()));
  return out;
}

Result<crypto::SecretBytes> open_payload(crypto::ByteView key_material, crypto::ByteView iv, crypto::ByteView ciphertext) {
  if (key_material.size() < kPayloadKeySize + crypto::kGcmTagSize) return Errc::bad_element;
  if (iv.size() != 12 && iv.size() != 16) return Errc::bad_element;
  crypto::Secret<kPayloadKeySize> key(key_material.first(kPayloadKeySize));
  return crypto::aes128_gcm_decrypt(key, iv, ciphertext, key_material.subspan(kPayloadKeySize, crypto::kGcmTagSize));
}

}  // namespace multiend::oldmemo
