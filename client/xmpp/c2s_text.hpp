// Internal to client/xmpp (not part of the C2sConnection API): the wire vocabulary of the c2s
// connection and pure text helpers. Builds the stream header, the bind/session iqs and the
// SASL elements; decodes SASL payloads; turns what the server sends into safe error text
// (sanitize, describe_*). No sockets, no connection state: callers decide what to send and when.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/xml/element.hpp"

namespace multiend::client::c2s_detail {

inline constexpr std::string_view kTlsNs = "urn:ietf:params:xml:ns:xmpp-tls";
inline constexpr std::string_view kSaslNs = "urn:ietf:params:xml:ns:xmpp-sasl";
inline constexpr std::string_view kBindNs = "urn:ietf:params:xml:ns:xmpp-bind";
inline constexpr std::string_view kSessionNs = "urn:ietf:params:xml:ns:xmpp-session";
inline constexpr std::string_view kStreamErrorNs = "urn:ietf:params:xml:ns:xmpp-streams";
inline constexpr std::string_view kPingNs = "urn:xmpp:ping";

// "15 s" or "1500 ms".
std::string seconds_text(std::chrono::steady_clock::duration d);

// Text from the server, fit for an error message: printable ASCII, at most `max` bytes.
std::string sanitize(std::string_view s, std::size_t max = 200);

// "<condition> (<text>)" from an element holding one condition element and an optional <text/>
// in namespace `ns`.
std::string describe_condition(const xml::Element& e, std::string_view ns);

// "<condition> (<text>)" of an error stanza (RFC 6120 §8.3).
std::string describe_stanza_error(const xml::Element& stanza);

// "<name xmlns='ns'/>", sanitised: how an unexpected element is named in an error.
std::string element_name(const xml::Element& e);

bool is_ip_literal(std::string_view host);
// "[::1]" → "::1"; anything else unchanged.
std::string strip_brackets(std::string_view host);

// Our stream header to `domain`; `from` (our bare JID) only once the stream is encrypted.
std::string stream_header(const std::string& domain, const std::string& from);
std::string bind_request(const std::string& id, const std::string& resource);
std::string session_request(const std::string& id);

std::string sasl_auth(std::string_view mechanism, const std::string& payload_b64);
std::string sasl_response(const std::string& payload_b64);
// The decoded payload of a <challenge/> or <success/>: "" for no data or "=" (RFC 6120 §6.4.2);
// nullopt when it is not valid base64.
std::optional<std::string> sasl_payload(const xml::Element& e);

// `bytes` random bytes, base64 encoded (SCRAM nonces, iq id prefixes).
std::string random_token(std::size_t bytes);

}  // namespace multiend::client::c2s_detail
