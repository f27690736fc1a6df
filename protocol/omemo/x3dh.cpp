#include "protocol/omemo/x3dh.hpp"

#include <algorithm>

#include "protocol/crypto/kdf.hpp"

namespace multiend::omemo {
namespace {

X3dhResult derive(const Secret<32>* dh[4], const crypto::Ed25519Public& initiator,
                  const crypto::Ed25519Public& responder) {
  Secret<32 * 5> ikm;
  std::fill_n(ikm.data(), 32, 0xFF);
  for (int i = 0; i < 4; ++i) std::copy_n(dh[i]->data(), 32, ikm.data() + 32 * (i + 1));
  X3dhResult r;
  crypto::hkdf_sha256(ikm.view(), {}, kInfoX3dh, r.shared_secret.span());
  std::copy_n(initiator.data(), 32, r.ad.begin());
  std::copy_n(responder.data(), 32, r.ad.begin() + 32);
  return r;
}

}  // namespace

Result<X3dhResult> x3dh_active(const crypto::IdentityKeyPair& own, const X25519KeyPair& ephemeral,
                               const Bundle& peer, const PreKeyPublic& chosen) {
  if (!crypto::ed25519_verify(peer.ik, peer.spk.view(), peer.spks)) return Errc::bad_signature;
  auto peer_ik_x = crypto::ed25519_pub_to_x25519(peer.ik);
  if (!peer_ik_x) return peer_ik_x.error();
  Secret<32> own_x = own.x25519_private();
  auto dh1 = crypto::x25519(own_x, peer.spk);
  auto dh2 = crypto::x25519(ephemeral.priv, *peer_ik_x);
  auto dh3 = crypto::x25519(ephemeral.priv, peer.spk);
  auto dh4 = crypto::x25519(ephemeral.priv, chosen.key);
  if (!dh1 || !dh2 || !dh3 || !dh4) return Errc::bad_key;
  const Secret<32>* dh[4] = {&*dh1, &*dh2, &*dh3, &*dh4};
  return derive(dh, own.pub(), peer.ik);
}

Result<X3dhResult> x3dh_passive(const crypto::IdentityKeyPair& own, const X25519KeyPair& spk,
                                const X25519KeyPair& opk, const crypto::Ed25519Public& peer_ik,
                                const X25519Public& peer_ek) {
  auto peer_ik_x = crypto::ed25519_pub_to_x25519(peer_ik);
  if (!peer_ik_x) return peer_ik_x.error();
  Secret<32> own_x = own.x25519_private();
  auto dh1 = crypto::x25519(spk.priv, *peer_ik_x);
  auto dh2 = crypto::x25519(own_x, peer_ek);
  auto dh3 = crypto::x25519(spk.priv, peer_ek);
  auto dh4 = crypto::x25519(opk.priv, peer_ek);
  if (!dh1 || !dh2 || !dh3 || !dh4) return Errc::bad_key;
  const Secret<32>* dh[4] = {&*dh1, &*dh2, &*dh3, &*dh4};
  return derive(dh, peer_ik, own.pub());
}

}  // namespace multiend::omemo
