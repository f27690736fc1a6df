// XEP-0060 subset: typed publish/retract/items/subscribe/unsubscribe requests, every rejected
// layout and value, and the result and event builders.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>

#include "protocol/xml/serializer.hpp"
#include "protocol/xml/stream_parser.hpp"
#include "protocol/xmpp/namespaces.hpp"
#include "protocol/xmpp/pubsub_request.hpp"

using namespace multiend;
using namespace multiend::xmpp;

namespace {

Result<PubsubRequest> ps(std::string_view body, bool is_set = true) {
  const std::string x = "<pubsub xmlns='http://jabber.org/protocol/pubsub'>" + std::string(body) + "</pubsub>";
  auto e = xml::parse_element(x);
  REQUIRE_MESSAGE(e.has_value(), x);
  return parse_pubsub(*e, is_set);
}

bool fails_with(const Result<PubsubRequest>& r, Errc e) { return !r.has_value() && r.error() == e; }

const std::string kBundle = "<bundle xmlns='urn:xmpp:omemo:2'><ik>AAA=</ik></bundle>";

std::string publish_options(const std::string& fields, const std::string& form_type =
                                                           "http://jabber.org/protocol/pubsub#publish-options") {
  return "<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>" +
         form_type + "</value></field>" + fields + "</x></publish-options>";
}

std::string items_with(std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += "<item id='" + std::to_string(i + 1) + "'/>";
  return out;
}

}  // namespace

TEST_CASE("publish a bundle with publish-options") {
  auto r = ps("<publish node='urn:xmpp:omemo:2:bundles'><item id='31415'>" + kBundle + "</item></publish>" +
              publish_options("<field var='pubsub#max_items'><value>max</value></field>"
                              "<field var='pubsub#access_model'><value>open</value></field>"
                              "<field var='pubsub#roster_groups_allowed'><value>a</value><value>b</value></field>"
                              "<field var='pubsub#persist_items'/>"));
  REQUIRE(r.has_value());
  auto* p = std::get_if<PublishRequest>(&*r);
  REQUIRE(p != nullptr);
  CHECK(p->node == "urn:xmpp:omemo:2:bundles");
  CHECK(p->item_id == "31415");
  CHECK(xml::serialize(p->payload) == kBundle);
  using Opts = std::vector<std::pair<std::string, std::string>>;
  CHECK(p->options == Opts{{"pubsub#max_items", "max"},
                           {"pubsub#access_model", "open"},
                           {"pubsub#roster_groups_allowed", "a"},
                           {"pubsub#roster_groups_allowed", "b"},
                           {"pubsub#persist_items", ""}});
}

TEST_CASE("publish without id or options; options before publish") {
  auto r = ps("<publish node='n'><item><x xmlns='urn:x'/></item></publish>");
  REQUIRE(r.has_value());
  auto& p = std::get<PublishRequest>(*r);
  CHECK_FALSE(p.item_id.has_value());
  CHECK(p.options.empty());
  CHECK(p.payload.name() == "x");

  auto before = ps(publish_options("") + "<publish node='n'><item id='current'>" + kBundle + "</item></publish>");
  REQUIRE(before.has_value());
  CHECK(std::get<PublishRequest>(*before).options.empty());
  // An empty <publish-options/> is no options.
  CHECK(ps("<publish node='n'><item>" + kBundle + "</item></publish><publish-options/>").has_value());
}

TEST_CASE("publish: bad layouts and values") {
  const std::string item = "<item id='1'>" + kBundle + "</item>";
  CHECK(fails_with(ps("<publish>" + item + "</publish>"), Errc::bad_element));           // no node
  CHECK(fails_with(ps("<publish node=''>" + item + "</publish>"), Errc::bad_request));  // empty node
  CHECK(fails_with(ps("<publish node='" + std::string(kMaxNodeBytes + 1, 'n') + "'>" + item + "</publish>"),
                   Errc::bad_request));
  CHECK(ps("<publish node='" + std::string(kMaxNodeBytes, 'n') + "'>" + item + "</publish>").has_value());
  CHECK(fails_with(ps("<publish node='n'/>"), Errc::bad_element));                        // no item
  CHECK(fails_with(ps("<publish node='n'>" + item + item + "</publish>"), Errc::bad_element));
  CHECK(fails_with(ps("<publish node='n'><item id='1'/></publish>"), Errc::bad_element));  // no payload
  CHECK(fails_with(ps("<publish node='n'><item id='1'>text only</item></publish>"), Errc::bad_element));
  CHECK(fails_with(ps("<publish node='n'><item id='1'>" + kBundle + kBundle + "</item></publish>"),
                   Errc::bad_element));
  CHECK(fails_with(ps("<publish node='n'><item id=''>" + kBundle + "</item></publish>"), Errc::bad_request));
  CHECK(fails_with(ps("<publish node='n'><item id='" + std::string(kMaxItemIdBytes + 1, '1') + "'>" + kBundle +
                      "</item></publish>"),
                   Errc::bad_request));
  CHECK(fails_with(ps("<publish node='n'>" + item + "</publish>", false), Errc::bad_request));  // iq get
  // publish-options: wrong form type, not a submission, missing FORM_TYPE, twice, two forms, alone.
  const std::string pub = "<publish node='n'>" + item + "</publish>";
  CHECK(fails_with(ps(pub + publish_options("", "urn:other")), Errc::bad_request));
  CHECK(fails_with(ps(pub + "<publish-options><x xmlns='jabber:x:data' type='form'><field var='FORM_TYPE'><value>"
                            "http://jabber.org/protocol/pubsub#publish-options</value></field></x></publish-options>"),
                   Errc::bad_request));
  CHECK(fails_with(ps(pub + "<publish-options><x xmlns='jabber:x:data' type='submit'><field "
                            "var='pubsub#access_model'><value>open</value></field></x></publish-options>"),
                   Errc::bad_request));
  CHECK(fails_with(ps(pub + publish_options("") + publish_options("")), Errc::bad_element));
  CHECK(fails_with(ps(pub + "<publish-options><x xmlns='jabber:x:data' type='submit'/><x xmlns='jabber:x:data' "
                            "type='submit'/></publish-options>"),
                   Errc::bad_element));
  CHECK(fails_with(ps(pub + "<publish-options><x xmlns='jabber:x:data'/></publish-options>"), Errc::bad_element));
  CHECK(fails_with(ps(publish_options("")), Errc::bad_element));
  CHECK(fails_with(ps("<items node='n'/>" + publish_options(""), false), Errc::bad_element));
}

TEST_CASE("retract") {
  auto r = ps("<retract node='urn:xmpp:omemo:2:bundles' notify='true'><item id='4242'/><item id='7'/></retract>");
  REQUIRE(r.has_value());
  auto& rr = std::get<RetractRequest>(*r);
  CHECK(rr.node == "urn:xmpp:omemo:2:bundles");
  CHECK(rr.item_ids == std::vector<std::string>{"4242", "7"});
  CHECK(rr.notify);
  CHECK(std::get<RetractRequest>(*ps("<retract node='n' notify='1'><item id='1'/></retract>")).notify);
  CHECK_FALSE(std::get<RetractRequest>(*ps("<retract node='n' notify='false'><item id='1'/></retract>")).notify);
  CHECK_FALSE(std::get<RetractRequest>(*ps("<retract node='n' notify='0'><item id='1'/></retract>")).notify);
  CHECK_FALSE(std::get<RetractRequest>(*ps("<retract node='n'><item id='1'/></retract>")).notify);

  CHECK(fails_with(ps("<retract node='n' notify='yes'><item id='1'/></retract>"), Errc::bad_request));
  CHECK(fails_with(ps("<retract node='n'/>"), Errc::bad_element));
  CHECK(fails_with(ps("<retract node='n'><item/></retract>"), Errc::bad_element));
  CHECK(fails_with(ps("<retract><item id='1'/></retract>"), Errc::bad_element));
  CHECK(fails_with(ps("<retract node='n'><item id=''/></retract>"), Errc::bad_request));
  CHECK(fails_with(ps("<retract node='n'><item id='1'/></retract>", false), Errc::bad_request));
  CHECK(ps("<retract node='n'>" + items_with(kMaxPubsubItemIds) + "</retract>").has_value());
  CHECK(fails_with(ps("<retract node='n'>" + items_with(kMaxPubsubItemIds + 1) + "</retract>"),
                   Errc::limit_exceeded));
}

TEST_CASE("items") {
  auto all = ps("<items node='urn:xmpp:omemo:2:devices'/>", false);
  REQUIRE(all.has_value());
  auto& a = std::get<ItemsRequest>(*all);
  CHECK(a.node == "urn:xmpp:omemo:2:devices");
  CHECK(a.item_ids.empty());
  CHECK_FALSE(a.max_items.has_value());

  auto one = ps("<items node='urn:xmpp:omemo:2:bundles' max_items='1' subid='x'><item id='31415'/></items>", false);
  REQUIRE(one.has_value());
  auto& o = std::get<ItemsRequest>(*one);
  CHECK(o.item_ids == std::vector<std::string>{"31415"});
  CHECK(o.max_items == 1u);

  for (const char* m : {"", "-1", "+1", "x", "1.0", " 1", "4294967296"})
    CHECK_MESSAGE(fails_with(ps(std::string("<items node='n' max_items='") + m + "'/>", false), Errc::bad_request), m);
  CHECK(fails_with(ps("<items node='n'/>", true), Errc::bad_request));  // iq set
  CHECK(fails_with(ps("<items/>", false), Errc::bad_element));
  CHECK(fails_with(ps("<items node='n'><item/></items>", false), Errc::bad_element));
  CHECK(ps("<items node='n'>" + items_with(kMaxPubsubItemIds) + "</items>", false).has_value());
  CHECK(fails_with(ps("<items node='n'>" + items_with(kMaxPubsubItemIds + 1) + "</items>", false),
                   Errc::limit_exceeded));
}

TEST_CASE("subscribe and unsubscribe") {
  auto s = ps("<subscribe node='urn:xmpp:omemo:2:devices' jid='Bob@Example.ORG/Phone'/>");
  REQUIRE(s.has_value());
  auto& sr = std::get<SubscribeRequest>(*s);
  CHECK(sr.node == "urn:xmpp:omemo:2:devices");
  CHECK(sr.jid == "bob@example.org/Phone");  // normalised

  auto u = ps("<unsubscribe node='n' jid='bob@example.org' subid='ignored'/>");
  REQUIRE(u.has_value());
  CHECK(std::get<UnsubscribeRequest>(*u).jid == "bob@example.org");

  CHECK(fails_with(ps("<subscribe node='n'/>"), Errc::bad_element));
  CHECK(fails_with(ps("<subscribe jid='a@b'/>"), Errc::bad_element));
  CHECK(fails_with(ps("<subscribe node='n' jid='a@'/>"), Errc::bad_request));
  CHECK(fails_with(ps("<unsubscribe node='n' jid=''/>"), Errc::bad_request));
  CHECK(fails_with(ps("<subscribe node='n' jid='a@b'/>", false), Errc::bad_request));
}

TEST_CASE("action count and unsupported children") {
  CHECK(fails_with(ps(""), Errc::bad_element));
  CHECK(fails_with(ps("<retract node='n'><item id='1'/></retract><retract node='n'><item id='1'/></retract>"),
                   Errc::bad_element));
  CHECK(fails_with(ps("<publish node='n'><item>" + kBundle + "</item></publish><retract node='n'><item id='1'/>"
                      "</retract>"),
                   Errc::bad_element));
  CHECK(fails_with(ps("<items node='a'/><items node='b'/>", false), Errc::bad_element));
  for (const char* other : {"<create node='n'/>", "<configure/>", "<subscriptions/>", "<affiliations/>",
                            "<default/>", "<options node='n' jid='a@b'/>"}) {
    CHECK_MESSAGE(fails_with(ps(other), Errc::unsupported), other);
    CHECK_MESSAGE(fails_with(ps(std::string("<subscribe node='n' jid='a@b'/>") + other), Errc::unsupported), other);
  }
  // Children in other namespaces are ignored.
  CHECK(ps("<foo xmlns='urn:x'/><items node='n'/>", false).has_value());
  // Not the pubsub element: the owner namespace is another protocol.
  auto owner = xml::parse_element("<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><delete node='n'/></pubsub>");
  REQUIRE(owner.has_value());
  CHECK(fails_with(parse_pubsub(*owner, true), Errc::bad_element));
  auto other = xml::parse_element("<query xmlns='http://jabber.org/protocol/pubsub'/>");
  REQUIRE(other.has_value());
  CHECK(fails_with(parse_pubsub(*other, true), Errc::bad_element));
}

TEST_CASE("builders") {
  auto bundle = xml::parse_element(kBundle);
  REQUIRE(bundle.has_value());
  std::vector<std::pair<std::string, xml::Element>> items;
  items.emplace_back("1", *bundle);
  items.emplace_back("2", *bundle);
  CHECK(xml::serialize(make_items_result("urn:xmpp:omemo:2:bundles", std::move(items))) ==
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:omemo:2:bundles'><item id='1'>" +
            kBundle + "</item><item id='2'>" + kBundle + "</item></items></pubsub>");
  CHECK(xml::serialize(make_items_result("n", {})) ==
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'/></pubsub>");
  CHECK(xml::serialize(make_publish_result("urn:xmpp:omemo:2:devices", "current")) ==
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:omemo:2:devices'>"
        "<item id='current'/></publish></pubsub>");
  auto devices = xml::parse_element("<devices xmlns='urn:xmpp:omemo:2'><device id='1'/></devices>");
  REQUIRE(devices.has_value());
  CHECK(xml::serialize(make_event_message("alice@archive.example.org", "bob@example.org", "urn:xmpp:omemo:2:devices",
                                          "current", *devices, kComponentNs)) ==
        "<message xmlns='jabber:component:accept' from='alice@archive.example.org' to='bob@example.org' "
        "type='headline'><event xmlns='http://jabber.org/protocol/pubsub#event'><items "
        "node='urn:xmpp:omemo:2:devices'><item id='current'><devices xmlns='urn:xmpp:omemo:2'><device id='1'/>"
        "</devices></item></items></event></message>");
  // A publish result is not a publish request: its item has no payload.
  auto req = xml::parse_element(xml::serialize(make_publish_result("n", "7")));
  REQUIRE(req.has_value());
  CHECK(fails_with(parse_pubsub(*req, true), Errc::bad_element));
}
