// XEP-0030: the queries a client sends, and parsing untrusted results (bad shapes, bounds).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>

#include "protocol/xml/serializer.hpp"
#include "protocol/xml/stream_parser.hpp"
#include "protocol/xmpp/disco.hpp"

using namespace multiend;
using namespace multiend::xmpp;

namespace {

xml::Element parse(const std::string& x) {
  auto e = xml::parse_element(x);
  REQUIRE_MESSAGE(e.has_value(), x);
  return std::move(*e);
}

std::string items_result(const std::string& body) {
  return "<iq xmlns='jabber:client' type='result' id='1'><query xmlns='http://jabber.org/protocol/disco#items'>" + body +
         "</query></iq>";
}

std::string info_result(const std::string& body) {
  return "<iq xmlns='jabber:client' type='result' id='1'><query xmlns='http://jabber.org/protocol/disco#info'>" + body +
         "</query></iq>";
}

}  // namespace

TEST_CASE("queries") {
  CHECK(xml::serialize(disco_items_query("example.org")) ==
        "<iq type='get' to='example.org'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
  CHECK(xml::serialize(disco_info_query("archive.example.org")) ==
        "<iq type='get' to='archive.example.org'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
}

TEST_CASE("items: jids kept, bad ones skipped") {
  auto r = parse_disco_items(parse(items_result(
      "<item jid='archive.example.org' name='x'/><item jid='@@bad'/><item/><other jid='a.example.org'/>"
      "<item jid='upload.example.org' node='n'/>")));
  REQUIRE(r.has_value());
  REQUIRE(r->size() == 2);
  CHECK((*r)[0] == "archive.example.org");
  CHECK((*r)[1] == "upload.example.org");
}

TEST_CASE("items: an empty list, errors and wrong shapes") {
  auto empty = parse_disco_items(parse(items_result("")));
  REQUIRE(empty.has_value());
  CHECK(empty->empty());
  auto err = parse_disco_items(parse(
      "<iq xmlns='jabber:client' type='error' id='1'><error type='cancel'><item-not-found "
      "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"));
  CHECK(err.error() == Errc::bad_element);
  auto info_instead = parse_disco_items(parse(info_result("<feature var='x'/>")));
  CHECK(info_instead.error() == Errc::bad_element);
}

TEST_CASE("items: bounded") {
  std::string body;
  for (std::size_t i = 0; i <= kMaxDiscoItems; ++i) body += "<item jid='c" + std::to_string(i) + ".example.org'/>";
  CHECK(parse_disco_items(parse(items_result(body))).error() == Errc::limit_exceeded);
}

TEST_CASE("info: features") {
  auto r = parse_disco_features(parse(info_result(
      "<identity category='component' type='archive'/><feature var='urn:multiend:archive:0'/><feature var=''/>"
      "<feature/><feature var='urn:xmpp:mam:2'/>")));
  REQUIRE(r.has_value());
  CHECK(r->size() == 2);
  CHECK(r->count("urn:multiend:archive:0") == 1);
  std::string body;
  for (std::size_t i = 0; i <= kMaxDiscoFeatures; ++i) body += "<feature var='f" + std::to_string(i) + "'/>";
  CHECK(parse_disco_features(parse(info_result(body))).error() == Errc::limit_exceeded);
}
