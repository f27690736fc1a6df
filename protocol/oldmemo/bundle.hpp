// A legacy OMEMO bundle (XEP-0384 0.3 §4.3, node eu.siacs.conversations.axolotl.bundles:<id>)
// and device list (…devicelist) as typed values with their XML. Keys on the wire are 0x05 ‖ u;
// children are written in the order oldmemo's schema demands. Parsing is lenient where peers
// differ (item ids, unknown attributes, line-wrapped base64) and strict on sizes and counts.
// It does not verify the signature (x3dh does, and learns the Ed25519 sign bit from it).
#pragma once

#include <cstdint>
#include <vector>

#include "protocol/crypto/ed25519.hpp"
#include "protocol/crypto/x25519.hpp"
#include "protocol/error.hpp"
#include "protocol/omemo/bundle.hpp"
#include "protocol/xml/element.hpp"

namespace multiend::oldmemo {

struct LegacyBundle {
  std::uint32_t spk_id = 0;
  crypto::X25519Public spk;
  crypto::Ed25519Signature spk_signature;  // bit 7 of byte 63: the identity's Ed25519 sign bit
  crypto::X25519Public ik;                 // Curve25519 form
  std::vector<omemo::PreKeyPublic> prekeys;
};

xml::Element bundle_to_xml(const LegacyBundle& b);
// Errc::bad_element / bad_base64 / bad_key / limit_exceeded / no_prekeys.
Result<LegacyBundle> bundle_from_xml(const xml::Element& e);

// Ids only; never empty (oldmemo rejects an empty list: the caller withdraws instead).
xml::Element device_list_to_xml(const std::vector<std::uint32_t>& ids);
// Duplicates merged, unknown attributes ignored; Errc::bad_element / limit_exceeded.
Result<std::vector<std::uint32_t>> device_list_from_xml(const xml::Element& e);

}  // namespace multiend::oldmemo
