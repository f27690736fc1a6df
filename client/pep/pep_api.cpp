#include "client/pep/pep_api.hpp"

#include "protocol/oldmemo/constants.hpp"
#include "protocol/omemo/constants.hpp"
#include "protocol/omemo/device_list.hpp"
#include "protocol/xmpp/data_form.hpp"
#include "protocol/xmpp/namespaces.hpp"

namespace multiend::client::pep {
namespace {

using xml::Element;

std::string ns(std::string_view v) { return std::string(v); }

Element open_access_form(std::string_view form_type, bool keep_all) {
  xmpp::DataForm form;
  form.type = "submit";
  form.fields.push_back({"FORM_TYPE", "hidden", {std::string(form_type)}});
  form.fields.push_back({"pubsub#access_model", "", {"open"}});
  if (keep_all) form.fields.push_back({"pubsub#max_items", "", {"max"}});
  return xmpp::data_form_to_xml(form);
}

std::string describe_error(const xmpp::StanzaError& e) {
  return std::string(xmpp::error_type_name(e.type)) + "/" + e.condition + (e.text.empty() ? "" : " (" + e.text + ")");
}

}  // namespace

namespace {

// <iq type='get' to=owner><pubsub>items</pubsub></iq>
Element items_iq(const std::string& owner_bare, Element items) {
  Element e("iq");
  e.set_attr("type", "get");
  e.set_attr("to", owner_bare);
  e.add_child(Element("pubsub", ns(xmpp::kPubsubNs))).add_child(std::move(items));
  return e;
}

Element items_of_node(std::string_view node) {
  Element items("items", ns(xmpp::kPubsubNs));
  items.set_attr("node", std::string(node));
  return items;
}

}  // namespace

Element get_items(const std::string& owner_bare, std::string_view node) {
  Element items = items_of_node(node);
  items.set_attr("max_items", "1");
  return items_iq(owner_bare, std::move(items));
}

Element get_item(const std::string& owner_bare, std::string_view node, const std::string& item_id) {
  Element items = items_of_node(node);
  items.add_child(Element("item", ns(xmpp::kPubsubNs))).set_attr("id", item_id);
  return items_iq(owner_bare, std::move(items));
}

Element publish_open(std::string_view node, const std::string& item_id, Element payload, bool keep_all) {
  Element e("iq");
  e.set_attr("type", "set");
  auto& pubsub = e.add_child(Element("pubsub", ns(xmpp::kPubsubNs)));
  pubsub.add_child(Element("publish", ns(xmpp::kPubsubNs)))
      .set_attr("node", std::string(node))
      .add_child(Element("item", ns(xmpp::kPubsubNs)))
      .set_attr("id", item_id)
      .add_child(std::move(payload));
  pubsub.add_child(Element("publish-options", ns(xmpp::kPubsubNs)))
      .add_child(open_access_form(xmpp::kPublishOptionsForm, keep_all));
  return e;
}

Element configure_open(std::string_view node, bool keep_all) {
  Element e("iq");
  e.set_attr("type", "set");
  e.add_child(Element("pubsub", ns(xmpp::kPubsubOwnerNs)))
      .add_child(Element("configure", ns(xmpp::kPubsubOwnerNs)))
      .set_attr("node", std::string(node))
      .add_child(open_access_form("http://jabber.org/protocol/pubsub#node_config", keep_all));
  return e;
}

Result<const Element*> first_item(const Element& reply) {
  if (reply.attr("type") != "result") return Errc::bad_element;
  const Element* pubsub = reply.child("pubsub", xmpp::kPubsubNs);
  const Element* items = pubsub ? pubsub->child("items", xmpp::kPubsubNs) : nullptr;
  if (!items) return Errc::bad_element;
  const Element* item = items->child("item", xmpp::kPubsubNs);
  if (!item) return static_cast<const Element*>(nullptr);
  auto children = item->element_children();
  return children.empty() ? static_cast<const Element*>(nullptr) : children.front();
}

bool precondition_not_met(const Element& reply) {
  if (reply.attr("type") != "error") return false;
  auto err = xmpp::parse_stanza_error(reply);
  return err && err->app_condition && err->app_condition->name() == "precondition-not-met" &&
         err->app_condition->ns() == xmpp::kPubsubErrorsNs;
}

namespace {

// A device list answer: absent (either server's way), refused, or the ids `parse` reads.
template <class Parse>
ListResult device_list_result(const Element& reply, std::string_view name, std::string_view list_ns, Parse parse) {
  ListResult out;
  if (reply.attr("type") == "error") {
    auto err = xmpp::parse_stanza_error(reply);
    if (!err) {
      out.refused = "an error without a condition";
      return out;
    }
    // Never created: Prosody says forbidden, ejabberd item-not-found. Anything else is worth
    // reporting (presence-restricted lists are forbidden too, and indistinguishable here).
    if (err->condition == "item-not-found") return out;
    if (err->condition == "forbidden") {
      out.unreadable = true;
      return out;
    }
    out.refused = describe_error(*err);
    return out;
  }
  auto payload = first_item(reply);
  if (!payload) {
    out.refused = "malformed device list reply";
    return out;
  }
  if (!*payload) return out;
  if ((*payload)->name() != name || (*payload)->ns() != list_ns) {
    out.refused = "device list item is not a <" + std::string(name) + " xmlns='" + std::string(list_ns) + "'/>";
    return out;
  }
  auto ids = parse(**payload);
  if (!ids) {
    out.refused = "malformed device list: " + ids.error().message();
    return out;
  }
  out.ids = std::move(*ids);
  return out;
}

Result<std::vector<std::uint32_t>> omemo2_ids(const Element& e) {
  auto list = omemo::device_list_from_xml(e);
  if (!list) return list.error();
  std::vector<std::uint32_t> ids;
  for (const auto& d : list->devices) ids.push_back(d.id);
  return ids;
}

}  // namespace

ListResult legacy_device_list(const Element& reply) {
  return device_list_result(reply, "list", oldmemo::kNs, oldmemo::device_list_from_xml);
}

ListResult omemo2_device_list(const Element& reply) {
  return device_list_result(reply, "devices", omemo::kNs, omemo2_ids);
}

std::string legacy_bundle_node(std::uint32_t device) {
  return std::string(oldmemo::kBundleNodePrefix) + std::to_string(device);
}

}  // namespace multiend::client::pep
