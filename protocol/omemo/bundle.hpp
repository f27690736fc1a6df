// An OMEMO 2 bundle (XEP-0384 §5.3.2) as a typed value, and its <bundle/> XML form.
// Parsing validates ids, key sizes and counts; it does not verify the signature (x3dh does).
#pragma once

#include <cstdint>
#include <vector>

#include "protocol/crypto/ed25519.hpp"
#include "protocol/crypto/x25519.hpp"
#include "protocol/error.hpp"
#include "protocol/xml/element.hpp"

namespace multiend::omemo {

struct PreKeyPublic {
  std::uint32_t id = 0;
  crypto::X25519Public key;
};

struct Bundle {
  std::uint32_t spk_id = 0;
  crypto::X25519Public spk;
  crypto::Ed25519Signature spks;
  crypto::Ed25519Public ik;
  std::vector<PreKeyPublic> prekeys;
};

xml::Element bundle_to_xml(const Bundle& b);
// Errc::bad_element / bad_base64 / limit_exceeded / no_prekeys.
Result<Bundle> bundle_from_xml(const xml::Element& e);

// Parses a decimal id in 1 … 2^31−1 (device, spk and pk ids).
Result<std::uint32_t> parse_id(std::string_view text);

}  // namespace multiend::omemo
