#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "protocol/jid.hpp"

using multiend::Errc;
using multiend::Jid;

namespace {

Jid must(std::string_view s) {
  auto r = Jid::parse(s);
  REQUIRE_MESSAGE(r.has_value(), s);
  return *r;
}

bool bad(std::string_view s) {
  auto r = Jid::parse(s);
  return !r.has_value() && r.error() == Errc::bad_jid;
}

}  // namespace

TEST_CASE("parts") {
  Jid j = must("juliet@example.com/balcony");
  CHECK(j.local() == "juliet");
  CHECK(j.domain() == "example.com");
  CHECK(j.resource() == "balcony");
  CHECK_FALSE(j.is_bare());
  CHECK(j.to_string() == "juliet@example.com/balcony");
  CHECK(j.bare_string() == "juliet@example.com");
  CHECK(j.bare().is_bare());
  CHECK(j.bare().to_string() == "juliet@example.com");

  Jid d = must("example.com");
  CHECK(d.local().empty());
  CHECK(d.is_bare());
  CHECK(d.to_string() == "example.com");

  Jid dr = must("example.com/res");
  CHECK(dr.local().empty());
  CHECK(dr.to_string() == "example.com/res");
}

TEST_CASE("resource may contain / and @; localpart ends at the first @") {
  Jid j = must("a@b.c/x/y@z");
  CHECK(j.local() == "a");
  CHECK(j.domain() == "b.c");
  CHECK(j.resource() == "x/y@z");
  CHECK(must("b.c/u@v").local().empty());
  CHECK(bad("a@b@c"));  // '@' is not a domain character
}

TEST_CASE("normalization") {
  CHECK(must("JuLiet@Example.COM/Balcony").to_string() == "juliet@example.com/Balcony");
  CHECK(must("example.com.").domain() == "example.com");
  CHECK(must("u@example.com./r").to_string() == "u@example.com/r");
  CHECK(must("[::1]").domain() == "[::1]");
  CHECK(must("u@[2001:DB8::1]/r").domain() == "[2001:db8::1]");
  CHECK(must("192.0.2.1").domain() == "192.0.2.1");
  // non-ASCII localparts are Nodeprep'ed (case folded), resources Resourceprep'ed (case kept)
  CHECK(must("\xC3\x89lise@\xC3\xA9xample.com").local() == "\xC3\xA9lise");
  CHECK(must("u@d/\xE2\x99\x9A r\xC3\xA9s").resource() == "\xE2\x99\x9A r\xC3\xA9s");
}

TEST_CASE("stringprep: one account however its name is written (what Prosody does)") {
  // É (U+00C9) and é (U+00E9): one account
  CHECK(must("\xC3\x89lodie@example.org") == must("\xC3\xA9lodie@example.org"));
  // e + combining acute (NFKC) is é
  CHECK(must("e\xCC\x81lodie@example.org").local() == "\xC3\xA9lodie");
  // ß is case folded to "ss" by Nodeprep
  CHECK(must("Stra\xC3\x9F" "e@example.org").local() == "strasse");
  // fullwidth Ａ (U+FF21) maps to a
  CHECK(must("\xEF\xBC\xA1@example.org").local() == "a");
  // soft hyphen (U+00AD) is mapped to nothing
  CHECK(must("al\xC2\xADice@example.org").local() == "alice");
  // the resource keeps its case but is normalised
  CHECK(must("u@example.org/R\xC3\x89S").resource() == "R\xC3\x89S");
  CHECK(must("u@example.org/e\xCC\x81").resource() == "\xC3\xA9");
  // prohibited by Nodeprep (non-ASCII space U+3000, U+2028 line separator) and unassigned
  CHECK(bad("a\xE3\x80\x80" "b@example.org"));
  CHECK(bad("a\xE2\x80\xA8" "b@example.org"));
  CHECK(bad("\xF3\xA0\x80\x81x@example.org"));  // U+E0001 language tag: prohibited
  CHECK(bad("u@example.org/\xE2\x80\xA8"));
}

TEST_CASE("IDNA: an A-label and its U-label are one domain") {
  // café.example and its Punycode form xn--caf-dma.example
  Jid u = must("bob@caf\xC3\xA9.example");
  Jid a = must("bob@xn--caf-dma.example");
  CHECK(u == a);
  CHECK(a.domain() == "caf\xC3\xA9.example");
  CHECK(must("bob@CAF\xC3\x89.Example") == u);  // Nameprep folds the case
  CHECK(bad("bob@exa\xE3\x80\x80mple.org"));      // U+3000 in a domain
  // ASCII domains are unchanged by IDNA
  CHECK(must("u@Example.ORG").domain() == "example.org");
}

TEST_CASE("invalid") {
  CHECK(bad(""));
  CHECK(bad("@example.com"));
  CHECK(bad("example.com/"));
  CHECK(bad("u@"));
  CHECK(bad("u@/r"));
  CHECK(bad("/r"));
  CHECK(bad("."));
  CHECK(bad("example.com.."));
  CHECK(bad(".example.com"));
  CHECK(bad("a..b"));
  CHECK(bad("exa mple.com"));
  CHECK(bad("exa<mple.com"));
  CHECK(bad("exa:mple.com"));
  CHECK(bad("[::1"));
  CHECK(bad("[]"));
  CHECK(bad("[not-an-ip]"));
  CHECK(bad("[1.2.3.4]"));
  for (const char* c : {"\"", "&", "'", ":", "<", ">", " "})
    CHECK_MESSAGE(bad(std::string("a") + c + "b@example.com"), c);
  CHECK(bad(std::string("a\0b@example.com", 15)));
  CHECK(bad("a\tb@example.com"));
  CHECK(bad("a\x7F@example.com"));
  CHECK(bad("a\xC2\x85@example.com"));  // C1 control NEL
  CHECK(bad("u@example.com/r\n"));
  CHECK(bad("u@example.com/\xEF\xBF\xBE"));  // U+FFFE
  // invalid UTF-8 in every part
  CHECK(bad("\xff@example.com"));
  CHECK(bad("u@exa\xffmple.com"));
  CHECK(bad("u@example.com/\xC0\xAF"));        // overlong '/'
  CHECK(bad("u@example.com/\xED\xA0\x80"));    // surrogate
  CHECK(bad("u@example.com/\xE2\x82"));        // truncated
}

TEST_CASE("length limits") {
  const std::string p1023(1023, 'a');
  const std::string p1024(1024, 'a');
  Jid max = must(p1023 + "@" + p1023 + "/" + p1023);
  CHECK(max.to_string().size() == 3071);
  CHECK(bad(p1024 + "@example.com"));
  CHECK(bad("u@" + p1024));
  CHECK(bad("u@example.com/" + p1024));
  CHECK(must(p1023 + ".").domain() == p1023);  // the stripped dot does not count
  CHECK(bad(std::string(100000, 'a')));
}

TEST_CASE("with_resource") {
  Jid b = must("u@example.com");
  auto full = b.with_resource("phone");
  REQUIRE(full.has_value());
  CHECK(full->to_string() == "u@example.com/phone");
  CHECK_FALSE(b.with_resource("").has_value());
  CHECK_FALSE(b.with_resource("a\nb").has_value());
  CHECK_FALSE(b.with_resource(std::string(1024, 'r')).has_value());
  CHECK_FALSE(b.with_resource("\xff").has_value());
  CHECK(b.with_resource("a/b@c")->resource() == "a/b@c");
}

TEST_CASE("comparison") {
  CHECK(must("U@Example.com/R") == must("u@example.com/R"));
  CHECK_FALSE(must("u@example.com/R") == must("u@example.com/r"));
  CHECK(must("a@x") < must("b@x"));
  CHECK_FALSE(must("b@x") < must("a@x"));
  CHECK(must("x") < must("a@x"));  // empty localpart sorts first
  std::map<Jid, int> m;
  m[must("a@x/1")] = 1;
  m[must("A@X/1")] = 2;
  CHECK(m.size() == 1);
  CHECK(m.begin()->second == 2);
}
