// Writing an element around bytes that are already serialised (a stored stanza), without parsing
// them into a tree and serialising them again: the wrapper is built as an Element that holds
// splice_point() where the bytes go, serialised, and the point replaced by the bytes. Knows
// nothing of what the bytes mean; the caller vouches that they are one well-formed element that
// declares its own namespace (what serialize() writes for a standalone element).
#pragma once

#include <string>
#include <string_view>

#include "protocol/xml/element.hpp"

namespace multiend::xml {

// The placeholder element to put where the fragment goes (at most once in a wrapper).
Element splice_point();

// serialize_to(wrapper, out, parent_ns) with the splice point replaced by `fragment`. Throws
// std::invalid_argument when the wrapper holds no splice point (a programming error).
void serialize_spliced(const Element& wrapper, std::string_view fragment, std::string& out, std::string_view parent_ns);

}  // namespace multiend::xml
