// XEP-0004 data forms: parsing submitted forms, lookups, round trips, bounds and bad layouts.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>

#include "protocol/xml/serializer.hpp"
#include "protocol/xml/stream_parser.hpp"
#include "protocol/xmpp/data_form.hpp"

using namespace multiend;
using namespace multiend::xmpp;

namespace {

Result<DataForm> form_of(std::string_view x) {
  auto e = xml::parse_element(x);
  REQUIRE_MESSAGE(e.has_value(), x);
  return parse_data_form(*e);
}

bool fails_with(const Result<DataForm>& r, Errc e) { return !r.has_value() && r.error() == e; }

std::string fields(std::size_t n, std::size_t values_each = 1) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out += "<field var='f" + std::to_string(i) + "'>";
    for (std::size_t v = 0; v < values_each; ++v) out += "<value>" + std::to_string(v) + "</value>";
    out += "</field>";
  }
  return out;
}

}  // namespace

TEST_CASE("a submitted MAM form") {
  auto f = form_of(
      "<x xmlns='jabber:x:data' type='submit'><title>ignored</title>"
      "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>"
      "<field var='with'><value>juliet@capulet.lit</value></field>"
      "<field var='ids' type='list-multi'><value>a</value><value>b</value><value> c </value></field>"
      "<field var='empty'/>"
      "<field type='fixed'><value>a label</value></field>"
      "<field var='opt' type='list-single'><option label='x'><value>o</value></option><value>chosen</value>"
      "<desc>d</desc><required/></field></x>");
  REQUIRE(f.has_value());
  CHECK(f->type == "submit");
  CHECK(f->fields.size() == 6);
  CHECK(f->form_type() == "urn:xmpp:mam:2");
  CHECK(f->value("with") == "juliet@capulet.lit");
  REQUIRE(f->field("ids") != nullptr);
  CHECK(f->field("ids")->type == "list-multi");
  CHECK(f->field("ids")->values == std::vector<std::string>{"a", "b", " c "});  // verbatim
  CHECK(f->value("ids") == "a");
  CHECK(f->value("empty") == "");  // present without a value
  CHECK_FALSE(f->value("absent").has_value());
  CHECK(f->field("absent") == nullptr);
  CHECK(f->fields[4].var.empty());
  CHECK(f->fields[4].type == "fixed");
  CHECK(f->value("opt") == "chosen");  // <option> values are not field values
  CHECK(f->field("opt")->values.size() == 1);
}

TEST_CASE("form types and FORM_TYPE") {
  for (const char* t : {"form", "submit", "cancel", "result"})
    CHECK(form_of(std::string("<x xmlns='jabber:x:data' type='") + t + "'/>").has_value());
  auto none = form_of("<x xmlns='jabber:x:data' type='submit'/>");
  REQUIRE(none.has_value());
  CHECK_FALSE(none->form_type().has_value());
  CHECK(none->fields.empty());
}

TEST_CASE("round trip") {
  DataForm f{"submit",
             {{"FORM_TYPE", "hidden", {"http://jabber.org/protocol/pubsub#publish-options"}},
              {"pubsub#access_model", "", {"open"}},
              {"multi", "text-multi", {"line 1", "", "line <3>"}},
              {"", "fixed", {"label"}},
              {"novalue", "", {}}}};
  auto x = data_form_to_xml(f);
  CHECK(xml::serialize(x).starts_with(
      "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>"
      "http://jabber.org/protocol/pubsub#publish-options</value></field><field var='pubsub#access_model'>"));
  auto back = form_of(xml::serialize(x));
  REQUIRE(back.has_value());
  CHECK(back->type == f.type);
  REQUIRE(back->fields.size() == f.fields.size());
  for (std::size_t i = 0; i < f.fields.size(); ++i) {
    CHECK(back->fields[i].var == f.fields[i].var);
    CHECK(back->fields[i].type == f.fields[i].type);
    CHECK(back->fields[i].values == f.fields[i].values);
  }
}

TEST_CASE("bad layouts and values") {
  CHECK(fails_with(form_of("<x xmlns='jabber:x:datax' type='submit'/>"), Errc::bad_element));
  CHECK(fails_with(form_of("<form xmlns='jabber:x:data' type='submit'/>"), Errc::bad_element));
  CHECK(fails_with(form_of("<x xmlns='jabber:x:data'/>"), Errc::bad_element));  // type is required
  CHECK(fails_with(form_of("<x xmlns='jabber:x:data' type='Submit'/>"), Errc::bad_request));
  CHECK(fails_with(form_of("<x xmlns='jabber:x:data' type=''/>"), Errc::bad_request));
  CHECK(fails_with(form_of("<x xmlns='jabber:x:data' type='submit'><field var='a'/><field var='a'/></x>"),
                   Errc::bad_request));
  // Fields and values in other namespaces are not ours.
  auto foreign = form_of("<x xmlns='jabber:x:data' type='submit'><field xmlns='urn:x' var='a'/>"
                         "<field var='b'><value xmlns='urn:x'>no</value><value>yes</value></field></x>");
  REQUIRE(foreign.has_value());
  CHECK(foreign->fields.size() == 1);
  CHECK(foreign->field("b")->values == std::vector<std::string>{"yes"});
}

TEST_CASE("bounds") {
  const std::string head = "<x xmlns='jabber:x:data' type='submit'>";
  CHECK(form_of(head + fields(kMaxFormFields) + "</x>").has_value());
  CHECK(fails_with(form_of(head + fields(kMaxFormFields + 1) + "</x>"), Errc::limit_exceeded));
  CHECK(form_of(head + fields(1, kMaxFieldValues) + "</x>").has_value());
  CHECK(fails_with(form_of(head + fields(1, kMaxFieldValues + 1) + "</x>"), Errc::limit_exceeded));
}
