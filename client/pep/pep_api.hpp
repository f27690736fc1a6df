// The stanzas a device exchanges with a user's own server for OMEMO over PEP (XEP-0163): the
// legacy device list and bundles (eu.siacs.conversations.axolotl…) of any user, and publishing
// our own. Pure functions from values to elements and back; knows no connection. What a reply
// means: an error of type auth/forbidden (Prosody, never-created node or presence-restricted
// access) or cancel/item-not-found (ejabberd) is "none here"; what exactly the caller decides.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "protocol/oldmemo/bundle.hpp"
#include "protocol/xml/element.hpp"
#include "protocol/xmpp/stanza.hpp"

namespace multiend::client::pep {

// <iq type='get' to=owner><pubsub><items node max_items=1/></pubsub></iq>
xml::Element get_items(const std::string& owner_bare, std::string_view node);
// <iq type='get' to=owner><pubsub><items node><item id/></items></pubsub></iq>
xml::Element get_item(const std::string& owner_bare, std::string_view node, const std::string& item_id);
// <iq type='set'><pubsub><publish node><item id>payload</item></publish><publish-options>
// (access_model=open)</publish-options></pubsub></iq>, to our own account.
// `keep_all`: also pubsub#max_items=max (OMEMO 2's bundles node holds one item per device).
xml::Element publish_open(std::string_view node, const std::string& item_id, xml::Element payload, bool keep_all = false);
// <iq type='set'><pubsub xmlns=#owner><configure node>access_model=open</configure></pubsub></iq>
xml::Element configure_open(std::string_view node, bool keep_all = false);

// The payload of the first item of a pubsub items result; nullptr when the node has no item.
// Errc::bad_element when the reply is not an items result.
Result<const xml::Element*> first_item(const xml::Element& reply);

// Did the server refuse a publish because the node's configuration differs from the
// publish-options (XEP-0060 §7.1.5: <precondition-not-met/> in the pubsub#errors namespace)?
bool precondition_not_met(const xml::Element& reply);

// What a device list request found: the ids, or nothing (node absent), or why it was refused.
struct ListResult {
  std::vector<std::uint32_t> ids;
  std::optional<std::string> refused;  // a reason worth reporting (not "never created")
  // auth/forbidden: Prosody's answer for a node never created, and every server's for a list
  // open to contacts only. Counts as none; said where it explains a "nobody reachable".
  bool unreadable = false;
};
ListResult legacy_device_list(const xml::Element& reply);
ListResult omemo2_device_list(const xml::Element& reply);  // urn:xmpp:omemo:2:devices

std::string legacy_bundle_node(std::uint32_t device);

}  // namespace multiend::client::pep
