// The Double Ratchet of both OMEMO generations (XEP-0384 §4; twomemo/oldmemo's
// doubleratchet 1.0.3, libsignal v3): KDF_RK / KDF_CK / the 80-byte message-key expansion,
// AES-256-CBC, a truncated HMAC over AD ‖ the message bytes as received, at most 1000 skipped
// keys per session (oldest dropped first) and per message. What differs between the
// generations (info strings, message layout, MAC size, the previous-chain counter) comes from
// a RatchetWire (ratchet_wire.hpp); the AD is given per direction (legacy OMEMO puts the
// sender first, OMEMO 2 uses one AD both ways). A message up to kMaxChainJump steps ahead is
// still tried (authenticated jump: derive forward, keep the newest keys, commit only if the MAC
// verifies). A decryption either fully succeeds and commits the new state, or leaves the state
// untouched. Knows nothing of X3DH, XML or storage.
#pragma once

#include <array>
#include <deque>
#include <optional>
#include <vector>

#include "protocol/crypto/random.hpp"
#include "protocol/crypto/secret.hpp"
#include "protocol/crypto/x25519.hpp"
#include "protocol/error.hpp"
#include "protocol/omemo/constants.hpp"
#include "protocol/omemo/ratchet_wire.hpp"

namespace multiend::state {
class Ratchet;
}

namespace multiend::omemo {

using crypto::Bytes;
using crypto::ByteView;
using crypto::Secret;
using crypto::SecretBytes;
using crypto::X25519KeyPair;
using crypto::X25519Public;
using AssociatedData = std::array<std::uint8_t, kAdSize>;

// KDF_RK: HKDF(IKM = dh_out, salt = rk, info, 64) → (new rk, chain key); info defaults to
// OMEMO 2's "OMEMO Root Chain".
std::pair<Secret<32>, Secret<32>> kdf_rk(const Secret<32>& rk, const Secret<32>& dh_out,
                                         std::string_view info = kInfoRootChain);
// KDF_CK: mk = HMAC(ck, 0x01), next ck = HMAC(ck, 0x02) → (next ck, mk).
std::pair<Secret<32>, Secret<32>> kdf_ck(const Secret<32>& ck);

struct MessageKeys {
  Secret<32> aes_key;
  Secret<32> hmac_key;
  Secret<16> iv;
};
// HKDF(IKM = mk, salt = 0×32, info, 80): aes[0:32] hmac[32:64] iv[64:80]; info defaults to
// OMEMO 2's "OMEMO Message Key Material".
MessageKeys expand_message_key(const Secret<32>& mk, std::string_view info = kInfoMessageKeys);

// The header fields of a received message, read before decrypting.
struct MessageHeader {
  std::uint32_t n = 0;
  std::uint32_t pn = 0;
  X25519Public dh_pub;
};
// Parses a message only far enough to see its header (for heartbeats); OMEMO 2 by default.
Result<MessageHeader> peek_header(ByteView authenticated_message, const RatchetWire& wire = omemo2_wire());

class DoubleRatchet {
 public:
  // Initiator: DHs = fresh pair, DHr = the responder's signed prekey. OMEMO 2: one AD.
  static Result<DoubleRatchet> init_active(Secret<32> shared_secret, const AssociatedData& ad,
                                           X25519KeyPair own_ratchet, const X25519Public& peer_spk);
  // Responder: DHs = the signed prekey pair, RK = SK; the first decrypt performs the DH step.
  static DoubleRatchet init_passive(Secret<32> shared_secret, const AssociatedData& ad,
                                    X25519KeyPair own_spk);
  // Either generation: `send_ad` goes into the MACs we write, `recv_ad` into those we check.
  static Result<DoubleRatchet> init_active(const RatchetWire& wire, Secret<32> shared_secret, ByteView send_ad,
                                           ByteView recv_ad, X25519KeyPair own_ratchet, const X25519Public& peer_spk);
  static DoubleRatchet init_passive(const RatchetWire& wire, Secret<32> shared_secret, ByteView send_ad,
                                    ByteView recv_ad, X25519KeyPair own_spk);

  // Encrypts `plaintext` (the per-message key material, or an empty message's bytes) into one
  // message in the wire's format. Errc::no_session when no sending chain exists yet.
  Result<Bytes> encrypt(ByteView plaintext);

  // Decrypts one message in the wire's format. `rng` supplies the next ratchet key.
  // Errors: bad_protobuf, bad_key, duplicate_message (an old counter: already read, its key
  // deleted — or forged; it cannot be authenticated), too_many_skipped (beyond kMaxChainJump),
  // mac_mismatch, bad_padding.
  Result<SecretBytes> decrypt(ByteView authenticated_message, crypto::Rng& rng);

  // How many chain steps decrypting this message would derive (0 if it cannot be parsed):
  // what an authenticated jump would cost before its MAC is checked.
  std::uint32_t chain_steps_for(ByteView authenticated_message) const;

  std::uint32_t sending_chain_length() const noexcept { return ns_; }
  std::uint32_t receiving_chain_length() const noexcept { return nr_; }
  std::size_t skipped_key_count() const noexcept { return skipped_.size(); }
  // Keeps only the newest `keep` skipped keys (budgets across sessions); returns how many went.
  std::size_t drop_oldest_skipped(std::size_t keep);
  const X25519Public& own_ratchet_public() const noexcept { return dhs_.pub; }

  DoubleRatchet clone() const;
  void to_state(state::Ratchet& out) const;
  // The wire is not stored: the session knows which generation it belongs to.
  static Result<DoubleRatchet> from_state(const state::Ratchet& in, const RatchetWire& wire = omemo2_wire());

 private:
  struct SkippedKey {
    X25519Public dh;
    std::uint32_t n;
    Secret<32> mk;
  };

  DoubleRatchet() = default;
  Result<SecretBytes> open(const Secret<32>& mk, const WireMessage& m) const;

  const RatchetWire* wire_ = &omemo2_wire();
  Bytes send_ad_, recv_ad_;
  Secret<32> rk_;
  X25519KeyPair dhs_;
  std::optional<X25519Public> dhr_;
  std::optional<Secret<32>> cks_;
  std::optional<Secret<32>> ckr_;
  std::uint32_t ns_ = 0, nr_ = 0, pn_ = 0;
  std::deque<SkippedKey> skipped_;
  // Receiving ratchet keys already stepped past: a message on one of them that is not in
  // skipped_ was already read (or its key evicted): report a duplicate, not a MAC failure.
  std::deque<X25519Public> previous_dhr_;
};

}  // namespace multiend::omemo
