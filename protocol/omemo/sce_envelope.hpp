// The Stanza Content Encryption envelope (XEP-0420) with the affixes the OMEMO 2 profile
// requires: <content> (children namespaced), <rpad> (random padding, always), <time>, <from>
// and, for groupchats, <to>. This is what <payload> encrypts. Checking the affixes against the
// outer stanza is the caller's business: it knows the stanza.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "protocol/crypto/random.hpp"
#include "protocol/error.hpp"
#include "protocol/xml/element.hpp"

namespace multiend::omemo {

struct Envelope {
  std::vector<xml::Element> content;  // e.g. <body xmlns='jabber:client'>
  std::optional<std::string> from;    // bare JID of the sender
  std::optional<std::string> to;      // bare JID of the recipient (MUST for MUC)
  std::optional<std::string> time;    // XEP-0082 DateTime

  // The first <body xmlns='jabber:client'> text, if any.
  std::optional<std::string> body() const;
};

// Serialises with rpad: padded up to a 64-byte boundary of content, then 0..200 more chars.
std::string build_envelope(const Envelope& e, crypto::Rng& rng);
// Parses decrypted payload bytes. Server-only elements inside <content> (hints, stanza-id,
// EME, delay) are dropped, as XEP-0420 requires. Errc::bad_element for a non-envelope.
Result<Envelope> parse_envelope(std::string_view plaintext);

Envelope text_envelope(std::string body, std::string from_bare, std::string time);

}  // namespace multiend::omemo
