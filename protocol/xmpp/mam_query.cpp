#include "protocol/xmpp/mam_query.hpp"

#include "protocol/jid.hpp"
#include "protocol/xmpp/data_form.hpp"
#include "protocol/xmpp/datetime.hpp"
#include "protocol/xmpp/namespaces.hpp"

namespace multiend::xmpp {
namespace {

// A field that carries at most one value; an empty value is the same as none (clients send
// blank text-single fields).
Result<std::optional<std::string>> single_value(const FormField& f) {
  if (f.values.size() > 1) return Errc::bad_request;
  if (f.values.empty() || f.values.front().empty()) return std::optional<std::string>();
  return std::optional<std::string>(f.values.front());
}

Result<void> check_archive_id(const std::string& id) {
  if (id.empty() || id.size() > kMaxArchiveIdBytes) return Errc::bad_request;
  return {};
}

// Applies one field of the filter form to `q`.
Result<void> apply_field(const FormField& f, MamQuery& q) {
  if (f.var.empty()) return {};  // a label, not a parameter
  if (f.var == "ids") {
    for (const std::string& id : f.values) {
      if (id.empty()) continue;
      if (q.ids.size() == kMaxMamIds) return Errc::limit_exceeded;
      if (auto ok = check_archive_id(id); !ok) return ok.error();
      q.ids.push_back(id);
    }
    return {};
  }
  if (f.var == "FORM_TYPE") return {};  // checked before any field
  const bool known = f.var == "with" || f.var == "start" || f.var == "end" || f.var == "after-id" ||
                     f.var == "before-id";
  if (!known) return Errc::unsupported;
  auto v = single_value(f);
  if (!v) return v.error();
  if (!*v) return {};
  const std::string& value = **v;
  if (f.var == "with") {
    auto jid = Jid::parse(value);
    if (!jid) return Errc::bad_request;
    q.with = jid->to_string();
  } else if (f.var == "start" || f.var == "end") {
    auto t = parse_datetime(value);
    if (!t) return t.error();
    (f.var == "start" ? q.start_us : q.end_us) = *t;
  } else {
    if (auto ok = check_archive_id(value); !ok) return ok.error();
    (f.var == "after-id" ? q.after_id : q.before_id) = value;
  }
  return {};
}

}  // namespace

Result<MamQuery> parse_mam_query(const xml::Element& query) {
  if (query.name() != "query" || query.ns() != kMamNs) return Errc::bad_element;
  if (query.attr("node")) return Errc::unsupported;
  MamQuery q;
  if (auto id = query.attr("queryid")) {
    if (id->size() > kMaxQueryIdBytes) return Errc::bad_request;
    q.queryid = std::string(*id);
  }
  const xml::Element* form_element = nullptr;
  const xml::Element* set_element = nullptr;
  for (const xml::Element* c : query.element_children()) {
    if (c->name() == "x" && c->ns() == kDataFormsNs) {
      if (form_element) return Errc::bad_element;
      form_element = c;
    } else if (c->name() == "set" && c->ns() == kRsmNs) {
      if (set_element) return Errc::bad_element;
      set_element = c;
    } else if (c->name() == "flip-page" && c->ns() == kMamNs) {
      q.flip_page = true;
    }
  }
  if (form_element) {
    auto form = parse_data_form(*form_element);
    if (!form) return form.error();
    if (form->type != "submit") return Errc::bad_request;
    // The form type first: fields of another form (say mam:1) are not ours to judge.
    if (const FormField* ft = form->field("FORM_TYPE")) {
      auto v = single_value(*ft);
      if (!v) return v.error();
      if (*v && **v != kMamNs) return Errc::bad_request;
    }
    for (const FormField& f : form->fields)
      if (auto ok = apply_field(f, q); !ok) return ok.error();
  }
  if (set_element) {
    auto rsm = parse_rsm(*set_element);
    if (!rsm) return rsm.error();
    q.rsm = std::move(*rsm);
  }
  return q;
}

xml::Element make_mam_result(std::string_view to, std::string_view from, std::string_view queryid,
                             std::string_view result_id, std::int64_t stamp_us,
                             xml::Element forwarded_message, std::string_view stanza_ns) {
  xml::Element message("message", std::string(stanza_ns));
  message.set_attr("to", std::string(to));
  message.set_attr("from", std::string(from));
  xml::Element& result = message.add_child(xml::Element("result", std::string(kMamNs)));
  if (!queryid.empty()) result.set_attr("queryid", std::string(queryid));
  result.set_attr("id", std::string(result_id));
  xml::Element& forwarded = result.add_child(xml::Element("forwarded", std::string(kForwardNs)));
  forwarded.add_child(xml::Element("delay", std::string(kDelayNs))).set_attr("stamp", format_datetime(stamp_us));
  forwarded.add_child(std::move(forwarded_message));
  return message;
}

xml::Element make_mam_fin(const RsmResult& rsm, bool complete) {
  xml::Element fin("fin", std::string(kMamNs));
  if (complete) fin.set_attr("complete", "true");
  fin.add_child(rsm_result_to_xml(rsm));
  return fin;
}

}  // namespace multiend::xmpp
