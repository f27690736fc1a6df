// One legacy OMEMO session with one remote device (oldmemo.md §5), over the shared Double
// Ratchet with the legacy wire: who initiated, whether the initiator saw a reply yet, the
// PreKeySignalMessage header to resend until then, the peer's identity in Curve25519 form.
// Building, encrypting one <key>, accepting a key exchange, decrypting one <key>: the steps a
// session manager composes. Works on values; the caller commits a session only after the
// whole message decrypted. Knows no XML, stores or network.
#pragma once

#include <optional>

#include "protocol/crypto/random.hpp"
#include "protocol/oldmemo/bundle.hpp"
#include "protocol/oldmemo/encrypted_element.hpp"
#include "protocol/oldmemo/signal_message.hpp"
#include "protocol/omemo/double_ratchet.hpp"
#include "protocol/omemo/session.hpp"

namespace multiend::state {
class Session;
}

namespace multiend::oldmemo {

struct LegacySession {
  omemo::DeviceAddress peer;
  omemo::Initiation initiation = omemo::Initiation::active;
  bool confirmed = false;
  PreKeyHeader kex;               // active: ours, sent until confirmed; passive: the one received
  crypto::X25519Public peer_ik;   // Curve25519 form
  omemo::DoubleRatchet ratchet;

  bool sends_key_exchange() const { return initiation == omemo::Initiation::active && !confirmed; }
  LegacySession clone() const { return {peer, initiation, confirmed, kex, peer_ik, ratchet.clone()}; }
  // The stored form shares OMEMO 2's message (generation = 1). from_state refuses an OMEMO 2
  // session and anything malformed (Errc::bad_protobuf).
  void to_state(state::Session& out) const;
  static Result<LegacySession> from_state(const state::Session& in);
};

struct StartedSession {
  LegacySession session;
  crypto::Ed25519Public peer_ed25519;  // what the bundle's signature names (trust is keyed on it)
};

// Initiator: verifies the bundle (Errc::bad_signature), picks one of its prekeys at random
// (Errc::no_prekeys without one) and a fresh ephemeral and ratchet key.
Result<StartedSession> start_session(const crypto::IdentityKeyPair& own, omemo::DeviceAddress peer,
                                     const LegacyBundle& bundle, crypto::Rng& rng);

// The <key> for `key_material` on this session: a PreKeySignalMessage (prekey='true') around
// the SignalMessage while the session is unconfirmed, the SignalMessage after.
Result<LegacyKey> encrypt_key(LegacySession& s, crypto::ByteView key_material);

// Responder: the session a PreKeySignalMessage builds, with our keys it names (the caller looks
// them up by id: Errc::unknown_signed_prekey / unknown_prekey are the caller's to report).
Result<LegacySession> accept_session(const crypto::IdentityKeyPair& own, omemo::DeviceAddress peer,
                                     const PreKeyHeader& kex, const crypto::X25519KeyPair& spk,
                                     const crypto::X25519KeyPair& opk);

// A repeated key exchange (the initiator sends it until answered) decrypts with the session it
// built: same identity, base key, signed prekey and prekey ids (oldmemo's test).
bool built_from(const LegacySession& s, const PreKeyHeader& kex);

// Decrypts a SignalMessage with `s` (work on a copy; commit it only when the whole message
// decrypted); an active session becomes confirmed.
Result<crypto::SecretBytes> decrypt_key(LegacySession& s, crypto::ByteView signal_message, crypto::Rng& rng);

}  // namespace multiend::oldmemo
