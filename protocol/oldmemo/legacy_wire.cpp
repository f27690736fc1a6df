#include "protocol/oldmemo/legacy_wire.hpp"

#include "protocol/oldmemo/constants.hpp"
#include "protocol/oldmemo/signal_message.hpp"

namespace multiend::oldmemo {
namespace {

class LegacyWire final : public omemo::RatchetWire {
 public:
  std::string_view root_info() const noexcept override { return kInfoRootChain; }
  std::string_view message_key_info() const noexcept override { return kInfoMessageKeys; }
  std::size_t mac_size() const noexcept override { return kMacSize; }
  bool keeps_key_at_previous_counter() const noexcept override { return true; }

  crypto::Bytes encode(const omemo::WireHeader& h, crypto::ByteView ciphertext) const override {
    return signal_message_body({h.dh_pub, h.n, h.pn}, ciphertext);
  }

  crypto::Bytes frame(crypto::Bytes authenticated, crypto::ByteView mac) const override {
    authenticated.insert(authenticated.end(), mac.begin(), mac.end());
    return authenticated;
  }

  Result<omemo::WireMessage> parse(crypto::ByteView bytes) const override {
    auto p = parse_signal_message(bytes);
    if (!p) return p.error();
    omemo::WireMessage w;
    w.header = {p->header.counter, p->header.previous_counter, p->header.ratchet_key};
    w.ciphertext = std::move(p->ciphertext);
    w.authenticated.assign(p->body.begin(), p->body.end());
    w.mac.assign(p->mac.begin(), p->mac.end());
    return w;
  }
};

}  // namespace

const omemo::RatchetWire& legacy_wire() {
  static const LegacyWire w;
  return w;
}

crypto::Bytes ad_for(const crypto::X25519Public& sender_ik, const crypto::X25519Public& receiver_ik) {
  crypto::Bytes out = encode_key(sender_ik);
  crypto::Bytes r = encode_key(receiver_ik);
  out.insert(out.end(), r.begin(), r.end());
  return out;
}

}  // namespace multiend::oldmemo
