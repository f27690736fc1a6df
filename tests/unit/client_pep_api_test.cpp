// PEP requests and answers (client/pep/pep_api): what counts as "no devices here", what is
// reported, and the publish with its access model.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "client/pep/pep_api.hpp"
#include "client/pep/server_mam.hpp"
#include "protocol/xml/serializer.hpp"
#include "protocol/xml/stream_parser.hpp"

using namespace multiend;
using namespace multiend::client;

namespace {
xml::Element el(const std::string& s) {
  auto e = xml::parse_element(s);
  REQUIRE(e.has_value());
  return *e;
}
std::string error_reply(const std::string& type, const std::string& cond, const std::string& extra = "") {
  return "<iq xmlns='jabber:client' type='error' id='1'><error type='" + type + "'><" + cond +
         " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>" + extra + "</error></iq>";
}
}  // namespace

TEST_CASE("a device list: found, absent (either server's way) or refused") {
  auto found = pep::legacy_device_list(el(
      "<iq xmlns='jabber:client' type='result' id='1'><pubsub xmlns='http://jabber.org/protocol/pubsub'>"
      "<items node='eu.siacs.conversations.axolotl.devicelist'><item id='current'>"
      "<list xmlns='eu.siacs.conversations.axolotl'><device id='1'/><device id='22'/></list></item></items></pubsub></iq>"));
  CHECK_FALSE(found.refused);
  CHECK(found.ids == std::vector<std::uint32_t>{1, 22});
  for (const char* cond : {"item-not-found", "forbidden"}) {
    auto none = pep::legacy_device_list(el(error_reply(cond == std::string("forbidden") ? "auth" : "cancel", cond)));
    CHECK(none.ids.empty());
    CHECK_FALSE(none.refused);
    CHECK(none.unreadable == (cond == std::string("forbidden")));
  }
  auto refused = pep::legacy_device_list(el(error_reply("cancel", "service-unavailable")));
  REQUIRE(refused.refused);
  CHECK(refused.refused->find("service-unavailable") != std::string::npos);
  auto empty = pep::legacy_device_list(el("<iq xmlns='jabber:client' type='result' id='1'><pubsub "
                                          "xmlns='http://jabber.org/protocol/pubsub'><items node='x'/></pubsub></iq>"));
  CHECK(empty.ids.empty());
  CHECK_FALSE(empty.refused);
  auto wrong = pep::legacy_device_list(el(
      "<iq xmlns='jabber:client' type='result' id='1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='x'>"
      "<item id='current'><list xmlns='urn:xmpp:omemo:2'/></item></items></pubsub></iq>"));
  CHECK(wrong.refused);
}

TEST_CASE("publish with an open access model; precondition-not-met is recognised") {
  auto iq = pep::publish_open("eu.siacs.conversations.axolotl.bundles:5", "current", xml::Element("bundle", "eu.siacs.conversations.axolotl"));
  const std::string s = xml::serialize(iq);
  CHECK(s.find("publish-options") != std::string::npos);
  CHECK(s.find("pubsub#access_model") != std::string::npos);
  CHECK(s.find(">open<") != std::string::npos);
  CHECK_FALSE(iq.attr("to"));  // our own account's PEP
  CHECK(pep::precondition_not_met(el(error_reply(
      "modify", "conflict", "<precondition-not-met xmlns='http://jabber.org/protocol/pubsub#errors'/>"))));
  CHECK_FALSE(pep::precondition_not_met(el(error_reply("modify", "conflict"))));
  CHECK(pep::legacy_bundle_node(77) == "eu.siacs.conversations.axolotl.bundles:77");
  auto cfg = xml::serialize(pep::configure_open("n"));
  CHECK(cfg.find("pubsub#owner") != std::string::npos);
  CHECK(cfg.find("node_config") != std::string::npos);
}

TEST_CASE("server MAM results are believed from our own account, for our query, only") {
  const std::string own = "alice@example.org";
  auto result = [](const std::string& from_attr, const std::string& qid) {
    return "<message xmlns='jabber:client'" + from_attr + " to='alice@example.org/cli'><result xmlns='urn:xmpp:mam:2' "
           "queryid='" + qid + "' id='abc'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' "
           "stamp='2026-12-05T07:00:00Z'/><message xmlns='jabber:client' from='bob@example.org/x' "
           "to='alice@example.org' type='chat' id='m1'><body>hi</body></message></forwarded></result></message>";
  };
  auto ok = pep::parse_server_result(el(result("", "q1")), own, "q1");
  REQUIRE(ok);
  CHECK(ok->id == "abc");
  CHECK(ok->stamp_us > 0);
  CHECK(pep::parse_server_result(el(result(" from='alice@example.org'", "q1")), own, "q1"));
  // a contact, our own resource (a client can send that), another query: not the archive
  CHECK_FALSE(pep::parse_server_result(el(result(" from='mallory@example.org'", "q1")), own, "q1"));
  CHECK_FALSE(pep::parse_server_result(el(result(" from='alice@example.org/phone'", "q1")), own, "q1"));
  CHECK_FALSE(pep::parse_server_result(el(result("", "q2")), own, "q1"));
  auto fin = pep::parse_server_fin(el("<iq xmlns='jabber:client' type='result' id='1'><fin xmlns='urn:xmpp:mam:2' "
                                      "complete='true'><set xmlns='http://jabber.org/protocol/rsm'><last>abc</last>"
                                      "</set></fin></iq>"));
  REQUIRE(fin.has_value());
  CHECK(fin->complete);
  CHECK(fin->last == "abc");
}
