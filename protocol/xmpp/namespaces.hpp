// XML namespaces, form types and disco features of the XMPP extensions Multiend speaks.
// Owns the strings only; which ones a stanza may carry is decided by the modules that use them.
#pragma once

#include <string_view>

namespace multiend::xmpp {

// Stream content namespaces: c2s streams and XEP-0114 component streams.
inline constexpr std::string_view kClientNs = "jabber:client";
inline constexpr std::string_view kComponentNs = "jabber:component:accept";

// RFC 6120 §8.3 stanza error conditions.
inline constexpr std::string_view kStanzaErrorNs = "urn:ietf:params:xml:ns:xmpp-stanzas";

// XEP-0060 PubSub (PEP-style nodes for OMEMO device lists and bundles).
inline constexpr std::string_view kPubsubNs = "http://jabber.org/protocol/pubsub";
inline constexpr std::string_view kPubsubEventNs = "http://jabber.org/protocol/pubsub#event";
inline constexpr std::string_view kPubsubErrorsNs = "http://jabber.org/protocol/pubsub#errors";
inline constexpr std::string_view kPubsubOwnerNs = "http://jabber.org/protocol/pubsub#owner";
inline constexpr std::string_view kPublishOptionsForm = "http://jabber.org/protocol/pubsub#publish-options";

inline constexpr std::string_view kDataFormsNs = "jabber:x:data";           // XEP-0004
inline constexpr std::string_view kRsmNs = "http://jabber.org/protocol/rsm";  // XEP-0059

// XEP-0313 MAM; the #extended feature covers before-id, after-id, ids and flip-page.
inline constexpr std::string_view kMamNs = "urn:xmpp:mam:2";
inline constexpr std::string_view kMamExtendedFeature = "urn:xmpp:mam:2#extended";

inline constexpr std::string_view kForwardNs = "urn:xmpp:forward:0";                // XEP-0297
inline constexpr std::string_view kDelayNs = "urn:xmpp:delay";                      // XEP-0203
inline constexpr std::string_view kSidNs = "urn:xmpp:sid:0";                        // XEP-0359
inline constexpr std::string_view kReceiptsNs = "urn:xmpp:receipts";                // XEP-0184
inline constexpr std::string_view kAddressNs = "http://jabber.org/protocol/address";  // XEP-0033
inline constexpr std::string_view kHintsNs = "urn:xmpp:hints";                      // XEP-0334
inline constexpr std::string_view kCarbonsNs = "urn:xmpp:carbons:2";                // XEP-0280
inline constexpr std::string_view kEmeNs = "urn:xmpp:eme:0";                        // XEP-0380
inline constexpr std::string_view kPingNs = "urn:xmpp:ping";                        // XEP-0199

// XEP-0030 service discovery.
inline constexpr std::string_view kDiscoInfoNs = "http://jabber.org/protocol/disco#info";
inline constexpr std::string_view kDiscoItemsNs = "http://jabber.org/protocol/disco#items";

// Ours, for what no XEP covers (docs/protocol.md).
inline constexpr std::string_view kMultiendNs = "urn:multiend:archive:0";

}  // namespace multiend::xmpp
