#include "protocol/omemo/session.hpp"

#include "omemo.pb.h"
#include "protocol/omemo/protobuf_parse.hpp"
#include "session_state.pb.h"

namespace multiend::omemo {
void Session::to_state(state::Session& out) const {
  out.set_peer_jid(peer.jid);
  out.set_peer_device(peer.device);
  out.set_active(initiation == Initiation::active);
  out.set_confirmed(confirmed);
  out.set_kex_pk_id(kex.pk_id);
  out.set_kex_spk_id(kex.spk_id);
  out.set_kex_ik(kex.ik.data(), kex.ik.size());
  out.set_kex_ek(kex.ek.data(), kex.ek.size());
  out.set_peer_ik(peer_ik.data(), peer_ik.size());
  ratchet.to_state(*out.mutable_ratchet());
}

Result<Session> Session::from_state(const state::Session& in) {
  if (in.kex_ik().size() != 32 || in.kex_ek().size() != 32 || in.peer_ik().size() != 32)
    return Errc::bad_protobuf;
  if (in.has_generation() && in.generation() != 2) return Errc::bad_protobuf;  // a legacy session
  auto ratchet = DoubleRatchet::from_state(in.ratchet());
  if (!ratchet) return ratchet.error();
  Session s{{in.peer_jid(), in.peer_device()},
            in.active() ? Initiation::active : Initiation::passive,
            in.confirmed(),
            {in.kex_pk_id(), in.kex_spk_id(), crypto::Ed25519Public::from(as_bytes(in.kex_ik())),
             crypto::X25519Public::from(as_bytes(in.kex_ek()))},
            crypto::Ed25519Public::from(as_bytes(in.peer_ik())),
            std::move(*ratchet)};
  return s;
}

crypto::Bytes wrap_key_exchange(const KeyExchangeHeader& h, ByteView authenticated_message) {
  wire::OMEMOKeyExchange kex;
  kex.set_pk_id(h.pk_id);
  kex.set_spk_id(h.spk_id);
  kex.set_ik(h.ik.data(), h.ik.size());
  kex.set_ek(h.ek.data(), h.ek.size());
  if (!parse_protobuf(*kex.mutable_message(), authenticated_message))
    throw std::logic_error("wrap_key_exchange: not an OMEMOAuthenticatedMessage");
  crypto::Bytes out(kex.ByteSizeLong());
  kex.SerializeToArray(out.data(), static_cast<int>(out.size()));
  return out;
}

Result<ParsedKeyExchange> unwrap_key_exchange(ByteView bytes) {
  wire::OMEMOKeyExchange kex;
  if (!parse_protobuf(kex, bytes)) return Errc::bad_protobuf;
  if (kex.ik().size() != 32 || kex.ek().size() != 32) return Errc::bad_key;
  ParsedKeyExchange out;
  out.header = {kex.pk_id(), kex.spk_id(), crypto::Ed25519Public::from(as_bytes(kex.ik())),
                crypto::X25519Public::from(as_bytes(kex.ek()))};
  out.authenticated_message.resize(kex.message().ByteSizeLong());
  kex.message().SerializeToArray(out.authenticated_message.data(),
                                 static_cast<int>(out.authenticated_message.size()));
  return out;
}

}  // namespace multiend::omemo
