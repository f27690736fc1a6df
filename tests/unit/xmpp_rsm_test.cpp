// XEP-0059 RSM: request parsing (max, after, before, index), result building, bad input.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>

#include "protocol/xml/serializer.hpp"
#include "protocol/xml/stream_parser.hpp"
#include "protocol/xmpp/rsm.hpp"

using namespace multiend;
using namespace multiend::xmpp;

namespace {

Result<RsmRequest> rsm_of(std::string_view body) {
  const std::string x = "<set xmlns='http://jabber.org/protocol/rsm'>" + std::string(body) + "</set>";
  auto e = xml::parse_element(x);
  REQUIRE_MESSAGE(e.has_value(), x);
  return parse_rsm(*e);
}

bool fails_with(const Result<RsmRequest>& r, Errc e) { return !r.has_value() && r.error() == e; }

}  // namespace

TEST_CASE("empty set") {
  auto r = rsm_of("");
  REQUIRE(r.has_value());
  CHECK_FALSE(r->max.has_value());
  CHECK_FALSE(r->after.has_value());
  CHECK_FALSE(r->before.has_value());
  CHECK_FALSE(r->index.has_value());
}

TEST_CASE("values") {
  auto r = rsm_of("<max>10</max><after>09af3-cc343-b409f</after><index>7</index>");
  REQUIRE(r.has_value());
  CHECK(r->max == 10u);
  CHECK(r->after == "09af3-cc343-b409f");
  CHECK(r->index == 7u);
  CHECK_FALSE(r->before.has_value());

  auto last_page = rsm_of("<max>0</max><before/>");
  REQUIRE(last_page.has_value());
  CHECK(last_page->max == 0u);
  REQUIRE(last_page->before.has_value());
  CHECK(last_page->before->empty());

  auto before = rsm_of("<before>1234</before>");
  REQUIRE(before.has_value());
  CHECK(before->before == "1234");

  auto spaced = rsm_of("<max>\n  50\n</max><index> 0 </index>");
  REQUIRE(spaced.has_value());
  CHECK(spaced->max == 50u);
  CHECK(spaced->index == 0u);

  auto big = rsm_of("<max>4294967295</max><index>007</index>");
  REQUIRE(big.has_value());
  CHECK(big->max == 4294967295u);
  CHECK(big->index == 7u);

  // Ids are opaque: kept verbatim, whitespace included.
  auto opaque = rsm_of("<after> a b </after>");
  REQUIRE(opaque.has_value());
  CHECK(opaque->after == " a b ");

  // Result-side elements and foreign children are ignored.
  auto extra = rsm_of("<count>5</count><first>x</first><max xmlns='urn:other'>no</max><max>3</max>");
  REQUIRE(extra.has_value());
  CHECK(extra->max == 3u);
}

TEST_CASE("bad numbers") {
  for (const char* v : {"", " ", "-1", "+1", "1.5", "1e3", "abc", "12a", "0x10", "4294967296",
                        "99999999999999999999", "１"}) {
    CHECK_MESSAGE(fails_with(rsm_of(std::string("<max>") + v + "</max>"), Errc::bad_request), v);
    CHECK_MESSAGE(fails_with(rsm_of(std::string("<index>") + v + "</index>"), Errc::bad_request), v);
  }
  CHECK(fails_with(rsm_of("<max>1<x/>2</max>"), Errc::bad_element));  // not the number 12
  CHECK(fails_with(rsm_of("<after>a<b/></after>"), Errc::bad_element));
}

TEST_CASE("bad ids and layout") {
  CHECK(fails_with(rsm_of("<after/>"), Errc::bad_request));
  CHECK(rsm_of("<after>" + std::string(kMaxRsmIdBytes, 'a') + "</after>").has_value());
  CHECK(fails_with(rsm_of("<after>" + std::string(kMaxRsmIdBytes + 1, 'a') + "</after>"), Errc::bad_request));
  CHECK(fails_with(rsm_of("<before>" + std::string(kMaxRsmIdBytes + 1, 'a') + "</before>"), Errc::bad_request));
  CHECK(fails_with(rsm_of("<max>1</max><max>2</max>"), Errc::bad_element));
  CHECK(fails_with(rsm_of("<after>a</after><after>b</after>"), Errc::bad_element));
  CHECK(fails_with(rsm_of("<before/><before/>"), Errc::bad_element));
  CHECK(fails_with(rsm_of("<index>1</index><index>1</index>"), Errc::bad_element));
  auto wrong_ns = xml::parse_element("<set xmlns='urn:other'><max>1</max></set>");
  REQUIRE(wrong_ns.has_value());
  CHECK(fails_with(parse_rsm(*wrong_ns), Errc::bad_element));
  auto wrong_name = xml::parse_element("<sets xmlns='http://jabber.org/protocol/rsm'/>");
  REQUIRE(wrong_name.has_value());
  CHECK(fails_with(parse_rsm(*wrong_name), Errc::bad_element));
}

TEST_CASE("result") {
  CHECK(xml::serialize(rsm_result_to_xml({})) == "<set xmlns='http://jabber.org/protocol/rsm'/>");
  CHECK(xml::serialize(rsm_result_to_xml({std::nullopt, std::nullopt, std::nullopt, 0u})) ==
        "<set xmlns='http://jabber.org/protocol/rsm'><count>0</count></set>");
  CHECK(xml::serialize(rsm_result_to_xml({"28482", "09af3", 0u, 20u})) ==
        "<set xmlns='http://jabber.org/protocol/rsm'><first index='0'>28482</first><last>09af3</last>"
        "<count>20</count></set>");
  // An index without a first id is not written.
  CHECK(xml::serialize(rsm_result_to_xml({std::nullopt, "9", 3u, std::nullopt})) ==
        "<set xmlns='http://jabber.org/protocol/rsm'><last>9</last></set>");
}
