// The archive component's protocol as seen by a client (docs/protocol.md): builders for the
// stanzas a device sends and parsers for what comes back. Pure XML: no sockets, no state.
// Every parser takes untrusted input and answers with a value (nullopt or an Errc), never
// throws; replies are only believed when they come from the component's domain or the
// user's node there.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "protocol/crypto/ed25519.hpp"
#include "protocol/error.hpp"
#include "protocol/jid.hpp"
#include "protocol/omemo/bundle.hpp"
#include "protocol/omemo/device_list.hpp"
#include "protocol/omemo/encrypted_element.hpp"
#include "protocol/omemo/session.hpp"
#include "protocol/xml/element.hpp"
#include "protocol/xmpp/stanza.hpp"

namespace multiend::client::component {

inline constexpr std::uint32_t kMamPageMax = 250;  // the component's RSM ceiling

// alice@example.org is represented at the component as alice@archive.example.org.
std::string node_jid(const std::string& user_bare, const std::string& component);

// The reverse: alice@archive.example.org → alice@example.org (nullopt if not of that form).
std::optional<std::string> user_of_node(std::string_view node, const std::string& component,
                                        const std::string& user_domain);

// PubSub requests (iq without id: C2sConnection::iq adds one).
xml::Element publish_bundle(const std::string& node, std::uint32_t device, const omemo::Bundle& bundle);
xml::Element publish_device_list(const std::string& node, const omemo::DeviceList& list);
xml::Element get_device_list(const std::string& node);
// One request for several bundles; empty `devices` asks for all (one prekey claimed each).
xml::Element get_bundles(const std::string& node, const std::vector<std::uint32_t>& devices);
xml::Element get_prekey_counts(const std::string& node);
// Identity keys of a user's devices, read without claiming a one-time prekey.
xml::Element get_identities(const std::string& node);

// The device list in an items result; an empty list for cancel/item-not-found (no devices).
Result<omemo::DeviceList> parse_device_list_reply(const xml::Element& iq);
// Bundles by device id. Items that fail to parse are left out (one bad bundle must not stop a
// send to the other devices); their ids are in `bad`.
struct BundlesReply {
  std::map<std::uint32_t, omemo::Bundle> bundles;
  std::vector<std::uint32_t> bad;
};
Result<BundlesReply> parse_bundles_reply(const xml::Element& iq);
// device id → remaining unclaimed prekeys.
Result<std::map<std::uint32_t, std::uint32_t>> parse_prekey_counts(const xml::Element& iq);
// device id → Ed25519 identity key; entries that fail to parse are left out; empty on an error.
std::map<std::uint32_t, crypto::Ed25519Public> parse_identities(const xml::Element& iq);
// The error an iq result carries, if it is an error.
std::optional<xmpp::StanzaError> iq_error(const xml::Element& iq);

// MAM (XEP-0313 v2): one page after `after_id` (from the start without one).
xml::Element mam_query(const std::string& component, const std::string& query_id,
                       const std::optional<std::string>& after_id, std::uint32_t max);
struct MamFin {
  bool complete = false;
  std::optional<std::string> last;  // the page's last id; nullopt for an empty page
};
Result<MamFin> parse_mam_fin(const xml::Element& iq);

// One archived message: its stanza-id, when the component stored it, and the original
// <message> (in jabber:client) with the sender's full JID in `from`.
struct Archived {
  std::string stanza_id;
  std::int64_t stored_us = 0;
  xml::Element message{"message"};
};
// A MAM result message for `query_id` from the component, or nullopt.
std::optional<Archived> parse_mam_result(const xml::Element& stanza, const std::string& component,
                                         const std::string& query_id);
// A live fan-out headline from the component, or nullopt.
std::optional<Archived> parse_fanout(const xml::Element& stanza, const std::string& component);

// What a client sends to be archived and fanned out. `excluded`: devices left out on purpose
// (trust decisions, no usable bundle), which the component's coverage check then accepts.
xml::Element archive_message(const std::string& component, const std::string& id, const std::string& origin_id,
                             const omemo::EncryptedMessage& encrypted,
                             const std::vector<omemo::DeviceAddress>& excluded = {});

// The component's answers to an archive_message.
struct Receipt {
  std::string id;         // the id of the message it acknowledges
  std::string stanza_id;  // the archive's id for it
};
std::optional<Receipt> parse_receipt(const xml::Element& stanza, const std::string& component);
struct Bounce {
  std::string id;
  xmpp::StanzaError error;
  std::vector<omemo::DeviceAddress> missing;  // from <missing-devices/>, if any
};
std::optional<Bounce> parse_bounce(const xml::Element& stanza, const std::string& component);

// <prekeys-low device='N' remaining='M'/>: the device id it names.
std::optional<std::uint32_t> parse_prekeys_low(const xml::Element& stanza, const std::string& component);

// The sender and its device from an archived message; nullopt when `from` is no full JID or
// the <encrypted> element is missing or malformed (error in `why`).
struct Envelope {
  std::string sender_bare;
  omemo::EncryptedMessage encrypted;
  std::vector<std::string> recipients;  // bare JIDs named by the header and XEP-0033, sender excluded
};
Result<Envelope> open_archived(const Archived& a);

}  // namespace multiend::client::component
