#include "protocol/oldmemo/x3dh.hpp"

#include "protocol/crypto/xeddsa.hpp"
#include "protocol/oldmemo/constants.hpp"
#include "protocol/oldmemo/legacy_wire.hpp"
#include "protocol/oldmemo/signal_message.hpp"
#include "protocol/omemo/x3dh.hpp"

namespace multiend::oldmemo {

crypto::X25519Public curve_identity(const crypto::IdentityKeyPair& own) {
  auto u = crypto::ed25519_pub_to_x25519(own.pub());
  if (!u) throw std::logic_error("our own identity key has no Curve25519 form");
  return *u;
}

crypto::Ed25519Signature sign_signed_prekey(const crypto::IdentityKeyPair& own, const crypto::X25519Public& spk) {
  return crypto::sign_with_sign_bit(own, encode_key(spk));
}

Result<ActiveX3dh> x3dh_active(const crypto::IdentityKeyPair& own, const crypto::X25519KeyPair& ephemeral,
                               const LegacyBundle& peer, const omemo::PreKeyPublic& chosen) {
  auto peer_ed = crypto::verify_with_sign_bit(peer.ik, encode_key(peer.spk), peer.spk_signature);
  if (!peer_ed) return peer_ed.error();
  auto sk = omemo::x3dh_secret_active(own.x25519_private(), ephemeral.priv, peer.ik, peer.spk, chosen.key, kInfoX3dh);
  if (!sk) return sk.error();
  const auto own_u = curve_identity(own);
  return ActiveX3dh{{std::move(*sk), ad_for(own_u, peer.ik), ad_for(peer.ik, own_u)}, *peer_ed};
}

Result<LegacyX3dh> x3dh_passive(const crypto::IdentityKeyPair& own, const crypto::X25519KeyPair& spk,
                                const crypto::X25519KeyPair& opk, const crypto::X25519Public& peer_ik,
                                const crypto::X25519Public& peer_ek) {
  auto sk = omemo::x3dh_secret_passive(own.x25519_private(), spk.priv, opk.priv, peer_ik, peer_ek, kInfoX3dh);
  if (!sk) return sk.error();
  const auto own_u = curve_identity(own);
  return LegacyX3dh{std::move(*sk), ad_for(own_u, peer_ik), ad_for(peer_ik, own_u)};
}

}  // namespace multiend::oldmemo
