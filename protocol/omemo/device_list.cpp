#include "protocol/omemo/device_list.hpp"

#include <algorithm>

#include "protocol/omemo/bundle.hpp"
#include "protocol/omemo/constants.hpp"

namespace multiend::omemo {

bool DeviceList::contains(std::uint32_t id) const {
  return std::any_of(devices.begin(), devices.end(), [id](const DeviceEntry& d) { return d.id == id; });
}

xml::Element device_list_to_xml(const DeviceList& l) {
  xml::Element devices("devices", std::string(kNs));
  for (const auto& d : l.devices)
    devices.add_child(xml::Element("device", std::string(kNs))).set_attr("id", std::to_string(d.id));
  return devices;
}

Result<DeviceList> device_list_from_xml(const xml::Element& e) {
  if (e.name() != "devices" || e.ns() != kNs) return Errc::bad_element;
  DeviceList l;
  auto items = e.children("device");
  if (items.size() > kMaxDevicesInList) return Errc::limit_exceeded;
  for (const xml::Element* d : items) {
    auto id_attr = d->attr("id");
    if (!id_attr) return Errc::bad_element;
    auto id = parse_id(*id_attr);
    if (!id) return id.error();
    if (l.contains(*id)) continue;
    DeviceEntry entry{*id, {}, {}};
    if (auto label = d->attr("label")) entry.label = std::string(*label);
    if (auto sig = d->attr("labelsig")) entry.labelsig = std::string(*sig);
    l.devices.push_back(std::move(entry));
  }
  return l;
}

}  // namespace multiend::omemo
