// Legacy OMEMO sessions over the shared ratchet (protocol/oldmemo/session, legacy_wire, x3dh):
// libsignal's previous counter, the bundle signature's sign bit, and the stored session state.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "protocol/crypto/random.hpp"
#include "protocol/oldmemo/legacy_wire.hpp"
#include "protocol/oldmemo/session.hpp"
#include "protocol/oldmemo/x3dh.hpp"
#include "protocol/omemo/double_ratchet.hpp"
#include "session_state.pb.h"

using namespace multiend;
using namespace multiend::crypto;
using namespace multiend::oldmemo;

namespace {

// The legacy wire with libsignal's sender habit (pn = messages on the previous chain − 1), or
// with python-doubleratchet's receiving rule (keys only below pn) for the negative check.
class TweakedWire final : public omemo::RatchetWire {
 public:
  TweakedWire(bool libsignal_pn, bool keep_at_pn) : libsignal_pn_(libsignal_pn), keep_at_pn_(keep_at_pn) {}
  std::string_view root_info() const noexcept override { return legacy_wire().root_info(); }
  std::string_view message_key_info() const noexcept override { return legacy_wire().message_key_info(); }
  std::size_t mac_size() const noexcept override { return legacy_wire().mac_size(); }
  bool keeps_key_at_previous_counter() const noexcept override { return keep_at_pn_; }
  Bytes encode(const omemo::WireHeader& h, ByteView ct) const override {
    omemo::WireHeader x = h;
    if (libsignal_pn_ && x.pn > 0) --x.pn;
    return legacy_wire().encode(x, ct);
  }
  Bytes frame(Bytes a, ByteView mac) const override { return legacy_wire().frame(std::move(a), mac); }
  Result<omemo::WireMessage> parse(ByteView b) const override { return legacy_wire().parse(b); }

 private:
  bool libsignal_pn_, keep_at_pn_;
};

// Alice (legacy_wire or `alice_wire`) and Bob (sending like libsignal) after one exchange;
// Bob sends three on his first chain, Alice reads two, answers, Bob starts a new chain and
// its first message arrives before his third. Returns whether that late third one opened.
bool late_message_opens(const omemo::RatchetWire& alice_wire) {
  static const TweakedWire bob_wire(true, true);
  DeterministicRng rng(7);
  auto alice = IdentityKeyPair::generate(rng), bob = IdentityKeyPair::generate(rng);
  auto spk = X25519KeyPair::generate(rng), opk = X25519KeyPair::generate(rng), ek = X25519KeyPair::generate(rng);
  LegacyBundle bundle{1, spk.pub, sign_signed_prekey(bob, spk.pub), curve_identity(bob), {{1, opk.pub}}};
  auto a = x3dh_active(alice, ek, bundle, bundle.prekeys[0]);
  REQUIRE(a.has_value());
  auto ar = *omemo::DoubleRatchet::init_active(alice_wire, std::move(a->keys.shared_secret), a->keys.send_ad,
                                               a->keys.recv_ad, X25519KeyPair::generate(rng), spk.pub);
  auto b = x3dh_passive(bob, spk, opk, curve_identity(alice), ek.pub);
  REQUIRE(b.has_value());
  auto br = omemo::DoubleRatchet::init_passive(bob_wire, std::move(b->shared_secret), b->send_ad, b->recv_ad, spk.clone());
  const Bytes km(32, 1);
  REQUIRE(br.decrypt(*ar.encrypt(km), rng).has_value());
  auto b0 = *br.encrypt(km), b1 = *br.encrypt(km), b2 = *br.encrypt(km);
  REQUIRE(ar.decrypt(b0, rng).has_value());
  REQUIRE(ar.decrypt(b1, rng).has_value());
  REQUIRE(br.decrypt(*ar.encrypt(km), rng).has_value());
  auto next = *br.encrypt(km);
  auto header = omemo::peek_header(next, legacy_wire());
  REQUIRE(header.has_value());
  CHECK(header->pn == 2);  // libsignal's count − 1
  REQUIRE(ar.decrypt(next, rng).has_value());
  return ar.decrypt(b2, rng).has_value();
}

}  // namespace

TEST_CASE("legacy ratchet: libsignal's previous counter (count − 1) still opens a late message") {
  CHECK(late_message_opens(legacy_wire()));
  // python-doubleratchet's rule (keys below pn only) loses it, as oldmemo does with libsignal
  CHECK_FALSE(late_message_opens(TweakedWire(false, false)));
}

TEST_CASE("legacy X3DH: the bundle's signature and its sign bit are checked before any DH") {
  DeterministicRng rng(8);
  auto alice = IdentityKeyPair::generate(rng), bob = IdentityKeyPair::generate(rng);
  auto spk = X25519KeyPair::generate(rng), opk = X25519KeyPair::generate(rng), ek = X25519KeyPair::generate(rng);
  LegacyBundle bundle{1, spk.pub, sign_signed_prekey(bob, spk.pub), curve_identity(bob), {{1, opk.pub}}};
  REQUIRE(x3dh_active(alice, ek, bundle, bundle.prekeys[0]).has_value());
  LegacyBundle flipped = bundle;
  flipped.spk_signature.bytes[63] ^= 0x80;
  CHECK(x3dh_active(alice, ek, flipped, flipped.prekeys[0]).error() == Errc::bad_signature);
  LegacyBundle other_spk = bundle;
  other_spk.spk = X25519KeyPair::generate(rng).pub;
  CHECK(x3dh_active(alice, ek, other_spk, other_spk.prekeys[0]).error() == Errc::bad_signature);
}

TEST_CASE("legacy session state: stored mid-conversation, restored, the conversation goes on") {
  DeterministicRng rng(9);
  auto alice = IdentityKeyPair::generate(rng), bob = IdentityKeyPair::generate(rng);
  auto spk = X25519KeyPair::generate(rng), opk = X25519KeyPair::generate(rng);
  LegacyBundle bundle{1, spk.pub, sign_signed_prekey(bob, spk.pub), curve_identity(bob), {{3, opk.pub}}};
  auto started = start_session(alice, {"bob@example.org", 2}, bundle, rng);
  REQUIRE(started.has_value());
  LegacySession a = std::move(started->session);
  const Bytes km(32, 4);
  auto k0 = *encrypt_key(a, km);
  auto k1 = *encrypt_key(a, km);
  auto k2 = *encrypt_key(a, km);
  REQUIRE(k0.prekey);
  auto pk = unwrap_prekey_message(k0.data);
  REQUIRE(pk.has_value());
  auto b = *accept_session(bob, {"alice@example.org", 1}, pk->header, spk, opk);
  REQUIRE(decrypt_key(b, pk->signal_message, rng).has_value());
  auto pk2 = unwrap_prekey_message(k2.data);
  REQUIRE(decrypt_key(b, pk2->signal_message, rng).has_value());  // k1 skipped: one key stored

  auto roundtrip = [](const LegacySession& s) {
    state::Session st;
    s.to_state(st);
    std::string bytes;
    REQUIRE(st.SerializeToString(&bytes));
    state::Session back;
    REQUIRE(back.ParseFromString(bytes));
    auto r = LegacySession::from_state(back);
    REQUIRE(r.has_value());
    // an OMEMO 2 reader refuses it, and a legacy reader refuses OMEMO 2's
    CHECK_FALSE(omemo::Session::from_state(back).has_value());
    back.clear_generation();
    CHECK_FALSE(LegacySession::from_state(back).has_value());
    return std::move(*r);
  };
  LegacySession a2 = roundtrip(a), b2 = roundtrip(b);
  CHECK(a2.sends_key_exchange());
  CHECK(a2.kex == a.kex);
  CHECK(b2.ratchet.skipped_key_count() == 1);
  auto pk1 = unwrap_prekey_message(k1.data);
  REQUIRE(built_from(b2, pk1->header));
  CHECK(decrypt_key(b2, pk1->signal_message, rng).has_value());  // the skipped key survived
  auto reply = *encrypt_key(b2, km);
  CHECK_FALSE(reply.prekey);
  REQUIRE(decrypt_key(a2, reply.data, rng).has_value());
  CHECK(a2.confirmed);
  CHECK_FALSE(encrypt_key(a2, km)->prekey);
}
