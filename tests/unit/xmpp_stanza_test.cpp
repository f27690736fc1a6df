// Stanza helpers: error replies and IQ results keep the stream namespace and swap addresses,
// received errors parse back, and namespace renaming leaves everything else intact.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "protocol/xml/serializer.hpp"
#include "protocol/xml/stream_parser.hpp"
#include "protocol/xmpp/namespaces.hpp"
#include "protocol/xmpp/stanza.hpp"

using namespace multiend;
using namespace multiend::xmpp;

namespace {

xml::Element parse(std::string_view x) {
  auto e = xml::parse_element(x);
  REQUIRE_MESSAGE(e.has_value(), x);
  return *e;
}

bool fails_with(const Result<StanzaError>& r, Errc e) { return !r.has_value() && r.error() == e; }

}  // namespace

TEST_CASE("error reply to an iq on a component stream") {
  auto iq = parse(
      "<iq xmlns='jabber:component:accept' type='set' id='q1' from='alice@example.org/phone' "
      "to='alice@archive.example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish "
      "node='n'><item id='1'><secret/></item></publish></pubsub></iq>");
  auto reply = make_error_reply(iq, {ErrorType::auth, "forbidden", "not yours"});
  CHECK(xml::serialize(reply) ==
        "<iq xmlns='jabber:component:accept' to='alice@example.org/phone' from='alice@archive.example.org' "
        "id='q1' type='error'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>not yours</text></error></iq>");
  // The request payload is never echoed.
  CHECK(reply.child("pubsub", kPubsubNs) == nullptr);
  CHECK(reply.element_children().size() == 1);
}

TEST_CASE("error reply to a message carries the application condition") {
  auto msg = parse("<message xmlns='jabber:component:accept' type='normal' id='m1' from='a@example.org/p' "
                   "to='archive.example.org'><body>x</body></message>");
  xml::Element missing("missing-devices", std::string(kMultiendNs));
  missing.add_child(xml::Element("device", std::string(kMultiendNs))).set_attr("jid", "bob@example.org").set_attr("id", "4242");
  auto reply = make_error_reply(msg, {ErrorType::modify, "not-acceptable", "", missing});
  CHECK(reply.name() == "message");
  CHECK(reply.ns() == kComponentNs);
  CHECK(reply.attr("type") == "error");
  CHECK(reply.attr("to") == "a@example.org/p");
  CHECK(reply.attr("from") == "archive.example.org");
  CHECK(reply.attr("id") == "m1");
  CHECK(reply.child("body") == nullptr);
  const xml::Element* error = reply.child("error", kComponentNs);
  REQUIRE(error != nullptr);
  CHECK(error->attr("type") == "modify");
  CHECK(error->child("not-acceptable", kStanzaErrorNs) != nullptr);
  CHECK(error->child("text", kStanzaErrorNs) == nullptr);  // empty text is omitted
  const xml::Element* app = error->child("missing-devices", kMultiendNs);
  REQUIRE(app != nullptr);
  CHECK(*app == missing);
}

TEST_CASE("replies without addresses or id stay without them; continue is spelled right") {
  auto presence = parse("<presence xmlns='jabber:client'/>");
  auto reply = make_error_reply(presence, {ErrorType::continue_, "redirect"});
  CHECK(xml::serialize(reply) ==
        "<presence xmlns='jabber:client' type='error'><error type='continue'>"
        "<redirect xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>");
  CHECK(error_type_name(ErrorType::wait) == "wait");
  CHECK(error_type_name(ErrorType::cancel) == "cancel");
}

TEST_CASE("iq result") {
  auto iq = parse("<iq xmlns='jabber:client' type='get' id='d1' from='a@x/r' to='x'><query "
                  "xmlns='http://jabber.org/protocol/disco#info'/></iq>");
  CHECK(xml::serialize(make_iq_result(iq)) == "<iq xmlns='jabber:client' to='a@x/r' from='x' id='d1' type='result'/>");
  auto with = make_iq_result(iq, xml::Element("query", std::string(kDiscoInfoNs)));
  CHECK(xml::serialize(with) ==
        "<iq xmlns='jabber:client' to='a@x/r' from='x' id='d1' type='result'><query "
        "xmlns='http://jabber.org/protocol/disco#info'/></iq>");
}

TEST_CASE("parse a received error, and a reply we built") {
  auto e = parse_stanza_error(parse(
      "<iq xmlns='jabber:client' type='error' id='1'><error type='cancel' code='404'>"
      "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
      "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>gone</text>"
      "<precondition-not-met xmlns='http://jabber.org/protocol/pubsub#errors'/></error></iq>"));
  REQUIRE(e.has_value());
  CHECK(e->type == ErrorType::cancel);
  CHECK(e->condition == "item-not-found");
  CHECK(e->text == "gone");
  REQUIRE(e->app_condition.has_value());
  CHECK(e->app_condition->name() == "precondition-not-met");
  CHECK(e->app_condition->ns() == kPubsubErrorsNs);

  auto req = parse("<message xmlns='jabber:component:accept' from='a@b/c' to='d' id='x'/>");
  xml::Element app("missing-devices", std::string(kMultiendNs));
  auto wire = xml::serialize(make_error_reply(req, {ErrorType::wait, "internal-server-error", "later", app}));
  auto back = parse_stanza_error(parse(wire));
  REQUIRE(back.has_value());
  CHECK(back->type == ErrorType::wait);
  CHECK(back->condition == "internal-server-error");
  CHECK(back->text == "later");
  REQUIRE(back->app_condition.has_value());
  CHECK(*back->app_condition == app);

  auto minimal = parse_stanza_error(parse("<message xmlns='jabber:client' type='error'><error type='auth'>"
                                          "<forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"));
  REQUIRE(minimal.has_value());
  CHECK(minimal->type == ErrorType::auth);
  CHECK(minimal->text.empty());
  CHECK_FALSE(minimal->app_condition.has_value());
}

TEST_CASE("malformed error stanzas") {
  const char* cond = "<bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>";
  auto with = [&](std::string stanza_attrs, std::string error_attrs, std::string body, std::string ns = "jabber:client") {
    return parse_stanza_error(parse("<iq xmlns='" + ns + "' " + stanza_attrs + "><error xmlns='" + ns + "' " +
                                    error_attrs + ">" + body + "</error></iq>"));
  };
  CHECK(with("type='error'", "type='modify'", cond).has_value());
  CHECK(fails_with(with("type='result'", "type='modify'", cond), Errc::bad_element));  // not an error
  CHECK(fails_with(with("", "type='modify'", cond), Errc::bad_element));
  CHECK(fails_with(with("type='error'", "", cond), Errc::bad_element));               // no type
  CHECK(fails_with(with("type='error'", "type='fatal'", cond), Errc::bad_element));   // unknown type
  CHECK(fails_with(with("type='error'", "type='modify'", ""), Errc::bad_element));    // no condition
  CHECK(fails_with(with("type='error'", "type='modify'",
                        "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>only text</text>"),
                   Errc::bad_element));
  CHECK(fails_with(with("type='error'", "type='modify'", "<bad-request/>"), Errc::bad_element));  // wrong ns
  // <error/> in another namespace than the stanza's is not the stanza error.
  CHECK(fails_with(parse_stanza_error(parse("<iq xmlns='jabber:client' type='error'><error xmlns='urn:x' "
                                            "type='cancel'>" + std::string(cond) + "</error></iq>")),
                   Errc::bad_element));
  CHECK(fails_with(parse_stanza_error(parse("<iq xmlns='jabber:client' type='error'/>")), Errc::bad_element));
}

TEST_CASE("rename_namespace moves only the named namespace") {
  auto in = parse(
      "<message xmlns='jabber:component:accept' from='a@b/c' to='archive' type='normal' id='m1' xml:lang='en'>"
      "<body>hi <b>there</b> &amp; more</body>"
      "<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'/><payload>AAA=</payload></encrypted>"
      "<thread>t</thread></message>");
  auto out = rename_namespace(in, kComponentNs, kClientNs);
  CHECK(out.ns() == kClientNs);
  CHECK(out.attrs() == in.attrs());
  CHECK(out.child("body", kClientNs) != nullptr);
  CHECK(out.child("body", kClientNs)->child("b", kClientNs)->text() == "there");
  CHECK(out.child("body", kClientNs)->text() == "hi  & more");
  CHECK(out.child("thread", kClientNs) != nullptr);
  const xml::Element* enc = out.child("encrypted", "urn:xmpp:omemo:2");
  REQUIRE(enc != nullptr);
  CHECK(*enc == *in.child("encrypted", "urn:xmpp:omemo:2"));  // other namespaces untouched

  // Inside a component-stream stanza the copy declares jabber:client; renaming back restores it.
  xml::Element fwd("forwarded", std::string(kForwardNs));
  fwd.add_child(out);
  CHECK(xml::serialize(fwd).find("<message xmlns='jabber:client' from='a@b/c'") != std::string::npos);
  CHECK(rename_namespace(out, kClientNs, kComponentNs) == in);
  // Nothing to rename: an identical copy.
  CHECK(rename_namespace(in, "urn:none", kClientNs) == in);
}
