// One OMEMO 2 session with one remote device: the ratchet plus what OMEMO keeps around it
// (who initiated, whether the initiator saw a reply yet, the key-exchange header to resend
// until then, the peer's identity key). Also the OMEMOKeyExchange wire wrapper.
#pragma once

#include <compare>
#include <string>

#include "protocol/omemo/double_ratchet.hpp"
#include "protocol/omemo/x3dh.hpp"

namespace multiend::state {
class Session;
}

namespace multiend::omemo {

struct DeviceAddress {
  std::string jid;  // bare, normalised
  std::uint32_t device = 0;
  friend auto operator<=>(const DeviceAddress&, const DeviceAddress&) = default;
  friend bool operator==(const DeviceAddress&, const DeviceAddress&) = default;
};

enum class Initiation { active, passive };

struct Session {
  DeviceAddress peer;
  Initiation initiation = Initiation::active;
  bool confirmed = false;
  KeyExchangeHeader kex;  // active: ours, sent until confirmed; passive: the one we received
  crypto::Ed25519Public peer_ik;
  DoubleRatchet ratchet;

  // The initiator wraps every message in the key exchange until the peer has answered.
  bool sends_key_exchange() const { return initiation == Initiation::active && !confirmed; }

  Session clone() const { return {peer, initiation, confirmed, kex, peer_ik, ratchet.clone()}; }
  void to_state(state::Session& out) const;
  static Result<Session> from_state(const state::Session& in);
};

// OMEMOKeyExchange{pk_id, spk_id, ik, ek, message} around an OMEMOAuthenticatedMessage.
crypto::Bytes wrap_key_exchange(const KeyExchangeHeader& h, ByteView authenticated_message);

struct ParsedKeyExchange {
  KeyExchangeHeader header;
  crypto::Bytes authenticated_message;
};
Result<ParsedKeyExchange> unwrap_key_exchange(ByteView bytes);

}  // namespace multiend::omemo
