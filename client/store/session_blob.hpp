// Ratchet states go to disk as serialised state::Session protobufs (both OMEMO generations).
// protobuf keeps secrets in std::string: wipe_secrets clears them before the message is
// destroyed, and the serialised form lives in a wiping buffer.
#pragma once

#include "protocol/crypto/secret.hpp"
#include "protocol/omemo/session_state_wipe.hpp"

namespace multiend::client {

inline void wipe_secrets(state::Session& s) { omemo::wipe_session_secrets(s); }

// Serialises and wipes `msg`.
inline crypto::SecretBytes session_blob(state::Session& msg) {
  crypto::SecretBytes blob(msg.ByteSizeLong());
  msg.SerializeToArray(blob.data(), static_cast<int>(blob.size()));
  wipe_secrets(msg);
  return blob;
}

}  // namespace multiend::client
