// What differs between the two OMEMO generations inside the Double Ratchet, and nothing else:
// the KDF info strings, how one message is laid out around its MAC, and what the previous-chain
// counter means. The ratchet (double_ratchet.*) is one algorithm for both and calls these.
// OMEMO 2's profile is omemo2_wire() (omemo/omemo2_wire.cpp), legacy OMEMO's is
// oldmemo::legacy_wire() (oldmemo/legacy_wire.cpp). Knows no keys, sessions or storage.
#pragma once

#include <cstdint>
#include <string_view>

#include "protocol/crypto/secret.hpp"
#include "protocol/crypto/x25519.hpp"
#include "protocol/error.hpp"

namespace multiend::omemo {

struct WireHeader {
  std::uint32_t n = 0;
  std::uint32_t pn = 0;
  crypto::X25519Public dh_pub;
};

// One received message, parsed but not yet authenticated.
struct WireMessage {
  WireHeader header;
  crypto::Bytes ciphertext;
  crypto::Bytes authenticated;  // what the MAC covers after the associated data
  crypto::Bytes mac;            // mac_size() bytes
};

class RatchetWire {
 public:
  virtual ~RatchetWire() = default;
  virtual std::string_view root_info() const noexcept = 0;         // KDF_RK's HKDF info
  virtual std::string_view message_key_info() const noexcept = 0;  // the 80-byte expansion's
  virtual std::size_t mac_size() const noexcept = 0;               // HMAC-SHA-256, truncated
  // libsignal writes pn = (messages sent on the previous chain) − 1, python-doubleratchet the
  // count: a receiver of the first keeps the key at index pn too.
  virtual bool keeps_key_at_previous_counter() const noexcept = 0;
  // The bytes the MAC covers (after the AD): header and ciphertext.
  virtual crypto::Bytes encode(const WireHeader& h, crypto::ByteView ciphertext) const = 0;
  // The message on the wire from those bytes and the truncated MAC.
  virtual crypto::Bytes frame(crypto::Bytes authenticated, crypto::ByteView mac) const = 0;
  // Untrusted bytes: bad_protobuf / bad_key, never throws.
  virtual Result<WireMessage> parse(crypto::ByteView bytes) const = 0;
};

const RatchetWire& omemo2_wire();

}  // namespace multiend::omemo
