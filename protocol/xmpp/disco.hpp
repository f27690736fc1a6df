// XEP-0030 service discovery as a client asks it: the two queries and parsers for their
// results. Pure XML (no sockets); the parsers take untrusted replies and answer with values.
#pragma once

#include <cstddef>
#include <set>
#include <string>
#include <vector>

#include "protocol/error.hpp"
#include "protocol/xml/element.hpp"

namespace multiend::xmpp {

// Replies are bounded: a domain listing more items, or an entity more features, than a client
// would ever look at is answered with limit_exceeded instead of being held.
inline constexpr std::size_t kMaxDiscoItems = 64;
inline constexpr std::size_t kMaxDiscoFeatures = 256;

// <iq type='get' to='…'><query xmlns='…disco#items'/></iq> (no id: the connection adds one).
xml::Element disco_items_query(const std::string& to);
xml::Element disco_info_query(const std::string& to);

// The item JIDs of a disco#items result (items without a valid jid are skipped).
// bad_element for anything but a result with the query; limit_exceeded past kMaxDiscoItems.
Result<std::vector<std::string>> parse_disco_items(const xml::Element& iq);
// The features of a disco#info result.
Result<std::set<std::string>> parse_disco_features(const xml::Element& iq);

}  // namespace multiend::xmpp
