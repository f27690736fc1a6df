#include "protocol/xmpp/stanza.hpp"

#include <array>
#include <utility>

#include "protocol/xmpp/namespaces.hpp"

namespace multiend::xmpp {
namespace {

constexpr std::array<std::pair<ErrorType, std::string_view>, 5> kTypeNames{{
    {ErrorType::cancel, "cancel"},
    {ErrorType::continue_, "continue"},
    {ErrorType::modify, "modify"},
    {ErrorType::auth, "auth"},
    {ErrorType::wait, "wait"},
}};

std::optional<ErrorType> error_type_from(std::string_view s) {
  for (const auto& [t, name] : kTypeNames)
    if (name == s) return t;
  return std::nullopt;
}

// A reply to `request`: same element name and namespace, addresses swapped, same id.
xml::Element reply_to(const xml::Element& request, std::string type) {
  xml::Element reply(request.name(), request.ns());
  if (auto from = request.attr("from")) reply.set_attr("to", std::string(*from));
  if (auto to = request.attr("to")) reply.set_attr("from", std::string(*to));
  if (auto id = request.attr("id")) reply.set_attr("id", std::string(*id));
  reply.set_attr("type", std::move(type));
  return reply;
}

}  // namespace

std::string_view error_type_name(ErrorType t) noexcept {
  for (const auto& [type, name] : kTypeNames)
    if (type == t) return name;
  return "cancel";
}

xml::Element make_error_reply(const xml::Element& request, const StanzaError& err) {
  xml::Element reply = reply_to(request, "error");
  xml::Element& error = reply.add_child(xml::Element("error", request.ns()));
  error.set_attr("type", std::string(error_type_name(err.type)));
  error.add_child(xml::Element(err.condition, std::string(kStanzaErrorNs)));
  if (!err.text.empty())
    error.add_child(xml::Element("text", std::string(kStanzaErrorNs))).add_text(err.text);
  if (err.app_condition) error.add_child(*err.app_condition);
  return reply;
}

xml::Element make_iq_result(const xml::Element& request, std::optional<xml::Element> payload) {
  xml::Element reply = reply_to(request, "result");
  if (payload) reply.add_child(std::move(*payload));
  return reply;
}

Result<StanzaError> parse_stanza_error(const xml::Element& stanza) {
  if (stanza.attr("type") != "error") return Errc::bad_element;
  const xml::Element* error = stanza.child("error", stanza.ns());
  if (!error) return Errc::bad_element;
  auto type = error_type_from(error->attr("type").value_or(""));
  if (!type) return Errc::bad_element;
  StanzaError out{*type, {}, {}, std::nullopt};
  for (const xml::Element* c : error->element_children()) {
    if (c->ns() != kStanzaErrorNs) {
      if (!out.app_condition) out.app_condition = *c;
    } else if (c->name() == "text") {
      if (out.text.empty()) out.text = c->text();
    } else if (out.condition.empty()) {
      out.condition = c->name();
    }
  }
  if (out.condition.empty()) return Errc::bad_element;
  return out;
}

xml::Element rename_namespace(const xml::Element& e, std::string_view from_ns, std::string_view to_ns) {
  xml::Element out(e.name(), e.ns() == from_ns ? std::string(to_ns) : e.ns());
  for (const auto& [name, value] : e.attrs()) out.set_attr(name, value);
  for (const xml::Element::Node& n : e.nodes()) {
    if (n.is_element())
      out.add_child(rename_namespace(*n.element(), from_ns, to_ns));
    else
      out.add_text(n.text());
  }
  return out;
}

}  // namespace multiend::xmpp
