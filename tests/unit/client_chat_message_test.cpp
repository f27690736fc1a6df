// Plain chat messages and Carbons (client/app/chat_message): who may speak for our account, what
// is shown, and the stanza a legacy send puts on the wire.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "client/app/chat_message.hpp"
#include "protocol/xml/serializer.hpp"
#include "protocol/xml/stream_parser.hpp"

using namespace multiend;
using namespace multiend::client;

namespace {

const std::string kOwn = "alice@example.org";

std::optional<ChatMessage> parse(const std::string& xml) {
  auto e = xml::parse_element(xml);
  REQUIRE(e.has_value());
  return parse_chat(*e, kOwn);
}

std::string carbon(const std::string& wrapper_from, const std::string& kind, const std::string& inner) {
  return "<message xmlns='jabber:client' from='" + wrapper_from + "' to='alice@example.org/cli' type='chat'><" + kind +
         " xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>" + inner + "</forwarded></" + kind +
         "></message>";
}

const std::string kLegacy =
    "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='7'><key rid='9'>AAAA</key>"
    "<iv>AAAAAAAAAAAAAAAA</iv></header><payload>AAAA</payload></encrypted>";

}  // namespace

TEST_CASE("a contact's chat message: sender from the stamped from, history id from origin-id") {
  auto m = parse("<message xmlns='jabber:client' from='Bob@Example.org/phone' to='alice@example.org' type='chat' id='m1'>"
                 "<origin-id xmlns='urn:xmpp:sid:0' id='o1'/>" + kLegacy + "<body>fallback</body></message>");
  REQUIRE(m);
  CHECK(m->from_bare == "bob@example.org");
  CHECK(m->direction == Direction::in);
  CHECK_FALSE(m->carbon);
  CHECK(m->history_id == "pep:bob@example.org:o1");
  REQUIRE(m->legacy);
  CHECK(m->legacy->sid == 7);

  auto plain = parse("<message xmlns='jabber:client' from='bob@example.org/x' type='chat' id='m2'><body>hi</body></message>");
  REQUIRE(plain);
  CHECK_FALSE(plain->legacy);
  CHECK(plain->body == "hi");
  CHECK(plain->history_id == "pep:bob@example.org:m2");
  CHECK(plain->to_bare == kOwn);
}

TEST_CASE("nothing to show: headlines, errors, chat states, no id, no sender") {
  CHECK_FALSE(parse("<message xmlns='jabber:client' from='bob@example.org/x' type='headline' id='1'><body>x</body></message>"));
  CHECK_FALSE(parse("<message xmlns='jabber:client' from='bob@example.org/x' type='error' id='1'><body>x</body></message>"));
  CHECK_FALSE(parse("<message xmlns='jabber:client' from='bob@example.org/x' type='chat' id='1'>"
                    "<active xmlns='http://jabber.org/protocol/chatstates'/></message>"));
  CHECK_FALSE(parse("<message xmlns='jabber:client' from='bob@example.org/x' type='chat'><body>x</body></message>"));
  CHECK_FALSE(parse("<message xmlns='jabber:client' type='chat' id='1'><body>x</body></message>"));
  CHECK_FALSE(parse("<message xmlns='jabber:client' from='example.org' type='chat' id='1'><body>x</body></message>"));
  // our own message to the archive component, as ejabberd's MAM keeps it
  CHECK_FALSE(parse("<message xmlns='jabber:client' from='alice@example.org/cli' to='archive.example.org' id='1'>"
                    "<encrypted xmlns='urn:xmpp:omemo:2'/><store xmlns='urn:xmpp:hints'/></message>"));
}

TEST_CASE("Carbons: believed from our own bare JID only") {
  const std::string sent_inner = "<message xmlns='jabber:client' from='alice@example.org/phone' to='bob@example.org' "
                                 "type='chat' id='s1'><body>from my phone</body></message>";
  auto ok = parse(carbon(kOwn, "sent", sent_inner));
  REQUIRE(ok);
  CHECK(ok->carbon);
  CHECK(ok->direction == Direction::out);
  CHECK(ok->to_bare == "bob@example.org");
  CHECK(ok->history_id == "pep:alice@example.org:s1");
  // a contact, a resource of ours, another account of the server: forgeries
  CHECK_FALSE(parse(carbon("mallory@example.org", "sent", sent_inner)));
  CHECK_FALSE(parse(carbon("alice@example.org/phone", "sent", sent_inner)));
  CHECK_FALSE(parse(carbon("example.org", "sent", sent_inner)));
  // a <sent/> copy must be ours, a <received/> one addressed to us
  CHECK_FALSE(parse(carbon(kOwn, "sent", "<message xmlns='jabber:client' from='bob@example.org/x' to='carol@example.org' "
                                         "type='chat' id='s2'><body>x</body></message>")));
  CHECK_FALSE(parse(carbon(kOwn, "received", "<message xmlns='jabber:client' from='bob@example.org/x' "
                                             "to='carol@example.org' type='chat' id='s3'><body>x</body></message>")));
  auto rec = parse(carbon(kOwn, "received", "<message xmlns='jabber:client' from='bob@example.org/x' "
                                            "to='alice@example.org/phone' type='chat' id='r1'><body>x</body></message>"));
  REQUIRE(rec);
  CHECK(rec->direction == Direction::in);
  CHECK(rec->from_bare == "bob@example.org");
}

TEST_CASE("a malformed legacy element is reported, not dropped") {
  auto m = parse("<message xmlns='jabber:client' from='bob@example.org/x' type='chat' id='b1'>"
                 "<encrypted xmlns='eu.siacs.conversations.axolotl'><header/></encrypted></message>");
  REQUIRE(m);
  CHECK_FALSE(m->legacy);
  CHECK(m->legacy_error);
}

TEST_CASE("the legacy chat message a send puts on the wire") {
  oldmemo::LegacyEncrypted enc;
  enc.sid = 5;
  enc.iv = crypto::Bytes(12, 1);
  enc.payload = crypto::Bytes(4, 2);
  enc.keys.push_back({9, true, crypto::Bytes(40, 3)});
  auto st = legacy_chat_message("bob@example.org", "id1", "origin1", enc, true);
  const std::string xml = xml::serialize(st);
  CHECK(st.attr("type") == "chat");
  CHECK(st.attr("to") == "bob@example.org");
  CHECK(st.child("store", "urn:xmpp:hints"));
  CHECK(st.child("origin-id", "urn:xmpp:sid:0")->attr("id") == "origin1");
  CHECK(st.child("encryption", "urn:xmpp:eme:0")->attr("namespace") == "eu.siacs.conversations.axolotl");
  CHECK(st.child("body", "jabber:client")->text().find("OMEMO") != std::string::npos);
  // and it reads back as what it is
  st.set_attr("from", "alice@example.org/cli");
  auto back = parse_chat(st, "bob@example.org");
  REQUIRE(back);
  REQUIRE(back->legacy);
  CHECK(back->legacy->keys.size() == 1);
  CHECK(back->history_id == "pep:alice@example.org:origin1");
}
