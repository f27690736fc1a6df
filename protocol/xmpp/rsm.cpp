#include "protocol/xmpp/rsm.hpp"

#include <charconv>
#include <string_view>

#include "protocol/xmpp/namespaces.hpp"

namespace multiend::xmpp {
namespace {

bool is_xml_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// xs:unsignedInt, limited to 32 bits: digits only (no sign), whitespace around it allowed
// since pretty-printing clients indent element content.
Result<std::uint32_t> parse_u32(std::string_view s) {
  while (!s.empty() && is_xml_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_xml_space(s.back())) s.remove_suffix(1);
  if (s.empty() || s.front() < '0' || s.front() > '9') return Errc::bad_request;
  std::uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return Errc::bad_request;
  return v;
}

Result<std::string> parse_id(const xml::Element& e, bool allow_empty) {
  std::string id = e.text();
  if ((id.empty() && !allow_empty) || id.size() > kMaxRsmIdBytes) return Errc::bad_request;
  return id;
}

}  // namespace

Result<RsmRequest> parse_rsm(const xml::Element& set) {
  if (set.name() != "set" || set.ns() != kRsmNs) return Errc::bad_element;
  RsmRequest r;
  for (const xml::Element* c : set.element_children()) {
    if (c->ns() != kRsmNs) continue;
    const std::string& name = c->name();
    const bool known = name == "max" || name == "index" || name == "after" || name == "before";
    // Text-only content: <max>1<x/>2</max> is not a 12.
    if (known && !c->element_children().empty()) return Errc::bad_element;
    if (name == "max" || name == "index") {
      auto& slot = name == "max" ? r.max : r.index;
      if (slot) return Errc::bad_element;
      auto v = parse_u32(c->text());
      if (!v) return v.error();
      slot = *v;
    } else if (name == "after" || name == "before") {
      auto& slot = name == "after" ? r.after : r.before;
      if (slot) return Errc::bad_element;
      auto id = parse_id(*c, name == "before");
      if (!id) return id.error();
      slot = std::move(*id);
    }
  }
  return r;
}

xml::Element rsm_result_to_xml(const RsmResult& r) {
  const std::string ns(kRsmNs);
  xml::Element set("set", ns);
  if (r.first) {
    xml::Element& first = set.add_child(xml::Element("first", ns));
    if (r.first_index) first.set_attr("index", std::to_string(*r.first_index));
    first.add_text(*r.first);
  }
  if (r.last) set.add_child(xml::Element("last", ns)).add_text(*r.last);
  if (r.count) set.add_child(xml::Element("count", ns)).add_text(std::to_string(*r.count));
  return set;
}

}  // namespace multiend::xmpp
