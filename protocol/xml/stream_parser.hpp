// Incremental parser for an XMPP XML stream (RFC 6120 §4, §11) on expat, plus a one-shot parser
// for standalone fragments. Owns well-formedness, the restricted-XML rules and the size/depth
// limits; turns bytes into StreamOpened / StanzaEvent / StreamClosed. It does not know what a
// stanza means, which namespaces are acceptable, or anything about sockets and TLS.
//
// Restricted XML (RFC 6120 §11.1): comments, processing instructions, DTDs, entity
// declarations and references to anything but the five predefined entities are
// Errc::xml_restricted; an XML declaration is accepted only at the very start (and only with
// UTF-8 encoding). Input is always treated as UTF-8.
//
// Names: elements carry their local name and namespace URI. Attributes in the XML namespace
// are stored as "xml:lang" etc.; attributes in other namespaces are kept as "{uri}name"
// (see element.hpp); unprefixed attributes by their plain name.
//
// Depth: the stream element is level 0, a stanza level 1, its children level 2, …; an element
// at a level above max_depth is Errc::xml_too_deep. For parse_element the root is level 1.
//
// Size: every byte fed since the last completed event (stream header, stanza, or whitespace
// between stanzas) counts against max_stanza_bytes. The parser hands expat at most one byte
// more than the remaining budget at a time, so an oversized stanza is refused (xml_too_large)
// without being buffered, however large the chunk passed to feed().
// More than max_attributes attributes on one element is also Errc::xml_too_large.
// Tokens: expat re-scans an unfinished token (a start tag, a reference, a comment…) from its
// beginning on every feed, so a peer trickling a long tag byte by byte costs O(length²).
// A start tag longer than max_token_bytes, or that many bytes without any completed event,
// is therefore Errc::xml_too_large. Text is reported as it arrives and is not affected.
// Non-whitespace text directly inside the stream (between stanzas) is Errc::xml_malformed.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "protocol/error.hpp"
#include "protocol/xml/element.hpp"

namespace multiend::xml {

struct StreamLimits {
  std::size_t max_stanza_bytes = 256 * 1024;
  std::size_t max_depth = 32;
  std::size_t max_attributes = 64;
  std::size_t max_token_bytes = 8 * 1024;  // see "Tokens" above
};

inline constexpr std::string_view kStreamNs = "http://etherx.jabber.org/streams";

// The <stream:stream> header. attrs are its attributes (to, from, id, version, xml:lang);
// default_ns is the default namespace it declares (jabber:client, jabber:server, …), or "".
struct StreamOpened {
  std::vector<std::pair<std::string, std::string>> attrs;
  std::string default_ns;
};
struct StanzaEvent {
  Element stanza;
};
struct StreamClosed {};
using StreamEvent = std::variant<StreamOpened, StanzaEvent, StreamClosed>;

class StreamParser {
 public:
  explicit StreamParser(StreamLimits limits = {});
  ~StreamParser();
  StreamParser(StreamParser&&) noexcept;
  StreamParser& operator=(StreamParser&&) noexcept;
  StreamParser(const StreamParser&) = delete;
  StreamParser& operator=(const StreamParser&) = delete;

  // Parses as much as possible and queues the events. After an error every later feed returns
  // the same error until reset(); events queued before the error stay available from next().
  Result<void> feed(std::string_view bytes);

  // Pops the oldest queued event.
  std::optional<StreamEvent> next();

  // Starts a new stream (after STARTTLS or SASL success): drops queued events, any partly
  // received data and a sticky error.
  void reset();

  // Bytes fed after the last completed event. Non-zero (or a queued event) when the peer sent
  // data after the element that triggers STARTTLS — check before reset() to refuse plaintext
  // injected ahead of the TLS handshake.
  std::size_t pending_bytes() const noexcept;

 private:
  struct Impl;
  friend Result<Element> parse_element(std::string_view xml, StreamLimits limits);
  StreamParser(StreamLimits limits, bool fragment);
  std::unique_ptr<Impl> impl_;
};

// Parses one complete standalone element, e.g. a <bundle xmlns='urn:xmpp:omemo:2'/> from a
// PubSub item, under the same restrictions and limits. Trailing whitespace is allowed;
// trailing text, a second root or an unfinished element is Errc::xml_malformed.
Result<Element> parse_element(std::string_view xml, StreamLimits limits = {});

}  // namespace multiend::xml
