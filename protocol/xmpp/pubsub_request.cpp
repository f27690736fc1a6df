#include "protocol/xmpp/pubsub_request.hpp"

#include <charconv>

#include "protocol/jid.hpp"
#include "protocol/xmpp/data_form.hpp"
#include "protocol/xmpp/namespaces.hpp"

namespace multiend::xmpp {
namespace {

bool is_action(std::string_view name) {
  return name == "publish" || name == "retract" || name == "items" || name == "subscribe" ||
         name == "unsubscribe";
}

Result<std::string> node_of(const xml::Element& e) {
  auto node = e.attr("node");
  if (!node) return Errc::bad_element;
  if (node->empty() || node->size() > kMaxNodeBytes) return Errc::bad_request;
  return std::string(*node);
}

Result<std::string> check_item_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxItemIdBytes) return Errc::bad_request;
  return std::string(id);
}

// The ids of the <item id/> children of a retract or items element, refused as soon as there
// are too many.
Result<std::vector<std::string>> item_ids(const xml::Element& parent) {
  std::vector<std::string> ids;
  for (const xml::Element::Node& n : parent.nodes()) {
    const xml::Element* item = n.element();
    if (!item || item->name() != "item" || item->ns() != kPubsubNs) continue;
    if (ids.size() == kMaxPubsubItemIds) return Errc::limit_exceeded;
    auto id_attr = item->attr("id");
    if (!id_attr) return Errc::bad_element;
    auto id = check_item_id(*id_attr);
    if (!id) return id.error();
    ids.push_back(std::move(*id));
  }
  return ids;
}

Result<std::vector<std::pair<std::string, std::string>>> publish_options(const xml::Element& po) {
  std::vector<std::pair<std::string, std::string>> out;
  auto forms = po.children("x", kDataFormsNs);
  if (forms.empty()) return out;
  if (forms.size() > 1) return Errc::bad_element;
  auto form = parse_data_form(*forms.front());
  if (!form) return form.error();
  if (form->type != "submit") return Errc::bad_request;
  const FormField* ft = form->field("FORM_TYPE");
  if (!ft || ft->values.size() != 1 || ft->values.front() != kPublishOptionsForm) return Errc::bad_request;
  for (const FormField& f : form->fields) {
    if (f.var.empty() || f.var == "FORM_TYPE") continue;
    if (f.values.empty()) out.emplace_back(f.var, std::string());
    for (const std::string& v : f.values) out.emplace_back(f.var, v);
  }
  return out;
}

Result<PubsubRequest> parse_publish(const xml::Element& publish, const xml::Element* options) {
  auto node = node_of(publish);
  if (!node) return node.error();
  auto items = publish.children("item", kPubsubNs);
  if (items.size() != 1) return Errc::bad_element;
  std::optional<std::string> item_id;
  if (auto id_attr = items.front()->attr("id")) {
    auto id = check_item_id(*id_attr);
    if (!id) return id.error();
    item_id = std::move(*id);
  }
  auto payload = items.front()->element_children();
  if (payload.size() != 1) return Errc::bad_element;
  std::vector<std::pair<std::string, std::string>> opts;
  if (options) {
    auto parsed = publish_options(*options);
    if (!parsed) return parsed.error();
    opts = std::move(*parsed);
  }
  return PublishRequest{std::move(*node), std::move(item_id), *payload.front(), std::move(opts)};
}

Result<PubsubRequest> parse_retract(const xml::Element& retract) {
  auto node = node_of(retract);
  if (!node) return node.error();
  bool notify = false;
  if (auto n = retract.attr("notify")) {
    if (*n == "true" || *n == "1")
      notify = true;
    else if (*n != "false" && *n != "0")
      return Errc::bad_request;
  }
  auto ids = item_ids(retract);
  if (!ids) return ids.error();
  if (ids->empty()) return Errc::bad_element;
  return RetractRequest{std::move(*node), std::move(*ids), notify};
}

Result<PubsubRequest> parse_items(const xml::Element& items) {
  auto node = node_of(items);
  if (!node) return node.error();
  std::optional<std::uint32_t> max_items;
  if (auto m = items.attr("max_items")) {
    std::uint32_t v = 0;
    auto [p, ec] = std::from_chars(m->data(), m->data() + m->size(), v);
    if (m->empty() || (*m)[0] < '0' || (*m)[0] > '9' || ec != std::errc() || p != m->data() + m->size())
      return Errc::bad_request;
    max_items = v;
  }
  auto ids = item_ids(items);
  if (!ids) return ids.error();
  return ItemsRequest{std::move(*node), std::move(*ids), max_items};
}

template <class Request>
Result<PubsubRequest> parse_subscription(const xml::Element& e) {
  auto node = node_of(e);
  if (!node) return node.error();
  auto jid_attr = e.attr("jid");
  if (!jid_attr) return Errc::bad_element;
  auto jid = Jid::parse(*jid_attr);
  if (!jid) return Errc::bad_request;
  return Request{std::move(*node), jid->to_string()};
}

}  // namespace

Result<PubsubRequest> parse_pubsub(const xml::Element& pubsub, bool is_set) {
  if (pubsub.name() != "pubsub" || pubsub.ns() != kPubsubNs) return Errc::bad_element;
  const xml::Element* action = nullptr;
  const xml::Element* options = nullptr;
  std::size_t actions = 0;
  bool unknown = false;
  for (const xml::Element* c : pubsub.element_children()) {
    if (c->ns() != kPubsubNs) continue;  // foreign extensions are not ours to judge
    if (is_action(c->name())) {
      ++actions;
      action = c;
    } else if (c->name() == "publish-options") {
      if (options) return Errc::bad_element;
      options = c;
    } else {
      unknown = true;
    }
  }
  if (unknown) return Errc::unsupported;
  if (actions != 1) return Errc::bad_element;
  const std::string& name = action->name();
  if (options && name != "publish") return Errc::bad_element;
  if ((name != "items") != is_set) return Errc::bad_request;
  if (name == "publish") return parse_publish(*action, options);
  if (name == "retract") return parse_retract(*action);
  if (name == "items") return parse_items(*action);
  if (name == "subscribe") return parse_subscription<SubscribeRequest>(*action);
  return parse_subscription<UnsubscribeRequest>(*action);
}

xml::Element make_items_result(std::string_view node, std::vector<std::pair<std::string, xml::Element>> items) {
  const std::string ns(kPubsubNs);
  xml::Element pubsub("pubsub", ns);
  xml::Element& list = pubsub.add_child(xml::Element("items", ns));
  list.set_attr("node", std::string(node));
  for (auto& [id, payload] : items) {
    xml::Element& item = list.add_child(xml::Element("item", ns));
    item.set_attr("id", id);
    item.add_child(std::move(payload));
  }
  return pubsub;
}

xml::Element make_publish_result(std::string_view node, std::string_view item_id) {
  const std::string ns(kPubsubNs);
  xml::Element pubsub("pubsub", ns);
  xml::Element& publish = pubsub.add_child(xml::Element("publish", ns));
  publish.set_attr("node", std::string(node));
  publish.add_child(xml::Element("item", ns)).set_attr("id", std::string(item_id));
  return pubsub;
}

xml::Element make_event_message(std::string_view from, std::string_view to, std::string_view node,
                                std::string_view item_id, xml::Element payload, std::string_view stanza_ns) {
  const std::string ns(kPubsubEventNs);
  xml::Element message("message", std::string(stanza_ns));
  message.set_attr("from", std::string(from));
  message.set_attr("to", std::string(to));
  message.set_attr("type", "headline");
  xml::Element& items = message.add_child(xml::Element("event", ns)).add_child(xml::Element("items", ns));
  items.set_attr("node", std::string(node));
  xml::Element& item = items.add_child(xml::Element("item", ns));
  item.set_attr("id", std::string(item_id));
  item.add_child(std::move(payload));
  return message;
}

}  // namespace multiend::xmpp
