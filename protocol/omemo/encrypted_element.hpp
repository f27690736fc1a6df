// The <encrypted xmlns='urn:xmpp:omemo:2'> element as a typed value (XEP-0384 §4.5).
// Parsing bounds every count and size; kex follows xs:boolean; serialising writes kex='true'
// only for key exchanges (twomemo 1.0.3 reads any kex attribute as true).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "protocol/crypto/secret.hpp"
#include "protocol/error.hpp"
#include "protocol/xml/element.hpp"

namespace multiend::omemo {

struct KeyEntry {
  std::uint32_t rid = 0;
  bool kex = false;
  crypto::Bytes data;  // OMEMOKeyExchange if kex, else OMEMOAuthenticatedMessage
};

struct KeysGroup {
  std::string jid;  // bare JID as written by the sender
  std::vector<KeyEntry> keys;
};

struct EncryptedMessage {
  std::uint32_t sid = 0;
  std::vector<KeysGroup> groups;
  std::optional<crypto::Bytes> payload;  // absent for empty OMEMO messages

  // The key for (jid, rid), or nullptr.
  const KeyEntry* find_key(std::string_view jid, std::uint32_t rid) const;
  std::size_t key_count() const;
};

xml::Element encrypted_to_xml(const EncryptedMessage& m);
Result<EncryptedMessage> encrypted_from_xml(const xml::Element& e);

}  // namespace multiend::omemo
