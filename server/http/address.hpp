// The HTTP listener's address as written in the configuration: "IP:PORT", an IPv6 address in
// brackets ("[::1]:9100"). Only IP literals: a host name would need a resolver at start-up and
// could bind something other than what the operator reads in the file.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/system/result.hpp>
#include <string>
#include <string_view>

namespace multiend::server {

// The endpoint, or a short sentence saying what is wrong (for a one-line config error). Never
// throws: the text comes from an operator's file or command line.
boost::system::result<boost::asio::ip::tcp::endpoint, std::string> parse_http_address(std::string_view text);

}  // namespace multiend::server
