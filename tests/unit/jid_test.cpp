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
  // non-ASCII passes through byte-wise
  CHECK(must("\xC3\x89lise@\xC3\xA9xample.com").local() == "\xC3\x89lise");
  CHECK(must("u@d/\xE2\x99\x9A r\xC3\xA9s").resource() == "\xE2\x99\x9A r\xC3\xA9s");
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
