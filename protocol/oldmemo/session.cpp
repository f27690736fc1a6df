#include "protocol/oldmemo/session.hpp"

#include "protocol/oldmemo/legacy_wire.hpp"
#include "protocol/oldmemo/x3dh.hpp"
#include "protocol/omemo/protobuf_parse.hpp"
#include "session_state.pb.h"

namespace multiend::oldmemo {

using omemo::as_bytes;
namespace {

constexpr std::uint32_t kGeneration = 1;

}  // namespace

void LegacySession::to_state(state::Session& out) const {
  out.set_peer_jid(peer.jid);
  out.set_peer_device(peer.device);
  out.set_active(initiation == omemo::Initiation::active);
  out.set_confirmed(confirmed);
  out.set_kex_pk_id(kex.pre_key_id);
  out.set_kex_spk_id(kex.signed_pre_key_id);
  out.set_kex_ik(kex.identity_key.data(), kex.identity_key.size());
  out.set_kex_ek(kex.base_key.data(), kex.base_key.size());
  out.set_peer_ik(peer_ik.data(), peer_ik.size());
  out.set_generation(kGeneration);
  ratchet.to_state(*out.mutable_ratchet());
}

Result<LegacySession> LegacySession::from_state(const state::Session& in) {
  if (!in.has_generation() || in.generation() != kGeneration) return Errc::bad_protobuf;
  if (in.kex_ik().size() != 32 || in.kex_ek().size() != 32 || in.peer_ik().size() != 32) return Errc::bad_protobuf;
  auto ratchet = omemo::DoubleRatchet::from_state(in.ratchet(), legacy_wire());
  if (!ratchet) return ratchet.error();
  return LegacySession{{in.peer_jid(), in.peer_device()},
                       in.active() ? omemo::Initiation::active : omemo::Initiation::passive,
                       in.confirmed(),
                       PreKeyHeader{in.kex_pk_id(), in.kex_spk_id(), crypto::X25519Public::from(as_bytes(in.kex_ek())),
                                    crypto::X25519Public::from(as_bytes(in.kex_ik()))},
                       crypto::X25519Public::from(as_bytes(in.peer_ik())),
                       std::move(*ratchet)};
}

Result<StartedSession> start_session(const crypto::IdentityKeyPair& own, omemo::DeviceAddress peer,
                                     const LegacyBundle& bundle, crypto::Rng& rng) {
  if (bundle.prekeys.empty()) return Errc::no_prekeys;
  const omemo::PreKeyPublic& chosen = bundle.prekeys[rng.uniform(static_cast<std::uint32_t>(bundle.prekeys.size()))];
  auto ek = crypto::X25519KeyPair::generate(rng);
  auto x = x3dh_active(own, ek, bundle, chosen);
  if (!x) return x.error();
  auto ratchet = omemo::DoubleRatchet::init_active(legacy_wire(), std::move(x->keys.shared_secret), x->keys.send_ad,
                                                   x->keys.recv_ad, crypto::X25519KeyPair::generate(rng), bundle.spk);
  if (!ratchet) return ratchet.error();
  LegacySession s{std::move(peer), omemo::Initiation::active, false,
                  PreKeyHeader{chosen.id, bundle.spk_id, ek.pub, curve_identity(own)}, bundle.ik, std::move(*ratchet)};
  return StartedSession{std::move(s), x->peer_ik};
}

Result<LegacyKey> encrypt_key(LegacySession& s, crypto::ByteView key_material) {
  auto message = s.ratchet.encrypt(key_material);
  if (!message) return message.error();
  if (s.sends_key_exchange()) return LegacyKey{s.peer.device, true, wrap_prekey_message(s.kex, *message)};
  return LegacyKey{s.peer.device, false, std::move(*message)};
}

Result<LegacySession> accept_session(const crypto::IdentityKeyPair& own, omemo::DeviceAddress peer,
                                     const PreKeyHeader& kex, const crypto::X25519KeyPair& spk,
                                     const crypto::X25519KeyPair& opk) {
  auto x = x3dh_passive(own, spk, opk, kex.identity_key, kex.base_key);
  if (!x) return x.error();
  auto ratchet = omemo::DoubleRatchet::init_passive(legacy_wire(), std::move(x->shared_secret), x->send_ad, x->recv_ad,
                                                    spk.clone());
  return LegacySession{std::move(peer), omemo::Initiation::passive, true, kex, kex.identity_key, std::move(ratchet)};
}

bool built_from(const LegacySession& s, const PreKeyHeader& kex) {
  return s.initiation == omemo::Initiation::passive && s.kex == kex;
}

Result<crypto::SecretBytes> decrypt_key(LegacySession& s, crypto::ByteView signal_message, crypto::Rng& rng) {
  auto km = s.ratchet.decrypt(signal_message, rng);
  if (!km) return km.error();
  s.confirmed = true;
  return km;
}

}  // namespace multiend::oldmemo
