#include "protocol/xmpp/data_form.hpp"

#include "protocol/xmpp/namespaces.hpp"

namespace multiend::xmpp {

const FormField* DataForm::field(std::string_view var) const {
  for (const FormField& f : fields)
    if (f.var == var) return &f;
  return nullptr;
}

std::optional<std::string> DataForm::value(std::string_view var) const {
  const FormField* f = field(var);
  if (!f) return std::nullopt;
  return f->values.empty() ? std::string() : f->values.front();
}

std::optional<std::string> DataForm::form_type() const { return value("FORM_TYPE"); }

Result<DataForm> parse_data_form(const xml::Element& x) {
  if (x.name() != "x" || x.ns() != kDataFormsNs) return Errc::bad_element;
  auto type = x.attr("type");
  if (!type) return Errc::bad_element;
  if (*type != "form" && *type != "submit" && *type != "cancel" && *type != "result")
    return Errc::bad_request;
  DataForm form;
  form.type = std::string(*type);
  // Walk the nodes ourselves so an oversized form is refused before anything is copied.
  for (const xml::Element::Node& n : x.nodes()) {
    const xml::Element* f = n.element();
    if (!f || f->name() != "field" || f->ns() != kDataFormsNs) continue;
    if (form.fields.size() == kMaxFormFields) return Errc::limit_exceeded;
    FormField field;
    field.var = std::string(f->attr("var").value_or(""));
    field.type = std::string(f->attr("type").value_or(""));
    if (!field.var.empty() && form.field(field.var)) return Errc::bad_request;
    for (const xml::Element::Node& vn : f->nodes()) {
      const xml::Element* v = vn.element();
      if (!v || v->name() != "value" || v->ns() != kDataFormsNs) continue;
      if (field.values.size() == kMaxFieldValues) return Errc::limit_exceeded;
      field.values.push_back(v->text());
    }
    form.fields.push_back(std::move(field));
  }
  return form;
}

xml::Element data_form_to_xml(const DataForm& form) {
  const std::string ns(kDataFormsNs);
  xml::Element x("x", ns);
  x.set_attr("type", form.type);
  for (const FormField& f : form.fields) {
    xml::Element& field = x.add_child(xml::Element("field", ns));
    if (!f.var.empty()) field.set_attr("var", f.var);
    if (!f.type.empty()) field.set_attr("type", f.type);
    for (const std::string& v : f.values) field.add_child(xml::Element("value", ns)).add_text(v);
  }
  return x;
}

}  // namespace multiend::xmpp
