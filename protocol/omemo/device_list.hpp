// The OMEMO 2 device list (<devices xmlns='urn:xmpp:omemo:2'>, XEP-0384 §5.3.1).
// Labels are kept only with a labelsig that verifies against the device's identity key, which
// the caller checks; we never publish labels (twomemo 1.0.3 rejects labelsig) nor an empty list.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "protocol/error.hpp"
#include "protocol/xml/element.hpp"

namespace multiend::omemo {

struct DeviceEntry {
  std::uint32_t id = 0;
  std::optional<std::string> label;
  std::optional<std::string> labelsig;  // base64, unverified
};

struct DeviceList {
  std::vector<DeviceEntry> devices;
  bool contains(std::uint32_t id) const;
};

// Writes ids only (see above).
xml::Element device_list_to_xml(const DeviceList& l);
// Duplicate ids are merged; Errc::bad_element / limit_exceeded.
Result<DeviceList> device_list_from_xml(const xml::Element& e);

}  // namespace multiend::omemo
