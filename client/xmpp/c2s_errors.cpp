// The c2s connection's error vocabulary: the ConnectError category (what each code means to a
// user), C2sError ("<meaning>: <detail>"), and password_from() for ConnectOptions. Knows
// nothing about sockets or XMPP.
#include <cstdint>

#include "client/xmpp/c2s_connection.hpp"

namespace multiend::client {

namespace {

class ConnectCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "multiend.c2s"; }
  std::string message(int ev) const override {
    switch (static_cast<ConnectError>(ev)) {
      case ConnectError::unreachable: return "server unreachable";
      case ConnectError::timeout: return "timeout";
      case ConnectError::tls_failed: return "TLS failed";
      case ConnectError::certificate_untrusted: return "certificate not trusted";
      case ConnectError::hostname_mismatch: return "certificate does not match the server name";
      case ConnectError::auth_failed: return "authentication failed";
      case ConnectError::no_supported_mechanism: return "no supported authentication mechanism";
      case ConnectError::stream_error: return "stream error";
      case ConnectError::bind_failed: return "resource binding failed";
      case ConnectError::disconnected: return "disconnected";
      case ConnectError::protocol_violation: return "protocol violation by the server";
      case ConnectError::tls_required: return "the server requires TLS";
    }
    return "unknown c2s error";
  }
};

}  // namespace

const boost::system::error_category& connect_category() noexcept {
  static const ConnectCategory cat;
  return cat;
}

boost::system::error_code make_error_code(ConnectError e) noexcept {
  return {static_cast<int>(e), connect_category()};
}

C2sError::C2sError(ConnectError code, const std::string& detail)
    : std::runtime_error(detail.empty() ? connect_category().message(static_cast<int>(code))
                                        : connect_category().message(static_cast<int>(code)) + ": " + detail),
      code_(code),
      detail_(detail) {}

crypto::SecretBytes password_from(std::string_view password) {
  return crypto::SecretBytes(crypto::ByteView(reinterpret_cast<const std::uint8_t*>(password.data()), password.size()));
}

}  // namespace multiend::client
