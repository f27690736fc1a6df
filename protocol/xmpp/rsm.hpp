// XEP-0059 Result Set Management: the <set xmlns='http://jabber.org/protocol/rsm'> of a request
// (page size and position) and of a result (first/last ids, count). Owns the element layout
// and the bounds on ids; it does not know what the ids name or how pages are computed, and it
// does not clamp `max` (the service applies its own default and ceiling).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "protocol/error.hpp"
#include "protocol/xml/element.hpp"

namespace multiend::xmpp {

inline constexpr std::size_t kMaxRsmIdBytes = 256;

struct RsmRequest {
  std::optional<std::uint32_t> max;
  std::optional<std::string> after;   // never empty
  std::optional<std::string> before;  // engaged+empty = <before/> = last page
  std::optional<std::uint32_t> index;
};

// `set` must be <set xmlns=rsm> (else Errc::bad_element); a repeated <max>, <after>, <before> or
// <index>, or one with child elements, is bad_element too. max/index must be decimal 0 … 2^32−1 (surrounding whitespace
// allowed); anything else, an empty <after/>, or an id longer than kMaxRsmIdBytes is
// Errc::bad_request. Ids are opaque and kept verbatim. Result-side children are ignored.
Result<RsmRequest> parse_rsm(const xml::Element& set);

struct RsmResult {
  std::optional<std::string> first, last;
  std::optional<std::uint32_t> first_index;  // written only together with `first`
  std::optional<std::uint32_t> count;
};

// <set xmlns=rsm>[<first index>][<last>][<count>]</set>; an empty result set is <set/>
// (plus <count> if known).
xml::Element rsm_result_to_xml(const RsmResult& r);

}  // namespace multiend::xmpp
