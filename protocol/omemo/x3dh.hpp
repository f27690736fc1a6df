// X3DH as OMEMO 2 uses it (XEP-0384 §4.2, twomemo x3dh 1.0.3): Ed25519 identity keys mapped
// to X25519 for DH, a mandatory one-time prekey, SK = HKDF(0xFF×32 ‖ DH1‖DH2‖DH3‖DH4,
// salt 0×32, "OMEMO X3DH", 32), AD = IK_initiator ‖ IK_responder (Ed25519 forms).
// Knows nothing of ratchets, XML or storage: keys come in, the shared secret goes out.
#pragma once

#include "protocol/crypto/ed25519.hpp"
#include "protocol/crypto/x25519.hpp"
#include "protocol/omemo/bundle.hpp"
#include "protocol/omemo/double_ratchet.hpp"

namespace multiend::omemo {

// What the initiator sends around its first messages (OMEMOKeyExchange without the message).
struct KeyExchangeHeader {
  std::uint32_t pk_id = 0;
  std::uint32_t spk_id = 0;
  crypto::Ed25519Public ik;
  crypto::X25519Public ek;
  friend bool operator==(const KeyExchangeHeader&, const KeyExchangeHeader&) = default;
};

struct X3dhResult {
  Secret<32> shared_secret;
  AssociatedData ad;
};

// What both OMEMO generations share: the four DHs in each role (identity keys in X25519
// form) and SK = HKDF(0xFF×32 ‖ DH1‖DH2‖DH3‖DH4, salt 0×32, info, 32). Errc::bad_key for a
// small-order public key.
Result<Secret<32>> x3dh_secret_active(const Secret<32>& own_ik, const Secret<32>& ephemeral,
                                      const X25519Public& peer_ik, const X25519Public& peer_spk,
                                      const X25519Public& peer_opk, std::string_view info);
Result<Secret<32>> x3dh_secret_passive(const Secret<32>& own_ik, const Secret<32>& spk, const Secret<32>& opk,
                                       const X25519Public& peer_ik, const X25519Public& peer_ek,
                                       std::string_view info);

// Initiator side with explicit keys (the caller picks the prekey and the ephemeral key).
// Errc::bad_signature when spks does not verify, Errc::bad_key for invalid public keys.
Result<X3dhResult> x3dh_active(const crypto::IdentityKeyPair& own, const X25519KeyPair& ephemeral,
                               const Bundle& peer, const PreKeyPublic& chosen);

// Responder side.
Result<X3dhResult> x3dh_passive(const crypto::IdentityKeyPair& own, const X25519KeyPair& spk,
                                const X25519KeyPair& opk, const crypto::Ed25519Public& peer_ik,
                                const X25519Public& peer_ek);

}  // namespace multiend::omemo
