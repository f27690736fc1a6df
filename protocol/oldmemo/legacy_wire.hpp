// Legacy OMEMO's ratchet wire for the shared Double Ratchet (omemo/ratchet_wire.hpp):
// "WhisperRatchet" / "WhisperMessageKeys", SignalMessage = 0x33 ‖ protobuf ‖ 8-byte MAC, and
// libsignal's previous counter (the key at index pn is kept as well). The associated data a
// legacy ratchet is given is sender ‖ receiver, 0x05 ‖ u each (ad_for below).
#pragma once

#include "protocol/crypto/x25519.hpp"
#include "protocol/omemo/ratchet_wire.hpp"

namespace multiend::oldmemo {

const omemo::RatchetWire& legacy_wire();

// 0x05‖sender ‖ 0x05‖receiver: the MAC input ahead of each message (sender first, so it
// differs per direction).
crypto::Bytes ad_for(const crypto::X25519Public& sender_ik, const crypto::X25519Public& receiver_ik);

}  // namespace multiend::oldmemo
