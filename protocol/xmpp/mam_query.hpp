// XEP-0313 Message Archive Management (urn:xmpp:mam:2, with #extended): the typed <query/> of an
// archive request, and the <result/> messages and <fin/> of the answer. Owns the query syntax,
// the filter form's fields and their bounds; it does not know how archives are stored, who may
// read them, whether an id exists (item-not-found is the service's answer), nor default or
// maximum page sizes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/error.hpp"
#include "protocol/xml/element.hpp"
#include "protocol/xmpp/rsm.hpp"

namespace multiend::xmpp {

inline constexpr std::size_t kMaxMamIds = 250;
inline constexpr std::size_t kMaxQueryIdBytes = 256;
inline constexpr std::size_t kMaxArchiveIdBytes = 256;  // after-id, before-id, ids

struct MamQuery {
  std::string queryid;                 // "" if the client gave none
  std::optional<std::string> with;     // normalised bare or full JID string
  std::optional<std::int64_t> start_us, end_us;
  std::optional<std::string> after_id, before_id;
  std::vector<std::string> ids;        // empty = no ids filter
  RsmRequest rsm;
  bool flip_page = false;
};

// Parses <query xmlns='urn:xmpp:mam:2' queryid=…> with an optional filter form, <set xmlns=rsm>
// and <flip-page/>. Errors:
//  * Errc::bad_element: `query` is not a MAM query; more than one form or <set>; bad RSM layout.
//  * Errc::unsupported: a form field we do not know (XEP-0313 §4.1.1 asks for
//    feature-not-implemented, e.g. include-groupchat), or a 'node' attribute (pubsub archives).
//  * Errc::bad_request: a form not of type 'submit', a FORM_TYPE other than urn:xmpp:mam:2, a
//    second value in a single-valued field, an invalid JID or XEP-0082 date, an empty or
//    oversized id, a queryid over kMaxQueryIdBytes, bad RSM values.
//  * Errc::limit_exceeded: more than kMaxMamIds ids (or the data-form bounds).
// A single-valued field without a value, or with an empty one, counts as absent; empty
// entries in 'ids' are skipped. A missing FORM_TYPE is tolerated.
Result<MamQuery> parse_mam_query(const xml::Element& query);

// <message to from xmlns=stanza_ns><result xmlns=mam queryid id><forwarded xmlns=forward>
//   <delay xmlns=delay stamp/>MESSAGE</forwarded></result></message>
// `forwarded_message` is embedded as is: it must already be in jabber:client (see
// rename_namespace in stanza.hpp). The queryid attribute is omitted when empty.
xml::Element make_mam_result(std::string_view to, std::string_view from, std::string_view queryid,
                             std::string_view result_id, std::int64_t stamp_us,
                             xml::Element forwarded_message, std::string_view stanza_ns);

// <fin xmlns=mam [complete='true']><set xmlns=rsm>…</set></fin>, the payload of the IQ result.
xml::Element make_mam_fin(const RsmResult& rsm, bool complete);

}  // namespace multiend::xmpp
