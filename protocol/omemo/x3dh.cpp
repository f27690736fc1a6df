#include "protocol/omemo/x3dh.hpp"

#include <algorithm>

#include "protocol/crypto/kdf.hpp"

namespace multiend::omemo {
namespace {

Result<Secret<32>> derive(const Result<Secret<32>>& dh1, const Result<Secret<32>>& dh2, const Result<Secret<32>>& dh3,
                          const Result<Secret<32>>& dh4, std::string_view info) {
  if (!dh1 || !dh2 || !dh3 || !dh4) return Errc::bad_key;
  Secret<32 * 5> ikm;
  std::fill_n(ikm.data(), 32, 0xFF);
  const Secret<32>* dh[4] = {&*dh1, &*dh2, &*dh3, &*dh4};
  for (int i = 0; i < 4; ++i) std::copy_n(dh[i]->data(), 32, ikm.data() + 32 * (i + 1));
  Secret<32> sk;
  crypto::hkdf_sha256(ikm.view(), {}, info, sk.span());
  return sk;
}

X3dhResult with_ad(Secret<32> sk, const crypto::Ed25519Public& initiator, const crypto::Ed25519Public& responder) {
  X3dhResult r;
  r.shared_secret = std::move(sk);
  std::copy_n(initiator.data(), 32, r.ad.begin());
  std::copy_n(responder.data(), 32, r.ad.begin() + 32);
  return r;
}

}  // namespace

Result<Secret<32>> x3dh_secret_active(const Secret<32>& own_ik, const Secret<32>& ephemeral, const X25519Public& peer_ik,
                                      const X25519Public& peer_spk, const X25519Public& peer_opk, std::string_view info) {
  return derive(crypto::x25519(own_ik, peer_spk), crypto::x25519(ephemeral, peer_ik), crypto::x25519(ephemeral, peer_spk),
                crypto::x25519(ephemeral, peer_opk), info);
}

Result<Secret<32>> x3dh_secret_passive(const Secret<32>& own_ik, const Secret<32>& spk, const Secret<32>& opk,
                                       const X25519Public& peer_ik, const X25519Public& peer_ek, std::string_view info) {
  return derive(crypto::x25519(spk, peer_ik), crypto::x25519(own_ik, peer_ek), crypto::x25519(spk, peer_ek),
                crypto::x25519(opk, peer_ek), info);
}

Result<X3dhResult> x3dh_active(const crypto::IdentityKeyPair& own, const X25519KeyPair& ephemeral,
                               const Bundle& peer, const PreKeyPublic& chosen) {
  if (!crypto::ed25519_verify(peer.ik, peer.spk.view(), peer.spks)) return Errc::bad_signature;
  auto peer_ik_x = crypto::ed25519_pub_to_x25519(peer.ik);
  if (!peer_ik_x) return peer_ik_x.error();
  auto sk = x3dh_secret_active(own.x25519_private(), ephemeral.priv, *peer_ik_x, peer.spk, chosen.key, kInfoX3dh);
  if (!sk) return sk.error();
  return with_ad(std::move(*sk), own.pub(), peer.ik);
}

Result<X3dhResult> x3dh_passive(const crypto::IdentityKeyPair& own, const X25519KeyPair& spk,
                                const X25519KeyPair& opk, const crypto::Ed25519Public& peer_ik,
                                const X25519Public& peer_ek) {
  auto peer_ik_x = crypto::ed25519_pub_to_x25519(peer_ik);
  if (!peer_ik_x) return peer_ik_x.error();
  auto sk = x3dh_secret_passive(own.x25519_private(), spk.priv, opk.priv, *peer_ik_x, peer_ek, kInfoX3dh);
  if (!sk) return sk.error();
  return with_ad(std::move(*sk), peer_ik, own.pub());
}

}  // namespace multiend::omemo
