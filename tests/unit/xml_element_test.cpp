#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

#include "protocol/xml/element.hpp"

using multiend::xml::Element;

TEST_CASE("name, namespace and attributes") {
  Element e("message", "jabber:client");
  CHECK(e.name() == "message");
  CHECK(e.ns() == "jabber:client");
  CHECK_FALSE(e.attr("to").has_value());

  e.set_attr("to", "a@b").set_attr("type", "chat");
  REQUIRE(e.attr("to").has_value());
  CHECK(*e.attr("to") == "a@b");
  e.set_attr("to", "c@d");  // replaces, keeps position
  REQUIRE(e.attrs().size() == 2);
  CHECK(e.attrs()[0].first == "to");
  CHECK(e.attrs()[0].second == "c@d");

  e.set_attr("xml:lang", "en");
  CHECK(*e.attr("xml:lang") == "en");
  // The XML namespace in {uri} form is stored as xml:
  e.set_attr("{http://www.w3.org/XML/1998/namespace}lang", "de");
  CHECK(*e.attr("xml:lang") == "de");
  e.set_attr("{urn:x}flag", "1");
  CHECK(*e.attr("{urn:x}flag") == "1");
}

TEST_CASE("invalid names are programmer errors") {
  CHECK_THROWS_AS(Element(""), std::invalid_argument);
  CHECK_THROWS_AS(Element("a b"), std::invalid_argument);
  CHECK_THROWS_AS(Element("a:b"), std::invalid_argument);
  CHECK_THROWS_AS(Element("1abc"), std::invalid_argument);
  CHECK_THROWS_AS(Element("a<"), std::invalid_argument);
  CHECK_THROWS_AS(Element("\xff"), std::invalid_argument);
  CHECK_NOTHROW(Element("caf\xC3\xA9-1.x_y"));
  Element e("x");
  CHECK_THROWS_AS(e.set_attr("xmlns", "urn:y"), std::invalid_argument);
  CHECK_THROWS_AS(e.set_attr("a'b", "v"), std::invalid_argument);
  CHECK_THROWS_AS(e.set_attr("{}a", "v"), std::invalid_argument);
  CHECK_THROWS_AS(e.set_attr("{urn:x}", "v"), std::invalid_argument);
  CHECK_THROWS_AS(e.set_attr("{http://www.w3.org/2000/xmlns/}p", "v"), std::invalid_argument);
  CHECK_THROWS_AS(e.set_attr("p:q", "v"), std::invalid_argument);
}

TEST_CASE("children and namespace defaults") {
  Element iq("iq", "jabber:client");
  Element& q = iq.add_child(Element("query", "jabber:iq:roster"));
  q.add_child(Element("item", "jabber:iq:roster")).set_attr("jid", "a@b");
  q.add_child(Element("item", "jabber:iq:roster")).set_attr("jid", "c@d");
  iq.add_child(Element("error", "jabber:client"));

  CHECK(iq.child("query") == nullptr);  // default ns is the parent's: jabber:client
  REQUIRE(iq.child("query", "jabber:iq:roster") != nullptr);
  CHECK(iq.child("error") != nullptr);
  const Element& cq = *iq.child("query", "jabber:iq:roster");
  auto items = cq.children("item");
  REQUIRE(items.size() == 2);
  CHECK(*items[1]->attr("jid") == "c@d");
  CHECK(cq.children("item", "urn:other").empty());
  CHECK(iq.element_children().size() == 2);

  // non-const child() allows editing in place
  iq.child("query", "jabber:iq:roster")->set_attr("ver", "1");
  CHECK(*iq.child("query", "jabber:iq:roster")->attr("ver") == "1");
}

TEST_CASE("add_child returns a stable reference") {
  Element root("r");
  Element& first = root.add_child(Element("a"));
  for (int i = 0; i < 100; ++i) root.add_child(Element("b"));
  first.add_text("still here");
  CHECK(root.child("a")->text() == "still here");
}

TEST_CASE("mixed content is kept in order and text merges") {
  Element body("p");
  body.add_text("Hello ").add_text("");
  body.add_child(Element("b")).add_text("bold");
  body.add_text(" world").add_text("!");
  REQUIRE(body.nodes().size() == 3);
  CHECK_FALSE(body.nodes()[0].is_element());
  CHECK(body.nodes()[0].text() == "Hello ");
  CHECK(body.nodes()[1].is_element());
  CHECK(body.nodes()[1].element()->name() == "b");
  CHECK(body.nodes()[2].text() == " world!");
  CHECK(body.text() == "Hello  world!");
}

TEST_CASE("copy is deep, move works, equality is structural") {
  Element a("a", "urn:x");
  a.set_attr("k", "v");
  a.add_child(Element("b", "urn:x")).add_text("t");
  Element copy = a;
  CHECK(copy == a);
  copy.child("b")->add_text("2");
  CHECK(a.child("b")->text() == "t");
  CHECK_FALSE(copy == a);

  Element moved = std::move(copy);
  CHECK(moved.child("b")->text() == "t2");

  Element assigned("z");
  assigned = a;
  CHECK(assigned == a);
  assigned = moved;
  CHECK(assigned.child("b")->text() == "t2");

  Element other_ns("a", "urn:y");
  other_ns.set_attr("k", "v");
  other_ns.add_child(Element("b", "urn:x")).add_text("t");
  CHECK_FALSE(other_ns == a);
}

TEST_CASE("memory_bytes grows with what the tree holds") {
  multiend::xml::Element small("a");
  multiend::xml::Element big("a");
  for (int i = 0; i < 100; ++i) big.add_child(multiend::xml::Element("child-with-a-long-name-" + std::to_string(i)));
  CHECK(small.memory_bytes() >= sizeof(multiend::xml::Element));
  CHECK(big.memory_bytes() > 100 * sizeof(multiend::xml::Element));
  multiend::xml::Element text("t");
  text.add_text(std::string(10000, 'x'));
  CHECK(text.memory_bytes() > 10000);
}
