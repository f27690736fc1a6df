#include "client/pep/server_mam.hpp"

#include "protocol/jid.hpp"
#include "protocol/xmpp/datetime.hpp"
#include "protocol/xmpp/namespaces.hpp"

namespace multiend::client::pep {
namespace {

using xml::Element;

std::string ns(std::string_view v) { return std::string(v); }

bool sane_id(const std::string& id) { return !id.empty() && id.size() <= kMaxServerIdBytes; }

}  // namespace

Element server_mam_query(const std::string& query_id, const std::optional<std::string>& after, bool last_only) {
  Element e("iq");
  e.set_attr("type", "set");
  auto& query = e.add_child(Element("query", ns(xmpp::kMamNs)));
  query.set_attr("queryid", query_id);
  auto& set = query.add_child(Element("set", ns(xmpp::kRsmNs)));
  set.add_child(Element("max", ns(xmpp::kRsmNs))).add_text(last_only ? "1" : std::to_string(kServerMamPage));
  if (last_only)
    set.add_child(Element("before", ns(xmpp::kRsmNs)));
  else if (after)
    set.add_child(Element("after", ns(xmpp::kRsmNs))).add_text(*after);
  return e;
}

Result<ServerFin> parse_server_fin(const Element& reply) {
  if (reply.attr("type") != "result") return Errc::bad_element;
  const Element* fin = reply.child("fin", xmpp::kMamNs);
  if (!fin) return Errc::bad_element;
  ServerFin out;
  auto complete = fin->attr("complete");
  out.complete = complete == "true" || complete == "1";
  if (const Element* set = fin->child("set", xmpp::kRsmNs))
    if (const Element* last = set->child("last", xmpp::kRsmNs)) {
      if (!sane_id(last->text())) return Errc::bad_element;
      out.last = last->text();
    }
  return out;
}

std::optional<ServerResult> parse_server_result(const Element& stanza, const std::string& own_bare,
                                                const std::string& query_id) {
  if (stanza.name() != "message") return std::nullopt;
  if (auto from = stanza.attr("from")) {
    auto j = Jid::parse(*from);
    if (!j || j->bare_string() != own_bare || !j->resource().empty()) return std::nullopt;
  }
  const Element* result = stanza.child("result", xmpp::kMamNs);
  if (!result || result->attr("queryid") != query_id) return std::nullopt;
  ServerResult out;
  out.id = std::string(result->attr("id").value_or(""));
  if (!sane_id(out.id)) return std::nullopt;
  const Element* fw = result->child("forwarded", xmpp::kForwardNs);
  const Element* inner = fw ? fw->child("message", xmpp::kClientNs) : nullptr;
  if (!inner) return std::nullopt;
  if (const Element* delay = fw->child("delay", xmpp::kDelayNs))
    if (auto t = xmpp::parse_datetime(delay->attr("stamp").value_or(""))) out.stamp_us = *t;
  out.message = *inner;
  return out;
}

}  // namespace multiend::client::pep
