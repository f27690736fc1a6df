// The legacy OMEMO wire messages (shared/reference/oldmemo.md §3.3, §3.6): the 33-byte key
// encoding, SignalMessage = 0x33 ‖ protobuf ‖ 8-byte MAC over sender IK ‖ receiver IK ‖ the
// rest, and the PreKeySignalMessage around the first ones. Builders and parsers of bytes only:
// keys come in, nothing is stored, no ratchet state. Parsers take untrusted input and answer
// with values (bad_protobuf, bad_key), never throw.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "protocol/crypto/secret.hpp"
#include "protocol/crypto/x25519.hpp"
#include "protocol/error.hpp"
#include "protocol/oldmemo/constants.hpp"

namespace multiend::oldmemo {

using crypto::Bytes;
using crypto::ByteView;
using crypto::X25519Public;

// 0x05 ‖ u.
Bytes encode_key(const X25519Public& k);
// Errc::bad_key unless 33 bytes starting with 0x05.
Result<X25519Public> decode_key(ByteView b);

struct SignalHeader {
  X25519Public ratchet_key;
  std::uint32_t counter = 0;           // n
  std::uint32_t previous_counter = 0;  // pn
};

// 0x33 ‖ SignalMessage{ratchet_key, counter, previous_counter, ciphertext}: what the MAC covers
// after the two identity keys.
Bytes signal_message_body(const SignalHeader& h, ByteView ciphertext);
// HMAC-SHA-256(mac_key, ad ‖ body)[0:8]; `ad` = 0x05‖IK_sender ‖ 0x05‖IK_receiver.
std::array<std::uint8_t, kMacSize> signal_message_mac(const crypto::Secret<32>& mac_key, ByteView ad, ByteView body);

struct ParsedSignalMessage {
  SignalHeader header;
  Bytes ciphertext;
  ByteView body;  // into the parsed bytes: the caller keeps them alive while checking the MAC
  ByteView mac;
};
// Errc::bad_protobuf for a wrong version byte, a short message or missing fields; bad_key for
// a ratchet key that is not 0x05 ‖ 32 bytes.
Result<ParsedSignalMessage> parse_signal_message(ByteView wire);

struct PreKeyHeader {
  std::uint32_t pre_key_id = 0;
  std::uint32_t signed_pre_key_id = 0;
  X25519Public base_key;      // EK
  X25519Public identity_key;  // the sender's identity, Curve25519 form
  friend bool operator==(const PreKeyHeader&, const PreKeyHeader&) = default;
};

// 0x33 ‖ PreKeySignalMessage{pre_key_id, base_key, identity_key, message, [registration_id],
// signed_pre_key_id}, in field order as libsignal writes them.
Bytes wrap_prekey_message(const PreKeyHeader& h, ByteView signal_message,
                          std::optional<std::uint32_t> registration_id = std::nullopt);

struct ParsedPreKeyMessage {
  PreKeyHeader header;
  Bytes signal_message;
};
// A key exchange without a one-time prekey id is refused (bad_protobuf), as oldmemo and
// Conversations do.
Result<ParsedPreKeyMessage> unwrap_prekey_message(ByteView wire);

}  // namespace multiend::oldmemo
