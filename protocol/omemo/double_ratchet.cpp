#include "protocol/omemo/double_ratchet.hpp"

#include <algorithm>

#include "protocol/crypto/aes_cbc.hpp"
#include "protocol/crypto/kdf.hpp"
#include "protocol/omemo/protobuf_parse.hpp"
#include "session_state.pb.h"

namespace multiend::omemo {
namespace {

constexpr std::size_t kMaxPreviousDhr = 16;
constexpr std::size_t kMaxAdSize = 256;

}  // namespace

std::pair<Secret<32>, Secret<32>> kdf_rk(const Secret<32>& rk, const Secret<32>& dh_out, std::string_view info) {
  Secret<64> out;
  crypto::hkdf_sha256(dh_out.view(), rk.view(), info, out.span());
  return {Secret<32>(ByteView(out.data(), 32)), Secret<32>(ByteView(out.data() + 32, 32))};
}

std::pair<Secret<32>, Secret<32>> kdf_ck(const Secret<32>& ck) {
  static constexpr std::uint8_t kMk = 0x01, kCk = 0x02;
  return {crypto::hmac_sha256(ck.view(), ByteView(&kCk, 1)),
          crypto::hmac_sha256(ck.view(), ByteView(&kMk, 1))};
}

MessageKeys expand_message_key(const Secret<32>& mk, std::string_view info) {
  Secret<80> out;
  crypto::hkdf_sha256(mk.view(), {}, info, out.span());
  return {Secret<32>(ByteView(out.data(), 32)), Secret<32>(ByteView(out.data() + 32, 32)),
          Secret<16>(ByteView(out.data() + 64, 16))};
}

Result<MessageHeader> peek_header(ByteView authenticated_message, const RatchetWire& wire) {
  auto p = wire.parse(authenticated_message);
  if (!p) return p.error();
  return MessageHeader{p->header.n, p->header.pn, p->header.dh_pub};
}

// Verifies the truncated MAC over AD ‖ the message bytes as received, then decrypts.
Result<SecretBytes> DoubleRatchet::open(const Secret<32>& mk, const WireMessage& m) const {
  MessageKeys keys = expand_message_key(mk, wire_->message_key_info());
  Secret<32> full = crypto::hmac_sha256(keys.hmac_key.view(), ByteView(recv_ad_), ByteView(m.authenticated));
  if (m.mac.size() != wire_->mac_size() || !crypto::ct_equal(ByteView(full.data(), m.mac.size()), ByteView(m.mac)))
    return Errc::mac_mismatch;
  return crypto::aes256_cbc_decrypt(keys.aes_key, keys.iv.view(), ByteView(m.ciphertext));
}

Result<DoubleRatchet> DoubleRatchet::init_active(Secret<32> shared_secret, const AssociatedData& ad,
                                                 X25519KeyPair own_ratchet, const X25519Public& peer_spk) {
  return init_active(omemo2_wire(), std::move(shared_secret), ByteView(ad), ByteView(ad), std::move(own_ratchet), peer_spk);
}

DoubleRatchet DoubleRatchet::init_passive(Secret<32> shared_secret, const AssociatedData& ad, X25519KeyPair own_spk) {
  return init_passive(omemo2_wire(), std::move(shared_secret), ByteView(ad), ByteView(ad), std::move(own_spk));
}

Result<DoubleRatchet> DoubleRatchet::init_active(const RatchetWire& wire, Secret<32> shared_secret, ByteView send_ad,
                                                 ByteView recv_ad, X25519KeyPair own_ratchet,
                                                 const X25519Public& peer_spk) {
  DoubleRatchet r;
  r.wire_ = &wire;
  r.send_ad_.assign(send_ad.begin(), send_ad.end());
  r.recv_ad_.assign(recv_ad.begin(), recv_ad.end());
  auto dh = crypto::x25519(own_ratchet.priv, peer_spk);
  if (!dh) return dh.error();
  auto [rk, cks] = kdf_rk(shared_secret, *dh, wire.root_info());
  r.rk_ = std::move(rk);
  r.cks_ = std::move(cks);
  r.dhs_ = std::move(own_ratchet);
  r.dhr_ = peer_spk;
  return r;
}

DoubleRatchet DoubleRatchet::init_passive(const RatchetWire& wire, Secret<32> shared_secret, ByteView send_ad,
                                          ByteView recv_ad, X25519KeyPair own_spk) {
  DoubleRatchet r;
  r.wire_ = &wire;
  r.send_ad_.assign(send_ad.begin(), send_ad.end());
  r.recv_ad_.assign(recv_ad.begin(), recv_ad.end());
  r.rk_ = std::move(shared_secret);
  r.dhs_ = std::move(own_spk);
  return r;
}

Result<Bytes> DoubleRatchet::encrypt(ByteView plaintext) {
  if (!cks_) return Errc::no_session;
  auto [next_ck, mk] = kdf_ck(*cks_);
  MessageKeys keys = expand_message_key(mk, wire_->message_key_info());
  Bytes ct = crypto::aes256_cbc_encrypt(keys.aes_key, keys.iv.view(), plaintext);
  // Encoded once; the MAC covers exactly these bytes.
  Bytes authenticated = wire_->encode(WireHeader{ns_, pn_, dhs_.pub}, ct);
  Secret<32> mac = crypto::hmac_sha256(keys.hmac_key.view(), ByteView(send_ad_), ByteView(authenticated));
  Bytes out = wire_->frame(std::move(authenticated), ByteView(mac.data(), wire_->mac_size()));
  cks_ = std::move(next_ck);
  ++ns_;
  return out;
}

Result<SecretBytes> DoubleRatchet::decrypt(ByteView bytes, crypto::Rng& rng) {
  auto parsed = wire_->parse(bytes);
  if (!parsed) return parsed.error();
  const WireMessage& msg = *parsed;
  const X25519Public& dh_pub = msg.header.dh_pub;
  const std::uint32_t n = msg.header.n;

  // 1. A key skipped earlier: remove it only once it has worked.
  for (auto it = skipped_.begin(); it != skipped_.end(); ++it) {
    if (it->n == n && it->dh == dh_pub) {
      auto pt = open(it->mk, msg);
      if (pt) skipped_.erase(it);
      return pt;
    }
  }
  if (std::find(previous_dhr_.begin(), previous_dhr_.end(), dh_pub) != previous_dhr_.end())
    return Errc::duplicate_message;

  // 2. Work on scratch copies; commit only after the MAC and padding check out.
  Secret<32> rk = rk_.clone();
  std::optional<Secret<32>> ckr;
  if (ckr_) ckr = ckr_->clone();
  std::optional<Secret<32>> cks;
  if (cks_) cks = cks_->clone();
  std::optional<X25519KeyPair> new_dhs;
  std::uint32_t nr = nr_, ns = ns_, pn = pn_;
  std::vector<SkippedKey> fresh_skipped;
  const bool ratchet_step = !dhr_ || !(*dhr_ == dh_pub);

  if (ratchet_step) {
    // Keys left in the current receiving chain, up to the sender's previous chain length
    // (through index pn for libsignal's counting). Like twomemo, a gap there beyond the limit
    // is not stored rather than refused.
    const std::uint64_t end = std::uint64_t{msg.header.pn} + (wire_->keeps_key_at_previous_counter() ? 1 : 0);
    if (ckr && dhr_ && end > nr && end - nr <= kMaxSkippedPerMessage) {
      for (; nr < end; ++nr) {
        auto [next, mk] = kdf_ck(*ckr);
        fresh_skipped.push_back({*dhr_, nr, std::move(mk)});
        ckr = std::move(next);
      }
    }
    auto dh1 = crypto::x25519(dhs_.priv, dh_pub);
    if (!dh1) return dh1.error();
    auto [rk1, ckr1] = kdf_rk(rk, *dh1, wire_->root_info());
    new_dhs = X25519KeyPair::generate(rng);
    auto dh2 = crypto::x25519(new_dhs->priv, dh_pub);
    if (!dh2) return dh2.error();
    auto [rk2, cks2] = kdf_rk(rk1, *dh2, wire_->root_info());
    rk = std::move(rk2);
    ckr = std::move(ckr1);
    cks = std::move(cks2);
    pn = ns;
    ns = 0;
    nr = 0;
  }

  // A peer that reuses our view of its own ratchet key before we ever received from it.
  if (!ckr) return Errc::mac_mismatch;
  if (n < nr) return Errc::duplicate_message;
  if (n - nr > kMaxChainJump) return Errc::too_many_skipped;
  // Beyond the skip cap this is an authenticated jump: the keys in between are derived but
  // only the newest are kept, and all of it is dropped unless the MAC below verifies.
  for (; nr < n; ++nr) {
    auto [next, mk] = kdf_ck(*ckr);
    if (n - nr <= kMaxSkippedPerMessage) fresh_skipped.push_back({dh_pub, nr, std::move(mk)});
    ckr = std::move(next);
  }
  auto [next_ck, mk] = kdf_ck(*ckr);
  auto pt = open(mk, msg);
  if (!pt) return pt.error();

  // 3. Commit.
  if (ratchet_step) {
    if (dhr_) {
      previous_dhr_.push_back(*dhr_);
      if (previous_dhr_.size() > kMaxPreviousDhr) previous_dhr_.pop_front();
    }
    dhr_ = dh_pub;
    dhs_ = std::move(*new_dhs);
  }
  rk_ = std::move(rk);
  ckr_ = std::move(next_ck);
  cks_ = std::move(cks);
  nr_ = nr + 1;
  ns_ = ns;
  pn_ = pn;
  for (auto& k : fresh_skipped) skipped_.push_back(std::move(k));
  while (skipped_.size() > kMaxSkippedPerSession) skipped_.pop_front();
  return pt;
}

std::uint32_t DoubleRatchet::chain_steps_for(ByteView authenticated_message) const {
  auto p = wire_->parse(authenticated_message);
  if (!p) return 0;
  const std::uint32_t n = p->header.n;
  if (dhr_ && *dhr_ == p->header.dh_pub) return n >= nr_ ? n - nr_ : 0;
  return n;  // a new chain: counted from 0
}

std::size_t DoubleRatchet::drop_oldest_skipped(std::size_t keep) {
  std::size_t dropped = 0;
  while (skipped_.size() > keep) {
    skipped_.pop_front();
    ++dropped;
  }
  return dropped;
}

DoubleRatchet DoubleRatchet::clone() const {
  DoubleRatchet r;
  r.wire_ = wire_;
  r.send_ad_ = send_ad_;
  r.recv_ad_ = recv_ad_;
  r.rk_ = rk_.clone();
  r.dhs_ = dhs_.clone();
  r.dhr_ = dhr_;
  if (cks_) r.cks_ = cks_->clone();
  if (ckr_) r.ckr_ = ckr_->clone();
  r.ns_ = ns_;
  r.nr_ = nr_;
  r.pn_ = pn_;
  for (const auto& k : skipped_) r.skipped_.push_back({k.dh, k.n, k.mk.clone()});
  r.previous_dhr_ = previous_dhr_;
  return r;
}

void DoubleRatchet::to_state(state::Ratchet& out) const {
  out.set_ad(send_ad_.data(), send_ad_.size());
  if (recv_ad_ != send_ad_) out.set_recv_ad(recv_ad_.data(), recv_ad_.size());
  out.set_rk(rk_.data(), rk_.size());
  out.set_dhs_priv(dhs_.priv.data(), dhs_.priv.size());
  if (dhr_) out.set_dhr(dhr_->data(), dhr_->size());
  if (cks_) out.set_cks(cks_->data(), cks_->size());
  if (ckr_) out.set_ckr(ckr_->data(), ckr_->size());
  out.set_ns(ns_);
  out.set_nr(nr_);
  out.set_pn(pn_);
  for (const auto& k : skipped_) {
    auto* s = out.add_skipped();
    s->set_dh_pub(k.dh.data(), k.dh.size());
    s->set_n(k.n);
    s->set_mk(k.mk.data(), k.mk.size());
  }
  for (const auto& d : previous_dhr_) out.add_previous_dhr(d.data(), d.size());
}

Result<DoubleRatchet> DoubleRatchet::from_state(const state::Ratchet& in, const RatchetWire& wire) {
  auto is32 = [](const std::string& s) { return s.size() == 32; };
  auto ad_ok = [](const std::string& s) { return !s.empty() && s.size() <= kMaxAdSize; };
  if (!ad_ok(in.ad()) || (in.has_recv_ad() && !ad_ok(in.recv_ad())) || !is32(in.rk()) || !is32(in.dhs_priv()) ||
      (in.has_dhr() && !is32(in.dhr())) || (in.has_cks() && !is32(in.cks())) ||
      (in.has_ckr() && !is32(in.ckr())) ||
      static_cast<std::size_t>(in.skipped_size()) > kMaxSkippedPerSession)
    return Errc::bad_protobuf;
  DoubleRatchet r;
  r.wire_ = &wire;
  r.send_ad_.assign(in.ad().begin(), in.ad().end());
  if (in.has_recv_ad())
    r.recv_ad_.assign(in.recv_ad().begin(), in.recv_ad().end());
  else
    r.recv_ad_ = r.send_ad_;  // OMEMO 2: one AD both ways
  r.rk_ = Secret<32>(as_bytes(in.rk()));
  r.dhs_ = X25519KeyPair::from_private(Secret<32>(as_bytes(in.dhs_priv())));
  if (in.has_dhr()) r.dhr_ = X25519Public::from(as_bytes(in.dhr()));
  if (in.has_cks()) r.cks_ = Secret<32>(as_bytes(in.cks()));
  if (in.has_ckr()) r.ckr_ = Secret<32>(as_bytes(in.ckr()));
  r.ns_ = in.ns();
  r.nr_ = in.nr();
  r.pn_ = in.pn();
  for (const auto& s : in.skipped()) {
    if (!is32(s.dh_pub()) || !is32(s.mk())) return Errc::bad_protobuf;
    r.skipped_.push_back({X25519Public::from(as_bytes(s.dh_pub())), s.n(), Secret<32>(as_bytes(s.mk()))});
  }
  for (const auto& d : in.previous_dhr()) {
    if (!is32(d)) return Errc::bad_protobuf;
    r.previous_dhr_.push_back(X25519Public::from(as_bytes(d)));
  }
  return r;
}

}  // namespace multiend::omemo
