// A plain XMPP chat message as a device online meets it (XEP-0384 over PEP, not the archive):
// live from a contact, or a Carbons copy (XEP-0280) of what another client of our own account
// sent or received. Parsing checks what a hostile contact could forge: a Carbons wrapper is
// believed only from our own bare JID (anyone else's is dropped), and the sender is the
// server-stamped `from`, never something inside the payload. Knows no sessions or network.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "client/store/history_store.hpp"
#include "protocol/oldmemo/encrypted_element.hpp"
#include "protocol/omemo/encrypted_element.hpp"
#include "protocol/xml/element.hpp"

namespace multiend::client {

struct ChatMessage {
  std::string from_bare;  // who sent it (our own account for a sent Carbon)
  std::string to_bare;    // whom it was sent to
  std::string history_id; // "pep:" + sender + ":" + its id: unique per sender, the same in every copy
  Direction direction = Direction::in;
  bool carbon = false;
  std::optional<oldmemo::LegacyEncrypted> legacy;  // a legacy OMEMO message
  std::optional<std::string> legacy_error;         // an axolotl element we could not parse
  std::optional<omemo::EncryptedMessage> omemo2;   // an OMEMO 2 message (a plain OMEMO 2 app)
  std::optional<std::string> omemo2_error;         // an OMEMO 2 element we could not parse
  std::optional<std::string> body;                 // the plain body (the fallback text when encrypted)
  std::int64_t timestamp_us = 0;                   // when the server archived it; 0: now
};

// nullopt: not a chat message for us (a headline, an error, a forged or malformed Carbon, a
// message with neither body nor OMEMO: chat states, receipts).
std::optional<ChatMessage> parse_chat(const xml::Element& stanza, const std::string& own_bare);

// <message type='chat' to=bare id><encrypted/><store/><origin-id/><encryption/><body>fallback</body>
xml::Element legacy_chat_message(const std::string& to_bare, const std::string& id, const std::string& origin_id,
                                 const oldmemo::LegacyEncrypted& encrypted, bool with_body);
// The same for OMEMO 2 (urn:xmpp:omemo:2; the fallback body is customary for legacy only).
xml::Element omemo2_chat_message(const std::string& to_bare, const std::string& id, const std::string& origin_id,
                                 const omemo::EncryptedMessage& encrypted);

}  // namespace multiend::client
