// Stanza-level building blocks (RFC 6120 §8): IQ results, error replies and reading a received
// error, plus moving a stanza between stream namespaces. Owns the addressing of replies and the
// <error/> layout; it does not know what a request meant, who may send it, or how stanzas
// travel. Replies are built in the request's namespace, so they stay in the stream's namespace
// (jabber:component:accept on the component, jabber:client on a c2s stream).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "protocol/error.hpp"
#include "protocol/xml/element.hpp"

namespace multiend::xmpp {

enum class ErrorType { cancel, continue_, modify, auth, wait };

// "cancel", "continue", "modify", "auth", "wait".
std::string_view error_type_name(ErrorType t) noexcept;

struct StanzaError {
  ErrorType type;
  std::string condition;  // a defined condition, e.g. "bad-request" (an XML local name)
  std::string text = {};  // human-readable, optional
  std::optional<xml::Element> app_condition = {};  // e.g. <missing-devices xmlns='urn:multiend:archive:0'/>
};

// Error reply to `request` (iq/message/presence): to=request.from, from=request.to, same id,
// type='error', <error type='…'><condition xmlns=stanzas/>[<text>][app element]</error>.
// Never copies the request payload (RFC 6120 §8.3.1 lets us omit it, and echoing it back would
// double the bytes an attacker can make us send). Callers must not answer a stanza of type
// 'error' (or an iq 'result') with an error. `err.condition` must be an XML name: it comes from
// our code, and a bad one throws std::invalid_argument like any invalid element name.
xml::Element make_error_reply(const xml::Element& request, const StanzaError& err);

// <iq type='result'> to the sender of `request`, same id, with an optional payload.
xml::Element make_iq_result(const xml::Element& request, std::optional<xml::Element> payload = std::nullopt);

// Reads type/condition/text/app element from a received error stanza (for clients and tests).
// The stanza must have type='error' and an <error/> child in its own namespace with a known
// type and a condition element: otherwise Errc::bad_element. Extra conditions are ignored.
Result<StanzaError> parse_stanza_error(const xml::Element& stanza);

// Deep copy of `e` where every element in namespace `from_ns` is moved to `to_ns` (needed when
// a stanza received on a component stream in jabber:component:accept is embedded into
// <forwarded/> as jabber:client). Attributes are unchanged. Recursive: trees from the parser
// are bounded by its depth limit.
xml::Element rename_namespace(const xml::Element& e, std::string_view from_ns, std::string_view to_ns);

}  // namespace multiend::xmpp
