// Serializes an Element tree to XML text. Owns escaping and namespace-declaration placement;
// knows nothing about streams, sockets or which namespaces a stanza should use.
//
// Output form: single-quoted attributes, <x/> for elements without content, an xmlns='…'
// only where an element's namespace differs from its parent's. Attributes stored as
// "{uri}name" get a generated prefix (ns0, ns1, …) declared on the same element.
// Text and attribute values are escaped; anything XML 1.0 cannot carry (invalid UTF-8,
// C0 controls other than tab/LF/CR, U+FFFE, U+FFFF) is replaced by U+FFFD, so the output is
// always well-formed. CR, and tab/LF in attribute values, are written as character
// references so a parser reads back the same value.
#pragma once

#include <string>
#include <string_view>

#include "protocol/xml/element.hpp"

namespace multiend::xml {

// A standalone document fragment: the root declares its namespace if it has one.
std::string serialize(const Element& element);

// Appends to out, as if inside an element whose default namespace is parent_ns (e.g. a stream
// that already declared 'jabber:client'), so a stanza does not repeat it.
void serialize_to(const Element& element, std::string& out, std::string_view parent_ns);

// serialize() of the element with every element namespace `from_ns` written as `to_ns`
// (a component stanza stored as the client stanza it is), without copying the tree.
std::string serialize_renamed(const Element& element, std::string_view from_ns, std::string_view to_ns);

}  // namespace multiend::xml
