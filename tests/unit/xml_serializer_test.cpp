#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

#include "protocol/xml/serializer.hpp"
#include "protocol/xml/splice.hpp"
#include "protocol/xml/stream_parser.hpp"

using multiend::xml::Element;
using multiend::xml::parse_element;
using multiend::xml::serialize;
using multiend::xml::serialize_to;

namespace {

Element parse(std::string_view s) {
  auto r = parse_element(s);
  REQUIRE_MESSAGE(r.has_value(), s);
  return *r;
}

// parse -> serialize -> parse must give the same tree, and serializing again the same text.
void check_round_trip(std::string_view xml) {
  const Element first = parse(xml);
  const std::string text = serialize(first);
  const Element second = parse(text);
  CHECK(first == second);
  CHECK(serialize(second) == text);
}

}  // namespace

TEST_CASE("basic forms") {
  CHECK(serialize(Element("x")) == "<x/>");
  CHECK(serialize(Element("x", "urn:a")) == "<x xmlns='urn:a'/>");
  Element e("message", "jabber:client");
  e.set_attr("to", "a@b").set_attr("type", "chat");
  e.add_child(Element("body", "jabber:client")).add_text("hi");
  CHECK(serialize(e) ==
        "<message xmlns='jabber:client' to='a@b' type='chat'><body>hi</body></message>");
}

TEST_CASE("namespace declarations only where they change") {
  Element iq("iq", "jabber:client");
  Element& q = iq.add_child(Element("query", "jabber:iq:roster"));
  q.add_child(Element("item", "jabber:iq:roster"));
  iq.add_child(Element("plain"));  // no namespace under a namespaced parent: undeclare
  CHECK(serialize(iq) ==
        "<iq xmlns='jabber:client'><query xmlns='jabber:iq:roster'><item/></query>"
        "<plain xmlns=''/></iq>");

  std::string out = "<stream:stream xmlns='jabber:client'>";
  serialize_to(iq, out, "jabber:client");
  CHECK(out ==
        "<stream:stream xmlns='jabber:client'><iq><query xmlns='jabber:iq:roster'><item/>"
        "</query><plain xmlns=''/></iq>");

  std::string comp;
  serialize_to(Element("message", "jabber:client"), comp, "jabber:component:accept");
  CHECK(comp == "<message xmlns='jabber:client'/>");
}

TEST_CASE("escaping") {
  Element e("x");
  e.set_attr("a", "<&>\"'");
  e.add_text("<&>\"' ]]>");
  CHECK(serialize(e) == "<x a='&lt;&amp;&gt;&quot;&apos;'>&lt;&amp;&gt;\"' ]]&gt;</x>");

  Element ws("x");
  ws.set_attr("a", "t\tn\nr\r");
  ws.add_text("t\tn\nr\r");
  CHECK(serialize(ws) == "<x a='t&#9;n&#10;r&#13;'>t\tn\nr&#13;</x>");
  // whitespace survives attribute-value normalization and CR normalization
  const Element back = parse(serialize(ws));
  CHECK(*back.attr("a") == "t\tn\nr\r");
  CHECK(back.text() == "t\tn\nr\r");
}

TEST_CASE("characters XML cannot carry are replaced, output stays well-formed") {
  Element e("x");
  std::string bad("a\x01" "b\x00" "c", 5);
  bad += "\xff";            // invalid UTF-8
  bad += "\xEF\xBF\xBE";    // U+FFFE
  bad += "\xED\xA0\x80";    // surrogate
  bad += "\xC3\xA9";        // é, valid
  bad += "\xF0\x9F\x98\x80";  // emoji, valid
  bad += "\xE2\x82";        // truncated
  e.set_attr("v", bad);
  e.add_text(bad);
  const std::string s = serialize(e);
  const std::string fffd = "\xEF\xBF\xBD";
  const std::string expect_text = "a" + fffd + "b" + fffd + "c" + fffd + fffd + fffd + fffd +
                                  fffd + fffd + fffd + "\xC3\xA9\xF0\x9F\x98\x80" + fffd + fffd;
  const Element back = parse(s);
  CHECK(back.text() == expect_text);
  CHECK(*back.attr("v") == expect_text);
}

TEST_CASE("namespaced attributes get a generated prefix") {
  Element e("x", "urn:a");
  e.set_attr("{urn:p}one", "1").set_attr("{urn:q}two", "2").set_attr("{urn:p}three", "3");
  e.set_attr("xml:lang", "en");
  const std::string s = serialize(e);
  CHECK(s ==
        "<x xmlns='urn:a' xmlns:ns0='urn:p' ns0:one='1' xmlns:ns1='urn:q' ns1:two='2' "
        "ns0:three='3' xml:lang='en'/>");
  const Element back = parse(s);
  CHECK(back == e);
}

TEST_CASE("round trips") {
  check_round_trip("<a/>");
  check_round_trip("<a xmlns='urn:x' b='1'><c>text</c><d xmlns='urn:y'><e/></d>tail</a>");
  check_round_trip(
      "<bundle xmlns='urn:xmpp:omemo:2'><spk id='1'>AAAA</spk><spks>BBBB</spks><ik>CCCC</ik>"
      "<prekeys><pk id='1'>DDDD</pk><pk id='2'>EEEE</pk></prekeys></bundle>");
  check_round_trip("<p:a xmlns:p='urn:p' xmlns='urn:d'><b p:attr='&lt;&amp;' xml:lang='fr'/></p:a>");
  check_round_trip("<a><![CDATA[<not markup> & ]]]]></a>");
  check_round_trip("<a x='&#9;&#10;&#13;&quot;&apos;'>&#13;&#10;caf\xC3\xA9 &#x1F600;</a>");
  check_round_trip("<a xmlns='urn:x'><b xmlns=''><c xmlns='urn:x'/></b></a>");
  // elements in the XML namespace keep the xml prefix; the default namespace passes through
  check_round_trip("<a xmlns='urn:x'><xml:b><c/></xml:b></a>");
  CHECK(serialize(parse("<a xmlns='urn:x'><xml:b><c/></xml:b></a>")) ==
        "<a xmlns='urn:x'><xml:b><c/></xml:b></a>");
}

TEST_CASE("a stored element spliced into a wrapper reads back as the tree would have") {
  using multiend::xml::Element;
  Element inner("message", "jabber:client");
  inner.set_attr("from", "a@b/c");
  inner.add_child(Element("body")).add_text("x < y & 'z'");
  const std::string stored = multiend::xml::serialize(inner);

  Element wrapper("message", "jabber:component:accept");
  wrapper.set_attr("to", "<splice xmlns='urn:multiend:splice-point'/>");  // escaped: not the point
  Element& fwd = wrapper.add_child(Element("forwarded", "urn:xmpp:forward:0"));
  fwd.add_child(multiend::xml::splice_point());

  std::string spliced;
  multiend::xml::serialize_spliced(wrapper, stored, spliced, "jabber:component:accept");

  Element expected("message", "jabber:component:accept");
  expected.set_attr("to", "<splice xmlns='urn:multiend:splice-point'/>");
  expected.add_child(Element("forwarded", "urn:xmpp:forward:0")).add_child(inner);
  std::string direct;
  multiend::xml::serialize_to(expected, direct, "jabber:component:accept");
  CHECK(spliced == direct);

  std::string none;
  CHECK_THROWS_AS(multiend::xml::serialize_spliced(Element("x"), stored, none, ""), std::invalid_argument);
}

// The archive stores a component stanza as the client stanza it is: serialize_renamed must
// write exactly what copying the tree with the namespace renamed and serialising would.
static Element renamed_copy(const Element& e, std::string_view from, std::string_view to) {
  Element out(e.name(), e.ns() == from ? std::string(to) : e.ns());
  for (const auto& [name, value] : e.attrs()) out.set_attr(name, value);
  for (const Element::Node& n : e.nodes()) {
    if (n.is_element())
      out.add_child(renamed_copy(*n.element(), from, to));
    else
      out.add_text(n.text());
  }
  return out;
}

TEST_CASE("serialize_renamed writes the renamed tree without copying it") {
  const char* from = "jabber:component:accept";
  const char* to = "jabber:client";
  for (const char* xml : {
           "<message xmlns='jabber:component:accept' from='a@b/c' to='x' id='1'><body>hi &amp; &lt;you&gt;</body></message>",
           "<message xmlns='jabber:component:accept' type='chat'><encrypted xmlns='urn:xmpp:omemo:2'><header sid='5'>"
           "<keys jid='b@x'><key rid='7' kex='true'>AAAA</key></keys></header><payload>QUJD</payload></encrypted>"
           "<origin-id xmlns='urn:xmpp:sid:0' id='o'/><x xmlns='jabber:component:accept'><y/></x></message>",
           "<message xmlns='jabber:component:accept' xml:lang='en'><body xml:lang='de'>x</body>"
           "<thing xmlns='other' xmlns:p='urn:p' p:attr='v'><inner xmlns='jabber:component:accept'/></thing></message>",
           "<iq xmlns='other'/>"}) {
    const Element e = parse(xml);
    CHECK(multiend::xml::serialize_renamed(e, from, to) == serialize(renamed_copy(e, from, to)));
  }
}
