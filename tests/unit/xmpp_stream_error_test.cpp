// Stream error conditions for what the stream parser refuses (RFC 6120 §4.9.3, §11.1), checked
// on real parser errors, and the bytes that end the stream.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>

#include "protocol/xml/stream_parser.hpp"
#include "protocol/xmpp/stream_error.hpp"

using namespace multiend;

namespace {

const std::string kHeader =
    "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
    "xmlns:stream='http://etherx.jabber.org/streams' from='archive.localhost' id='abc'>";

// The condition for what the parser says about `bytes` (fed after the header, in one piece).
std::string condition_after_header(const std::string& bytes, xml::StreamLimits limits = {}) {
  xml::StreamParser p(limits);
  auto r = p.feed(kHeader + bytes);
  if (r) return "accepted";
  return std::string(xmpp::stream_error_condition(r.error()));
}

}  // namespace

TEST_CASE("restricted XML is restricted-xml, wherever it appears") {
  CHECK(condition_after_header("<!-- a comment -->") == "restricted-xml");
  CHECK(condition_after_header("<message><body><!-- inside --></body></message>") == "restricted-xml");
  CHECK(condition_after_header("<?frobnicate now?>") == "restricted-xml");
  CHECK(condition_after_header("<message><body>&boom;</body></message>") == "restricted-xml");
  CHECK(condition_after_header("<!DOCTYPE stream [<!ENTITY boom 'boom'>]>") == "restricted-xml");
  CHECK(condition_after_header("<message><!DOCTYPE x></message>") == "restricted-xml");
  xml::StreamParser p;
  auto r = p.feed("<!DOCTYPE stream:stream>" + kHeader.substr(21));
  REQUIRE(!r);
  CHECK(xmpp::stream_error_condition(r.error()) == "restricted-xml");
}

TEST_CASE("our size and depth limits are policy-violation") {
  CHECK(condition_after_header("<message>" + std::string(5000, 'A') + "</message>", {.max_stanza_bytes = 4096}) ==
        "policy-violation");
  std::string deep = "<message>";
  for (int i = 0; i < 40; ++i) deep += "<a>";
  CHECK(condition_after_header(deep) == "policy-violation");
  std::string many_attrs = "<message";
  for (int i = 0; i < 100; ++i) many_attrs += " a" + std::to_string(i) + "='x'";
  CHECK(condition_after_header(many_attrs + "/>") == "policy-violation");
}

TEST_CASE("anything else is not-well-formed; a wrong root is bad-format") {
  CHECK(condition_after_header("<<<not xml") == "not-well-formed");
  CHECK(condition_after_header("<message></presence>") == "not-well-formed");
  CHECK(condition_after_header("text between stanzas") == "not-well-formed");
  xml::StreamParser p;
  auto r = p.feed("<html xmlns='http://www.w3.org/1999/xhtml'>");
  REQUIRE(!r);
  CHECK(xmpp::stream_error_condition(r.error()) == "bad-format");
  CHECK(xmpp::stream_error_condition(make_error_code(Errc::bad_jid)) == "not-well-formed");
}

TEST_CASE("the stream error is followed by the end of the stream") {
  CHECK(xmpp::stream_error_and_close("restricted-xml") ==
        "<stream:error><restricted-xml xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>");
}
