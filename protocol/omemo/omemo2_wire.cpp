// OMEMO 2's ratchet wire (XEP-0384 0.9, twomemo 1.0.3): OMEMOAuthenticatedMessage{mac16,
// OMEMOMessage{n, pn, dh_pub, ciphertext}}; the MAC covers AD ‖ the OMEMOMessage bytes.
#include "omemo.pb.h"
#include "protocol/omemo/constants.hpp"
#include "protocol/omemo/protobuf_parse.hpp"
#include "protocol/omemo/ratchet_wire.hpp"

namespace multiend::omemo {
namespace {

class Omemo2Wire final : public RatchetWire {
 public:
  std::string_view root_info() const noexcept override { return kInfoRootChain; }
  std::string_view message_key_info() const noexcept override { return kInfoMessageKeys; }
  std::size_t mac_size() const noexcept override { return kMacSize; }
  bool keeps_key_at_previous_counter() const noexcept override { return false; }

  crypto::Bytes encode(const WireHeader& h, crypto::ByteView ciphertext) const override {
    wire::OMEMOMessage m;
    m.set_n(h.n);
    m.set_pn(h.pn);
    m.set_dh_pub(h.dh_pub.data(), h.dh_pub.size());
    m.set_ciphertext(ciphertext.data(), ciphertext.size());
    crypto::Bytes out(m.ByteSizeLong());
    m.SerializeToArray(out.data(), static_cast<int>(out.size()));
    return out;
  }

  crypto::Bytes frame(crypto::Bytes authenticated, crypto::ByteView mac) const override {
    wire::OMEMOAuthenticatedMessage auth;
    auth.set_mac(mac.data(), mac.size());
    auth.set_message(authenticated.data(), authenticated.size());
    crypto::Bytes out(auth.ByteSizeLong());
    auth.SerializeToArray(out.data(), static_cast<int>(out.size()));
    return out;
  }

  Result<WireMessage> parse(crypto::ByteView bytes) const override {
    wire::OMEMOAuthenticatedMessage auth;
    if (!parse_protobuf(auth, bytes)) return Errc::bad_protobuf;
    if (auth.mac().size() != kMacSize) return Errc::bad_protobuf;
    wire::OMEMOMessage msg;
    if (!parse_protobuf(msg, auth.message())) return Errc::bad_protobuf;
    if (msg.dh_pub().size() != 32) return Errc::bad_key;
    WireMessage w;
    w.header = {msg.n(), msg.pn(), crypto::X25519Public::from(as_bytes(msg.dh_pub()))};
    w.ciphertext.assign(msg.ciphertext().begin(), msg.ciphertext().end());
    w.authenticated.assign(auth.message().begin(), auth.message().end());
    w.mac.assign(auth.mac().begin(), auth.mac().end());
    return w;
  }
};

}  // namespace

const RatchetWire& omemo2_wire() {
  static const Omemo2Wire w;
  return w;
}

}  // namespace multiend::omemo
