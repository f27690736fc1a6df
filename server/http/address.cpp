#include "server/http/address.hpp"

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cstdint>

namespace multiend::server {

boost::system::result<boost::asio::ip::tcp::endpoint, std::string> parse_http_address(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::string("must be IP:PORT, e.g. 127.0.0.1:9100");
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) host = host.substr(1, host.size() - 2);
  // An unbracketed IPv6 address ("::1:9100") is ambiguous: refuse it rather than guess.
  if (!bracketed && host.find(':') != std::string_view::npos)
    return std::string("an IPv6 address must be in brackets, e.g. [::1]:9100");

  if (port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
    return std::string("port must be a number in 1..65535");
  std::uint32_t port = 0;
  for (char ch : port_text) port = port * 10 + static_cast<std::uint32_t>(ch - '0');
  if (port < 1 || port > 65535) return std::string("port must be a number in 1..65535");

  boost::system::error_code ec;
  const auto ip = boost::asio::ip::make_address(std::string(host), ec);
  if (ec) return std::string("host must be an IP address (no host names), e.g. 127.0.0.1 or [::1]");
  if (bracketed && !ip.is_v6()) return std::string("only IPv6 addresses go in brackets");
  return boost::asio::ip::tcp::endpoint(ip, static_cast<std::uint16_t>(port));
}

}  // namespace multiend::server
