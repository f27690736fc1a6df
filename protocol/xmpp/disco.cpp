#include "protocol/xmpp/disco.hpp"

#include "protocol/jid.hpp"
#include "protocol/xmpp/namespaces.hpp"

namespace multiend::xmpp {
namespace {

xml::Element query(const std::string& to, std::string_view ns) {
  xml::Element iq("iq");
  iq.set_attr("type", "get");
  iq.set_attr("to", to);
  iq.add_child(xml::Element("query", std::string(ns)));
  return iq;
}

Result<const xml::Element*> result_query(const xml::Element& iq, std::string_view ns) {
  if (iq.name() != "iq" || iq.attr("type") != "result") return Errc::bad_element;
  const xml::Element* q = iq.child("query", ns);
  if (!q) return Errc::bad_element;
  return q;
}

}  // namespace

xml::Element disco_items_query(const std::string& to) { return query(to, kDiscoItemsNs); }
xml::Element disco_info_query(const std::string& to) { return query(to, kDiscoInfoNs); }

Result<std::vector<std::string>> parse_disco_items(const xml::Element& iq) {
  auto q = result_query(iq, kDiscoItemsNs);
  if (!q) return q.error();
  std::vector<std::string> out;
  for (const xml::Element* item : (*q)->element_children()) {
    if (item->name() != "item" || item->ns() != kDiscoItemsNs) continue;
    auto jid = Jid::parse(item->attr("jid").value_or(""));
    if (!jid) continue;
    if (out.size() == kMaxDiscoItems) return Errc::limit_exceeded;
    out.push_back(jid->to_string());
  }
  return out;
}

Result<std::set<std::string>> parse_disco_features(const xml::Element& iq) {
  auto q = result_query(iq, kDiscoInfoNs);
  if (!q) return q.error();
  std::set<std::string> out;
  for (const xml::Element* f : (*q)->element_children()) {
    if (f->name() != "feature" || f->ns() != kDiscoInfoNs) continue;
    auto var = f->attr("var");
    if (!var || var->empty()) continue;
    if (out.size() == kMaxDiscoFeatures) return Errc::limit_exceeded;
    out.emplace(*var);
  }
  return out;
}

}  // namespace multiend::xmpp
