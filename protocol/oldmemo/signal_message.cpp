#include "protocol/oldmemo/signal_message.hpp"

#include "oldmemo.pb.h"
#include "protocol/crypto/kdf.hpp"
#include "protocol/omemo/protobuf_parse.hpp"

namespace multiend::oldmemo {

using omemo::as_bytes;
namespace {

template <class Message>
Bytes versioned(const Message& m) {
  Bytes out(1 + m.ByteSizeLong());
  out[0] = kVersionByte;
  m.SerializeToArray(out.data() + 1, static_cast<int>(out.size() - 1));
  return out;
}

std::string key_string(const X25519Public& k) {
  Bytes b = encode_key(k);
  return std::string(b.begin(), b.end());
}

}  // namespace

Bytes encode_key(const X25519Public& k) {
  Bytes out(kKeySize);
  out[0] = kDjbType;
  std::copy(k.bytes.begin(), k.bytes.end(), out.begin() + 1);
  return out;
}

Result<X25519Public> decode_key(ByteView b) {
  if (b.size() != kKeySize || b[0] != kDjbType) return Errc::bad_key;
  return X25519Public::from(b.subspan(1));
}

Bytes signal_message_body(const SignalHeader& h, ByteView ciphertext) {
  oldwire::SignalMessage m;
  m.set_ratchet_key(key_string(h.ratchet_key));
  m.set_counter(h.counter);
  m.set_previous_counter(h.previous_counter);
  m.set_ciphertext(ciphertext.data(), ciphertext.size());
  return versioned(m);
}

std::array<std::uint8_t, kMacSize> signal_message_mac(const crypto::Secret<32>& mac_key, ByteView ad, ByteView body) {
  auto full = crypto::hmac_sha256(mac_key.view(), ad, body);
  std::array<std::uint8_t, kMacSize> out{};
  std::copy(full.data(), full.data() + kMacSize, out.begin());
  return out;
}

Result<ParsedSignalMessage> parse_signal_message(ByteView wire) {
  if (wire.size() < 1 + kMacSize || wire[0] != kVersionByte) return Errc::bad_protobuf;
  ParsedSignalMessage p;
  p.body = wire.first(wire.size() - kMacSize);
  p.mac = wire.last(kMacSize);
  oldwire::SignalMessage m;
  if (!omemo::parse_protobuf(m, p.body.subspan(1))) return Errc::bad_protobuf;
  if (!m.has_ratchet_key() || !m.has_counter() || !m.has_ciphertext()) return Errc::bad_protobuf;
  auto key = decode_key(as_bytes(m.ratchet_key()));
  if (!key) return key.error();
  p.header = {*key, m.counter(), m.previous_counter()};
  p.ciphertext.assign(m.ciphertext().begin(), m.ciphertext().end());
  return p;
}

Bytes wrap_prekey_message(const PreKeyHeader& h, ByteView signal_message, std::optional<std::uint32_t> registration_id) {
  oldwire::PreKeySignalMessage m;
  m.set_pre_key_id(h.pre_key_id);
  m.set_base_key(key_string(h.base_key));
  m.set_identity_key(key_string(h.identity_key));
  m.set_message(signal_message.data(), signal_message.size());
  if (registration_id) m.set_registration_id(*registration_id);
  m.set_signed_pre_key_id(h.signed_pre_key_id);
  return versioned(m);
}

Result<ParsedPreKeyMessage> unwrap_prekey_message(ByteView wire) {
  if (wire.empty() || wire[0] != kVersionByte) return Errc::bad_protobuf;
  oldwire::PreKeySignalMessage m;
  if (!omemo::parse_protobuf(m, wire.subspan(1))) return Errc::bad_protobuf;
  if (!m.has_pre_key_id() || !m.has_signed_pre_key_id() || !m.has_base_key() || !m.has_identity_key() ||
      !m.has_message())
    return Errc::bad_protobuf;
  auto base = decode_key(as_bytes(m.base_key()));
  if (!base) return base.error();
  auto ik = decode_key(as_bytes(m.identity_key()));
  if (!ik) return ik.error();
  ParsedPreKeyMessage p;
  p.header = {m.pre_key_id(), m.signed_pre_key_id(), *base, *ik};
  p.signal_message.assign(m.message().begin(), m.message().end());
  return p;
}

}  // namespace multiend::oldmemo
