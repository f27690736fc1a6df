#include "protocol/error.hpp"

#include <string>

namespace multiend {
namespace {

class ProtocolCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "multiend.protocol"; }
  std::string message(int ev) const override {
    switch (static_cast<Errc>(ev)) {
      case Errc::ok: return "success";
      case Errc::xml_malformed: return "malformed XML";
      case Errc::xml_restricted: return "restricted XML construct (DTD, comment, PI)";
      case Errc::xml_too_large: return "stanza too large";
      case Errc::xml_too_deep: return "XML nesting too deep";
      case Errc::xml_bad_stream: return "bad stream header";
      case Errc::bad_jid: return "invalid JID";
      case Errc::bad_base64: return "invalid base64";
      case Errc::bad_protobuf: return "invalid protobuf message";
      case Errc::bad_element: return "element does not match the expected format";
      case Errc::bad_key: return "invalid public key";
      case Errc::bad_signature: return "signature does not verify";
      case Errc::mac_mismatch: return "MAC mismatch";
      case Errc::bad_padding: return "decryption failed (padding)";
      case Errc::duplicate_message: return "duplicate message";
      case Errc::too_many_skipped: return "too many skipped messages";
      case Errc::no_session: return "no session with this device";
      case Errc::unknown_prekey: return "unknown one-time prekey";
      case Errc::unknown_signed_prekey: return "unknown signed prekey";
      case Errc::not_for_this_device: return "message not encrypted for this device";
      case Errc::identity_mismatch: return "identity key mismatch";
      case Errc::repair_throttled: return "session repair throttled";
      case Errc::no_prekeys: return "bundle has no one-time prekeys";
      case Errc::limit_exceeded: return "size or count limit exceeded";
      case Errc::unsupported: return "not implemented";
      case Errc::bad_request: return "invalid request values";
    }
    return "unknown protocol error";
  }
};

}  // namespace

const boost::system::error_category& protocol_category() noexcept {
  static const ProtocolCategory cat;
  return cat;
}

}  // namespace multiend
