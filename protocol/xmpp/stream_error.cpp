#include "protocol/xmpp/stream_error.hpp"

namespace multiend::xmpp {

std::string_view stream_error_condition(const boost::system::error_code& e) noexcept {
  if (e == Errc::xml_restricted) return "restricted-xml";
  if (e == Errc::xml_too_large || e == Errc::xml_too_deep) return "policy-violation";
  if (e == Errc::xml_bad_stream) return "bad-format";
  return "not-well-formed";
}

std::string stream_error_and_close(std::string_view condition) {
  std::string s = "<stream:error><";
  s += condition;
  s += " xmlns='";
  s += kStreamErrorNs;
  s += "'/></stream:error></stream:stream>";
  return s;
}

}  // namespace multiend::xmpp
