// protobuf keeps the secrets of a stored session (root, chain and message keys, the ratchet's
// private key) in std::string: whoever parsed or built a state::Session wipes it before the
// message is destroyed. Shared by every store that serialises sessions, both generations.
#pragma once

#include <sodium.h>

#include <string>

#include "session_state.pb.h"

namespace multiend::omemo {

inline void wipe_secret_string(std::string& s) { sodium_memzero(s.data(), s.size()); }

inline void wipe_session_secrets(state::Session& s) {
  if (!s.has_ratchet()) return;
  auto* r = s.mutable_ratchet();
  wipe_secret_string(*r->mutable_rk());
  wipe_secret_string(*r->mutable_dhs_priv());
  if (r->has_cks()) wipe_secret_string(*r->mutable_cks());
  if (r->has_ckr()) wipe_secret_string(*r->mutable_ckr());
  for (auto& k : *r->mutable_skipped()) wipe_secret_string(*k.mutable_mk());
}

}  // namespace multiend::omemo
