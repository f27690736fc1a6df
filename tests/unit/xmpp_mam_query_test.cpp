// XEP-0313 MAM queries: the filter form (with, start, end, after-id, before-id, ids), RSM and
// flip-page, every rejected input, and the <result/> and <fin/> builders.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>

#include "protocol/xml/serializer.hpp"
#include "protocol/xml/stream_parser.hpp"
#include "protocol/xmpp/datetime.hpp"
#include "protocol/xmpp/mam_query.hpp"
#include "protocol/xmpp/namespaces.hpp"

using namespace multiend;
using namespace multiend::xmpp;

namespace {

Result<MamQuery> query_of(std::string_view x) {
  auto e = xml::parse_element(x);
  REQUIRE_MESSAGE(e.has_value(), x);
  return parse_mam_query(*e);
}

// A query with a submitted form holding `fields` (FORM_TYPE added first).
Result<MamQuery> form_query(const std::string& fields, const std::string& after_form = "") {
  return query_of("<query xmlns='urn:xmpp:mam:2' queryid='q1'><x xmlns='jabber:x:data' type='submit'>"
                  "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>" +
                  fields + "</x>" + after_form + "</query>");
}

std::string field(const std::string& var, const std::string& value) {
  return "<field var='" + var + "'><value>" + value + "</value></field>";
}

bool fails_with(const Result<MamQuery>& r, Errc e) { return !r.has_value() && r.error() == e; }

}  // namespace

TEST_CASE("bare query") {
  auto q = query_of("<query xmlns='urn:xmpp:mam:2'/>");
  REQUIRE(q.has_value());
  CHECK(q->queryid.empty());
  CHECK_FALSE(q->with.has_value());
  CHECK_FALSE(q->start_us.has_value());
  CHECK_FALSE(q->end_us.has_value());
  CHECK_FALSE(q->after_id.has_value());
  CHECK_FALSE(q->before_id.has_value());
  CHECK(q->ids.empty());
  CHECK_FALSE(q->rsm.max.has_value());
  CHECK_FALSE(q->flip_page);
}

TEST_CASE("every field, RSM and flip-page") {
  auto q = form_query(field("with", "Juliet@Capulet.LIT") + field("start", "2010-06-07T00:00:00Z") +
                          field("end", "2010-07-07T13:23:54+02:00") + field("after-id", "28482-98726-73623") +
                          field("before-id", "09af3-cc343-b409f") +
                          "<field var='ids' type='list-multi'><value>1</value><value/><value>2</value></field>",
                      "<set xmlns='http://jabber.org/protocol/rsm'><max>10</max><before/></set><flip-page/>");
  REQUIRE(q.has_value());
  CHECK(q->queryid == "q1");
  CHECK(q->with == "juliet@capulet.lit");  // normalised
  CHECK(q->start_us == *parse_datetime("2010-06-07T00:00:00Z"));
  CHECK(q->end_us == *parse_datetime("2010-07-07T11:23:54Z"));
  CHECK(q->after_id == "28482-98726-73623");
  CHECK(q->before_id == "09af3-cc343-b409f");
  CHECK(q->ids == std::vector<std::string>{"1", "2"});  // empty entries skipped
  CHECK(q->rsm.max == 10u);
  REQUIRE(q->rsm.before.has_value());
  CHECK(q->rsm.before->empty());
  CHECK(q->flip_page);
}

TEST_CASE("with keeps a full JID full") {
  auto q = form_query(field("with", "romeo@montague.lit/Orchard"));
  REQUIRE(q.has_value());
  CHECK(q->with == "romeo@montague.lit/Orchard");
}

TEST_CASE("empty single-valued fields and a missing FORM_TYPE are tolerated") {
  auto q = form_query("<field var='with'/><field var='start'><value></value></field><field var='ids'/>");
  REQUIRE(q.has_value());
  CHECK_FALSE(q->with.has_value());
  CHECK_FALSE(q->start_us.has_value());
  CHECK(q->ids.empty());
  auto no_form_type = query_of("<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'>" +
                               field("with", "a@b") + "</x></query>");
  REQUIRE(no_form_type.has_value());
  CHECK(no_form_type->with == "a@b");
  // Foreign children are ignored.
  CHECK(query_of("<query xmlns='urn:xmpp:mam:2'><other xmlns='urn:x'/><set xmlns='urn:y'/></query>").has_value());
}

TEST_CASE("unknown fields are not implemented") {
  CHECK(fails_with(form_query(field("include-groupchat", "true")), Errc::unsupported));
  CHECK(fails_with(form_query(field("{urn:example}free-text-search", "x")), Errc::unsupported));
  CHECK(fails_with(form_query("<field var='withx'/>"), Errc::unsupported));
  CHECK(fails_with(query_of("<query xmlns='urn:xmpp:mam:2' node='urn:xmpp:omemo:2:devices'/>"), Errc::unsupported));
  // A label without var is not a parameter.
  CHECK(form_query("<field type='fixed'><value>hello</value></field>").has_value());
}

TEST_CASE("invalid values") {
  CHECK(fails_with(form_query(field("with", "not a jid@")), Errc::bad_request));
  CHECK(fails_with(form_query(field("with", "@example.org")), Errc::bad_request));
  CHECK(fails_with(form_query(field("start", "yesterday")), Errc::bad_request));
  CHECK(fails_with(form_query(field("end", "2010-02-30T00:00:00Z")), Errc::bad_request));
  CHECK(fails_with(form_query(field("after-id", std::string(kMaxArchiveIdBytes + 1, '1'))), Errc::bad_request));
  CHECK(form_query(field("after-id", std::string(kMaxArchiveIdBytes, '1'))).has_value());
  CHECK(fails_with(form_query(field("before-id", std::string(kMaxArchiveIdBytes + 1, '1'))), Errc::bad_request));
  CHECK(fails_with(form_query(field("ids", std::string(kMaxArchiveIdBytes + 1, '1'))), Errc::bad_request));
  // Two values in a single-valued field.
  CHECK(fails_with(form_query("<field var='with'><value>a@b</value><value>c@d</value></field>"), Errc::bad_request));
  CHECK(fails_with(form_query("<field var='start'><value>2010-06-07T00:00:00Z</value><value>2010-06-08T00:00:00Z"
                              "</value></field>"),
                   Errc::bad_request));
  // Another form type, or not a submission; the form type is judged before the fields.
  CHECK(fails_with(query_of("<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'>"
                            "<field var='unknown'/><field var='FORM_TYPE'><value>urn:xmpp:mam:1</value></field>"
                            "</x></query>"),
                   Errc::bad_request));
  CHECK(fails_with(query_of("<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='form'/></query>"),
                   Errc::bad_request));
  CHECK(fails_with(query_of("<query xmlns='urn:xmpp:mam:2' queryid='" + std::string(kMaxQueryIdBytes + 1, 'q') +
                            "'/>"),
                   Errc::bad_request));
  // RSM errors pass through.
  CHECK(fails_with(form_query("", "<set xmlns='http://jabber.org/protocol/rsm'><max>-1</max></set>"),
                   Errc::bad_request));
  CHECK(fails_with(form_query("", "<set xmlns='http://jabber.org/protocol/rsm'><max>1</max><max>1</max></set>"),
                   Errc::bad_element));
}

TEST_CASE("bounds on ids") {
  std::string values;
  for (std::size_t i = 0; i < kMaxMamIds; ++i) values += "<value>" + std::to_string(i + 1) + "</value>";
  auto ok = form_query("<field var='ids'>" + values + "</field>");
  REQUIRE(ok.has_value());
  CHECK(ok->ids.size() == kMaxMamIds);
  CHECK(fails_with(form_query("<field var='ids'>" + values + "<value>x</value></field>"), Errc::limit_exceeded));
  // Beyond the data-form bound too.
  CHECK(fails_with(form_query("<field var='ids'>" + values + values + "</field>"), Errc::limit_exceeded));
}

TEST_CASE("bad layout") {
  CHECK(fails_with(query_of("<query xmlns='urn:xmpp:mam:1'/>"), Errc::bad_element));
  CHECK(fails_with(query_of("<fin xmlns='urn:xmpp:mam:2'/>"), Errc::bad_element));
  CHECK(fails_with(query_of("<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'/>"
                            "<x xmlns='jabber:x:data' type='submit'/></query>"),
                   Errc::bad_element));
  CHECK(fails_with(query_of("<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'/>"
                            "<set xmlns='http://jabber.org/protocol/rsm'/></query>"),
                   Errc::bad_element));
  CHECK(fails_with(query_of("<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data'/></query>"), Errc::bad_element));
}

TEST_CASE("result message") {
  auto inner = xml::parse_element("<message xmlns='jabber:client' from='alice@example.org/phone' "
                                  "to='archive.example.org' type='normal' id='m1'><body>x</body></message>");
  REQUIRE(inner.has_value());
  auto m = make_mam_result("alice@example.org/laptop", "archive.example.org", "f27", "1234",
                           *parse_datetime("2026-11-28T12:00:00Z"), *inner, kComponentNs);
  CHECK(xml::serialize(m) ==
        "<message xmlns='jabber:component:accept' to='alice@example.org/laptop' from='archive.example.org'>"
        "<result xmlns='urn:xmpp:mam:2' queryid='f27' id='1234'><forwarded xmlns='urn:xmpp:forward:0'>"
        "<delay xmlns='urn:xmpp:delay' stamp='2026-11-28T12:00:00.000Z'/>"
        "<message xmlns='jabber:client' from='alice@example.org/phone' to='archive.example.org' type='normal' "
        "id='m1'><body>x</body></message></forwarded></result></message>");
  auto no_queryid = make_mam_result("a@b/c", "b", "", "1", 0, *inner, kClientNs);
  const xml::Element* result = no_queryid.child("result", kMamNs);
  REQUIRE(result != nullptr);
  CHECK_FALSE(result->attr("queryid").has_value());
  CHECK(result->attr("id") == "1");
}

TEST_CASE("fin") {
  RsmResult page{"1", "9", std::nullopt, std::nullopt};
  CHECK(xml::serialize(make_mam_fin(page, true)) ==
        "<fin xmlns='urn:xmpp:mam:2' complete='true'><set xmlns='http://jabber.org/protocol/rsm'><first>1</first>"
        "<last>9</last></set></fin>");
  CHECK(xml::serialize(make_mam_fin({std::nullopt, std::nullopt, std::nullopt, 42u}, false)) ==
        "<fin xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><count>42</count></set></fin>");
}
