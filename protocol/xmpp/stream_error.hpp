// RFC 6120 §4.9 stream errors that we send when the peer's bytes cannot be accepted: which
// defined condition a parser error is, and the bytes that end the stream with it. Knows
// nothing of sockets: the caller writes the bytes and closes the connection.
#pragma once

#include <string>
#include <string_view>

#include "protocol/error.hpp"

namespace multiend::xmpp {

inline constexpr std::string_view kStreamErrorNs = "urn:ietf:params:xml:ns:xmpp-streams";

// The condition for an error from xml::StreamParser (an error_code of Errc values):
//   xml_restricted (DTD, comment, processing instruction, entity)  → "restricted-xml" (§11.1)
//   xml_too_large, xml_too_deep (our size, attribute, token, depth limits) → "policy-violation"
//   xml_bad_stream (the root is not <stream:stream>)               → "bad-format"
//   anything else, xml_malformed included                          → "not-well-formed"
std::string_view stream_error_condition(const boost::system::error_code& e) noexcept;

// "<stream:error><CONDITION xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"
// (the stream prefix of the header we sent). `condition` is one of ours, never peer input.
std::string stream_error_and_close(std::string_view condition);

}  // namespace multiend::xmpp
