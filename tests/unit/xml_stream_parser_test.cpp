#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "protocol/xml/serializer.hpp"
#include "protocol/xml/stream_parser.hpp"

using multiend::Errc;
using multiend::xml::Element;
using multiend::xml::parse_element;
using multiend::xml::StanzaEvent;
using multiend::xml::StreamClosed;
using multiend::xml::StreamLimits;
using multiend::xml::StreamOpened;
using multiend::xml::StreamParser;

namespace {

const std::string kHeader =
    "<?xml version='1.0'?>"
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
    "to='example.com' version='1.0' xml:lang='en'>";

const std::string kStream =
    kHeader +
    "\n  <message to='juliet@example.com' type='chat' xml:lang='fr'>"
    "<body>Wherefore &amp; &lt;why&gt; &#x263A;</body>"
    "<x xmlns='urn:x' a=\"q'q\"><![CDATA[raw <b>]]></x></message>\r\n "
    "<presence/>"
    "<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>"
    "</stream:stream>";

// A readable transcript of the queued events.
std::vector<std::string> drain(StreamParser& p) {
  std::vector<std::string> out;
  while (auto ev = p.next()) {
    if (auto* o = std::get_if<StreamOpened>(&*ev)) {
      std::string s = "open ns=" + o->default_ns;
      for (const auto& [k, v] : o->attrs) s += " " + k + "=" + v;
      out.push_back(s);
    } else if (auto* st = std::get_if<StanzaEvent>(&*ev)) {
      out.push_back(multiend::xml::serialize(st->stanza));
    } else {
      out.push_back("close");
    }
  }
  return out;
}

std::vector<std::string> feed_in_chunks(const std::string& data, std::size_t chunk) {
  StreamParser p;
  std::vector<std::string> events;
  for (std::size_t i = 0; i < data.size(); i += chunk) {
    auto r = p.feed(std::string_view(data).substr(i, chunk));
    REQUIRE_MESSAGE(r.has_value(), r.error().message());
    for (auto& e : drain(p)) events.push_back(std::move(e));
  }
  return events;
}

// Feeds a whole stream and returns the error it ends with.
Errc stream_error(const std::string& data, StreamLimits limits = {}) {
  StreamParser p(limits);
  auto r = p.feed(data);
  if (r) return Errc::ok;
  return static_cast<Errc>(r.error().value());
}

Errc fragment_error(std::string_view xml, StreamLimits limits = {}) {
  auto r = parse_element(xml, limits);
  if (r) return Errc::ok;
  return static_cast<Errc>(r.error().value());
}

}  // namespace

TEST_CASE("a stream parses the same whatever the chunking") {
  const std::vector<std::string> expected = {
      "open ns=jabber:client to=example.com version=1.0 xml:lang=en",
      "<message xmlns='jabber:client' to='juliet@example.com' type='chat' xml:lang='fr'>"
      "<body>Wherefore &amp; &lt;why&gt; \xE2\x98\xBA</body>"
      "<x xmlns='urn:x' a='q&apos;q'>raw &lt;b&gt;</x></message>",
      "<presence xmlns='jabber:client'/>",
      "<iq xmlns='jabber:client' type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>",
      "close"};
  CHECK(feed_in_chunks(kStream, kStream.size()) == expected);
  CHECK(feed_in_chunks(kStream, 1) == expected);
  CHECK(feed_in_chunks(kStream, 7) == expected);
  CHECK(feed_in_chunks(kStream, 64) == expected);
}

TEST_CASE("stanza content is accessible") {
  StreamParser p;
  REQUIRE(p.feed(kStream));
  REQUIRE(std::holds_alternative<StreamOpened>(*p.next()));
  auto ev = p.next();
  REQUIRE(ev);
  const Element& m = std::get<StanzaEvent>(*ev).stanza;
  CHECK(m.name() == "message");
  CHECK(m.ns() == "jabber:client");
  CHECK(*m.attr("xml:lang") == "fr");
  CHECK(m.child("body")->text() == "Wherefore & <why> \xE2\x98\xBA");
  CHECK(m.child("x", "urn:x")->text() == "raw <b>");
}

TEST_CASE("the first element must be stream:stream") {
  CHECK(stream_error("<stream xmlns='jabber:client'>") == Errc::xml_bad_stream);
  CHECK(stream_error("<message xmlns='jabber:client'/>") == Errc::xml_bad_stream);
  CHECK(stream_error("<s:stream xmlns:s='urn:wrong'>") == Errc::xml_bad_stream);
  // any prefix is fine as long as the namespace is right
  CHECK(stream_error("<s:stream xmlns:s='http://etherx.jabber.org/streams'>") == Errc::ok);
}

TEST_CASE("restricted XML") {
  CHECK(stream_error(kHeader + "<!-- hi -->") == Errc::xml_restricted);
  CHECK(stream_error("<!-- before -->" + kHeader) == Errc::xml_restricted);
  CHECK(stream_error(kHeader + "<message><!--x--></message>") == Errc::xml_restricted);
  CHECK(stream_error(kHeader + "<?pi data?>") == Errc::xml_restricted);
  CHECK(stream_error("<?pi data?>" + kHeader) == Errc::xml_restricted);
  CHECK(stream_error("<!DOCTYPE stream:stream>" + kHeader.substr(21)) == Errc::xml_restricted);
  CHECK(stream_error("<!DOCTYPE x [<!ENTITY a 'aaaa'>]>" + kHeader.substr(21)) ==
        Errc::xml_restricted);
  // expat itself calls a declaration inside the stream a syntax error; it is still restricted.
  CHECK(stream_error(kHeader + "<!DOCTYPE stream [<!ENTITY boom 'boom'>]>") == Errc::xml_restricted);
  CHECK(stream_error(kHeader + "<message><!ENTITY a 'b'></message>") == Errc::xml_restricted);
  CHECK(stream_error(kHeader + "<message><!-></message>") == Errc::xml_malformed);
  CHECK(stream_error(kHeader + "<message>&lol;</message>") == Errc::xml_restricted);
  CHECK(stream_error(kHeader + "<message a='&lol;'/>") == Errc::xml_restricted);
  CHECK(stream_error(kHeader + "<?xml version='1.0'?>") == Errc::xml_restricted);
  CHECK(stream_error("<?xml version='1.0' encoding='ISO-8859-1'?>" + kHeader.substr(21)) ==
        Errc::xml_restricted);
  CHECK(stream_error("<?xml version='1.0' encoding='utf-8'?>" + kHeader.substr(21)) == Errc::ok);
  // predefined entities and character references are fine
  CHECK(stream_error(kHeader + "<m>&amp;&lt;&gt;&quot;&apos;&#65;&#x42;</m>") == Errc::ok);
}

TEST_CASE("not well-formed") {
  CHECK(stream_error(kHeader + "<a><b></a>") == Errc::xml_malformed);
  CHECK(stream_error(kHeader + "<a x='1' x='2'/>") == Errc::xml_malformed);
  CHECK(stream_error(kHeader + "<p:a/>") == Errc::xml_malformed);  // unbound prefix
  CHECK(stream_error(kHeader + "text between stanzas") == Errc::xml_malformed);
  CHECK(stream_error(kHeader + "<a>\xff</a>") == Errc::xml_malformed);
  CHECK(stream_error(kHeader + "<a>&#0;</a>") == Errc::xml_malformed);
  CHECK(stream_error(kHeader + "<a>&#xD800;</a>") == Errc::xml_malformed);
  CHECK(stream_error(kHeader + "</stream:stream><a/>") == Errc::xml_malformed);
  CHECK(stream_error(std::string("\0", 1) + kHeader) == Errc::xml_malformed);
  CHECK(stream_error(kHeader + std::string("<a>\0</a>", 8)) == Errc::xml_malformed);
}

TEST_CASE("an error is sticky until reset") {
  StreamParser p;
  REQUIRE(p.feed(kHeader));
  auto r = p.feed("<!--");
  r = p.feed("-->");
  REQUIRE_FALSE(r);
  CHECK(r.error() == Errc::xml_restricted);
  auto again = p.feed("<presence/>");
  REQUIRE_FALSE(again);
  CHECK(again.error() == Errc::xml_restricted);
  CHECK(p.feed("").error() == Errc::xml_restricted);
  // events before the error are still delivered
  CHECK(drain(p).size() == 1);
  p.reset();
  CHECK(p.feed(kStream));
  CHECK(drain(p).size() == 5);
}

TEST_CASE("stanza size limit") {
  StreamLimits limits;
  limits.max_stanza_bytes = 100;
  const std::string header = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>";
  const std::string open = "<m>";
  const std::string close = "</m>";

  SUBCASE("exactly at the limit passes, one more byte fails") {
    const std::string ok = open + std::string(100 - 7, 'x') + close;
    const std::string big = open + std::string(101 - 7, 'x') + close;
    StreamParser p(limits);
    REQUIRE(p.feed(header));
    CHECK(p.feed(ok));
    CHECK(p.feed(ok));
    CHECK(drain(p).size() == 3);
    CHECK(p.feed(big).error() == Errc::xml_too_large);
  }

  SUBCASE("fed byte by byte, the error comes at byte 101 of the stanza") {
    const std::string big = open + std::string(1000, 'x') + close;
    StreamParser p(limits);
    REQUIRE(p.feed(header));
    std::size_t fed = 0;
    for (char c : big) {
      ++fed;
      if (!p.feed(std::string_view(&c, 1))) break;
    }
    CHECK(fed == 101);
  }

  SUBCASE("a single unfinished token is stopped too") {
    StreamParser p(limits);
    REQUIRE(p.feed(header));
    REQUIRE(p.feed("<m a='"));
    Errc e = Errc::ok;
    for (int i = 0; i < 200 && e == Errc::ok; ++i)
      if (auto r = p.feed("y"); !r) e = static_cast<Errc>(r.error().value());
    CHECK(e == Errc::xml_too_large);
  }

  SUBCASE("a huge chunk is refused without parsing it all") {
    // 64 MiB in one call: far beyond what expat would be allowed to buffer.
    const std::string huge = header + "<m a='" + std::string(64u << 20, 'z');
    StreamParser p(limits);
    CHECK(p.feed(huge).error() == Errc::xml_too_large);
  }

  SUBCASE("an oversized stream header is refused") {
    CHECK(stream_error("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a='" +
                           std::string(200, 'q') + "'>",
                       limits) == Errc::xml_too_large);
  }

  SUBCASE("whitespace keepalives do not add up") {
    StreamParser p(limits);
    REQUIRE(p.feed(header));
    for (int i = 0; i < 1000; ++i) REQUIRE(p.feed(" "));
    CHECK(p.feed(open + close));
    CHECK(p.pending_bytes() == 0);
  }

  SUBCASE("long text trickled byte by byte is fine, a long tag is not") {
    StreamLimits l;
    l.max_token_bytes = 64;
    StreamParser p(l);
    REQUIRE(p.feed(header + "<m>"));
    for (int i = 0; i < 5000; ++i) REQUIRE(p.feed("t"));
    REQUIRE(p.feed("</m>"));
    CHECK(drain(p).size() == 2);

    const std::string tag = "<m a='" + std::string(100, 'v') + "'/>";
    CHECK(stream_error(header + tag, l) == Errc::xml_too_large);  // complete in one feed
    StreamParser q(l);
    REQUIRE(q.feed(header));
    std::size_t fed = 0;
    for (char c : tag) {
      ++fed;
      if (!q.feed(std::string_view(&c, 1))) break;
    }
    CHECK(fed == 65);  // unfinished token refused as soon as it passes the bound
    CHECK(stream_error(header + "<!--" + std::string(100, 'c'), l) == Errc::xml_too_large);
  }

  SUBCASE("too many attributes") {
    StreamLimits l;
    l.max_attributes = 3;
    CHECK(stream_error(header + "<m a='1' b='2' c='3'/>", l) == Errc::ok);
    CHECK(stream_error(header + "<m a='1' b='2' c='3' d='4'/>", l) == Errc::xml_too_large);
  }
}

TEST_CASE("depth limit") {
  const std::string header = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>";
  auto nested = [](int levels) {
    std::string s;
    for (int i = 0; i < levels; ++i) s += "<a>";
    for (int i = 0; i < levels; ++i) s += "</a>";
    return s;
  };
  // stanza = level 1; default max_depth 32
  CHECK(stream_error(header + nested(32)) == Errc::ok);
  CHECK(stream_error(header + nested(33)) == Errc::xml_too_deep);
  StreamLimits l;
  l.max_depth = 2;
  CHECK(stream_error(header + "<a><b/></a>", l) == Errc::ok);
  CHECK(stream_error(header + "<a><b><c/></b></a>", l) == Errc::xml_too_deep);
  CHECK(stream_error(header + nested(100000)) == Errc::xml_too_deep);
}

TEST_CASE("stream close, reset and pending bytes") {
  StreamParser p;
  REQUIRE(p.feed(kHeader + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"));
  CHECK(p.pending_bytes() == 0);
  REQUIRE(p.feed("<iq"));  // pipelined ahead of the TLS handshake
  CHECK(p.pending_bytes() == 3);
  CHECK(drain(p).size() == 2);

  p.reset();
  CHECK(p.pending_bytes() == 0);
  CHECK_FALSE(p.next());
  REQUIRE(p.feed(kHeader));  // a new stream may start with an XML declaration again
  REQUIRE(p.feed("</stream:stream>"));
  auto events = drain(p);
  REQUIRE(events.size() == 2);
  CHECK(events[1] == "close");
  CHECK(p.feed("  \n"));  // whitespace after the close is harmless
  CHECK(p.feed("<x/>").error() == Errc::xml_malformed);
}

TEST_CASE("a moved parser keeps working") {
  StreamParser a;
  REQUIRE(a.feed(kHeader));
  StreamParser b = std::move(a);
  REQUIRE(b.feed("<presence/>"));
  CHECK(drain(b).size() == 2);
}

TEST_CASE("parse_element") {
  auto r = parse_element(
      "<?xml version='1.0'?><bundle xmlns='urn:xmpp:omemo:2'><ik>AAAA</ik></bundle>\n");
  REQUIRE(r.has_value());
  CHECK(r->name() == "bundle");
  CHECK(r->ns() == "urn:xmpp:omemo:2");
  CHECK(r->child("ik")->text() == "AAAA");

  CHECK(fragment_error("<a/>") == Errc::ok);
  CHECK(fragment_error("") == Errc::xml_malformed);
  CHECK(fragment_error("   ") == Errc::xml_malformed);
  CHECK(fragment_error("<a>") == Errc::xml_malformed);
  CHECK(fragment_error("<a/><b/>") == Errc::xml_malformed);
  CHECK(fragment_error("<a/>junk") == Errc::xml_malformed);
  CHECK(fragment_error("text") == Errc::xml_malformed);
  CHECK(fragment_error("<a><!-- c --></a>") == Errc::xml_restricted);
  CHECK(fragment_error("<a/><!-- c -->") == Errc::xml_restricted);
  CHECK(fragment_error("<!DOCTYPE a><a/>") == Errc::xml_restricted);
  CHECK(fragment_error("<a>&ent;</a>") == Errc::xml_restricted);
  CHECK(fragment_error("<a><?pi?></a>") == Errc::xml_restricted);

  StreamLimits l;
  l.max_stanza_bytes = 10;
  CHECK(fragment_error("<a>123</a>", l) == Errc::ok);
  CHECK(fragment_error("<a>1234</a>", l) == Errc::xml_too_large);
  l = {};
  l.max_depth = 2;
  CHECK(fragment_error("<a><b/></a>", l) == Errc::ok);
  CHECK(fragment_error("<a><b><c/></b></a>", l) == Errc::xml_too_deep);
  // a stream header is just an element here
  CHECK(fragment_error("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>") ==
        Errc::ok);
}
