// Ratchet states go to disk as serialised state::Session protobufs (both OMEMO generations).
// protobuf keeps secrets in std::string: wipe_secrets clears them before the message is
// destroyed, and the serialised form lives in a wiping buffer.
#pragma once

#include <sodium.h>

#include <string>

#include "protocol/crypto/secret.hpp"
#include "session_state.pb.h"

namespace multiend::client {

inline void wipe_secrets(state::Session& s) {
  auto wipe = [](std::string& v) { sodium_memzero(v.data(), v.size()); };
  if (!s.has_ratchet()) return;
  auto* r = s.mutable_ratchet();
  wipe(*r->mutable_rk());
  wipe(*r->mutable_dhs_priv());
  if (r->has_cks()) wipe(*r->mutable_cks());
  if (r->has_ckr()) wipe(*r->mutable_ckr());
  for (auto& k : *r->mutable_skipped()) wipe(*k.mutable_mk());
}

// Serialises and wipes `msg`.
inline crypto::SecretBytes session_blob(state::Session& msg) {
  crypto::SecretBytes blob(msg.ByteSizeLong());
  msg.SerializeToArray(blob.data(), static_cast<int>(blob.size()));
  wipe_secrets(msg);
  return blob;
}

}  // namespace multiend::client
