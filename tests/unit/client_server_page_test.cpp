// A page of the account's own server archive (client/app/server_page): a server that sends more
// than the page asked for, in results or bytes, or the same page again, is refused.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "client/app/errors.hpp"
#include "client/app/server_page.hpp"
#include "protocol/xml/stream_parser.hpp"

using namespace multiend;
using namespace multiend::client;

namespace {
xml::Element result(const std::string& qid, const std::string& id, std::size_t body_bytes = 2) {
  auto e = xml::parse_element(
      "<message xmlns='jabber:client' to='alice@example.org/cli'><result xmlns='urn:xmpp:mam:2' queryid='" + qid +
      "' id='" + id + "'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' "
      "stamp='2026-12-05T07:00:00Z'/><message xmlns='jabber:client' from='bob@example.org/x' to='alice@example.org' "
      "type='chat' id='m" + id + "'><body>" + std::string(body_bytes, 'x') + "</body></message></forwarded></result></message>");
  REQUIRE(e.has_value());
  return *e;
}
}  // namespace

TEST_CASE("a page holds what was asked for, no more") {
  ServerPage page("alice@example.org", "q1", 1024 * 1024);
  for (std::uint32_t i = 0; i < pep::kServerMamPage; ++i) CHECK(page.add(result("q1", "r" + std::to_string(i))));
  CHECK(page.ends_at("r" + std::to_string(pep::kServerMamPage - 1)));
  CHECK_FALSE(page.add(result("q2", "other")));  // another query's: not ours, not counted
  CHECK_THROWS_AS(page.add(result("q1", "one-too-many")), ClientError);
  CHECK(page.results().size() == pep::kServerMamPage);
}

TEST_CASE("a page holds at most max_page_bytes") {
  ServerPage page("alice@example.org", "q1", 4096);
  CHECK(page.add(result("q1", "small")));
  CHECK_THROWS_AS(page.add(result("q1", "large", 8192)), ClientError);
  CHECK(page.results().size() == 1);
}

TEST_CASE("a catch-up that does not move on is refused") {
  ServerProgress p;
  p.advance(std::nullopt, "a");
  p.advance(std::string("a"), "b");
  CHECK_THROWS_AS(p.advance(std::string("b"), "b"), ClientError);  // the same page again
  ServerProgress cycle;
  cycle.advance(std::nullopt, "a");
  cycle.advance(std::string("a"), "b");
  CHECK_THROWS_AS(cycle.advance(std::string("b"), "a"), ClientError);  // round in a cycle
}
