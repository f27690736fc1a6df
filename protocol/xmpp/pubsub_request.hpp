// The XEP-0060 subset that OMEMO 2 needs (docs/protocol.md §1): the typed <pubsub/> child of an
// iq (publish with publish-options, retract, items, subscribe, unsubscribe) and the <pubsub/>
// results and headline event notifications the service sends back. Owns the element layout and
// the bounds on untrusted requests; it does not know node names, who owns a node, which
// publish-options are acceptable, or what an item's payload means.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "protocol/error.hpp"
#include "protocol/xml/element.hpp"

namespace multiend::xmpp {

inline constexpr std::size_t kMaxPubsubItemIds = 1000;  // per retract or items request
inline constexpr std::size_t kMaxNodeBytes = 1024;
inline constexpr std::size_t kMaxItemIdBytes = 256;

struct PublishRequest {
  std::string node;
  std::optional<std::string> item_id;  // absent: the service picks one
  xml::Element payload;                // the item's single child element
  // publish-options fields except FORM_TYPE, one pair per value ("" for a field without one),
  // in document order; the service decides which it accepts.
  std::vector<std::pair<std::string, std::string>> options;
};
struct RetractRequest {
  std::string node;
  std::vector<std::string> item_ids;  // at least one
  bool notify = false;
};
struct ItemsRequest {
  std::string node;
  std::vector<std::string> item_ids;  // empty = all items
  std::optional<std::uint32_t> max_items;
};
struct SubscribeRequest {
  std::string node;
  std::string jid;  // normalised (Jid::to_string)
};
struct UnsubscribeRequest {
  std::string node;
  std::string jid;  // normalised (Jid::to_string)
};
using PubsubRequest =
    std::variant<PublishRequest, RetractRequest, ItemsRequest, SubscribeRequest, UnsubscribeRequest>;

// `pubsub` is the <pubsub xmlns='http://jabber.org/protocol/pubsub'> child of an iq; `is_set`
// tells whether the iq was type 'set' (publish/retract/subscribe/unsubscribe) or 'get' (items).
// Errors:
//  * Errc::bad_element: not that element; not exactly one publish/retract/items/subscribe/
//    unsubscribe child; publish-options without publish or twice; a missing node or jid
//    attribute; a publish without exactly one <item> holding exactly one element; a retract
//    without items; an <item> without id in retract/items; two forms in publish-options.
//  * Errc::unsupported: any other child in the pubsub namespace (create, configure, options,
//    subscriptions, affiliations, default, …).
//  * Errc::bad_request: the wrong iq type for the action; an empty or oversized node or item
//    id; a bad JID, notify or max_items value; a publish-options form that is not a 'submit'
//    with FORM_TYPE http://jabber.org/protocol/pubsub#publish-options.
//  * Errc::limit_exceeded: more than kMaxPubsubItemIds item ids (or the data-form bounds).
Result<PubsubRequest> parse_pubsub(const xml::Element& pubsub, bool is_set);

// <pubsub xmlns=pubsub><items node><item id>payload</item>…</items></pubsub>
xml::Element make_items_result(std::string_view node, std::vector<std::pair<std::string, xml::Element>> items);

// <pubsub xmlns=pubsub><publish node><item id/></publish></pubsub>
xml::Element make_publish_result(std::string_view node, std::string_view item_id);

// XEP-0060 §7.1.2.1 notification: <message from to type='headline' xmlns=stanza_ns>
//   <event xmlns=pubsub#event><items node><item id>payload</item></items></event></message>
xml::Element make_event_message(std::string_view from, std::string_view to, std::string_view node,
                                std::string_view item_id, xml::Element payload, std::string_view stanza_ns);

}  // namespace multiend::xmpp
