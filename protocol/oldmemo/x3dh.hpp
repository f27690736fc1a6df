// X3DH as legacy OMEMO does it (oldmemo 1.0.3, libsignal; oldmemo.md §2.4): the same four DHs
// and 0xFF prefix as OMEMO 2 (omemo/x3dh.hpp) with info "WhisperText", identities on the wire
// in Curve25519 form, the SPK signature checked with the sign bit it carries, and a mandatory
// one-time prekey. The AD is per direction: sender ‖ receiver (legacy_wire.hpp).
#pragma once

#include <optional>

#include "protocol/crypto/ed25519.hpp"
#include "protocol/oldmemo/bundle.hpp"

namespace multiend::oldmemo {

struct LegacyX3dh {
  crypto::Secret<32> shared_secret;
  crypto::Bytes send_ad;  // our MACs: own ‖ peer
  crypto::Bytes recv_ad;  // theirs: peer ‖ own
};

struct ActiveX3dh {
  LegacyX3dh keys;
  crypto::Ed25519Public peer_ik;  // the Edwards key the bundle's signature names
};

// Initiator. Errc::bad_signature when the SPK signature does not verify, bad_key for a
// small-order key.
Result<ActiveX3dh> x3dh_active(const crypto::IdentityKeyPair& own, const crypto::X25519KeyPair& ephemeral,
                               const LegacyBundle& peer, const omemo::PreKeyPublic& chosen);

// Responder, from a PreKeySignalMessage's identity key and base key.
Result<LegacyX3dh> x3dh_passive(const crypto::IdentityKeyPair& own, const crypto::X25519KeyPair& spk,
                                const crypto::X25519KeyPair& opk, const crypto::X25519Public& peer_ik,
                                const crypto::X25519Public& peer_ek);

// What our own legacy bundle says of our identity: 0x05-less u, and the SPK signature with our
// sign bit (oldmemo.md §2.2: the true bit, so peers see one identity in both generations).
crypto::X25519Public curve_identity(const crypto::IdentityKeyPair& own);
crypto::Ed25519Signature sign_signed_prekey(const crypto::IdentityKeyPair& own, const crypto::X25519Public& spk);

}  // namespace multiend::oldmemo
