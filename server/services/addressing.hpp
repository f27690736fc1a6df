// How user JIDs map onto the component: alice@example.org is served at
// alice@archive.example.org. Also who sent a stanza, as the XMPP server stamped it.
#pragma once

#include <optional>
#include <string>

#include "protocol/jid.hpp"
#include "protocol/xml/element.hpp"
#include "server/config.hpp"

namespace multiend::server {

// The owner (user bare JID) behind a node JID `local@component_domain`; nullopt if `to` is not one.
std::optional<std::string> owner_of_node_jid(const Config& c, const Jid& to);
// The stanza's `from` as a full JID of a user of our domain; nullopt otherwise.
std::optional<Jid> user_sender(const Config& c, const xml::Element& stanza);

}  // namespace multiend::server
