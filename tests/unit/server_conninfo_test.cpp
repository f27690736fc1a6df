#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>

#include "server/db/conninfo.hpp"

using multiend::server::conninfo_with_timeouts;
using multiend::server::ConnTimeouts;

namespace {
bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

TEST_CASE("timeouts are added to a URL") {
  ConnTimeouts t;
  t.connect_timeout_seconds = 7;
  t.tcp_user_timeout_ms = 20000;
  auto ci = conninfo_with_timeouts("postgresql://u@db.example:5433/multiend?sslmode=require", t, nullptr);
  REQUIRE(ci);
  CHECK(has(*ci, "host='db.example'"));
  CHECK(has(*ci, "port='5433'"));
  CHECK(has(*ci, "dbname='multiend'"));
  CHECK(has(*ci, "user='u'"));
  CHECK(has(*ci, "sslmode='require'"));
  CHECK(has(*ci, "connect_timeout='7'"));
  CHECK(has(*ci, "keepalives='1'"));
  CHECK(has(*ci, "keepalives_idle='10'"));
  CHECK(has(*ci, "tcp_user_timeout='20000'"));
}

TEST_CASE("the operator's own settings win, key=value form too") {
  auto ci = conninfo_with_timeouts("host=/run/postgresql dbname=m connect_timeout=3 keepalives=0", {}, nullptr);
  REQUIRE(ci);
  CHECK(has(*ci, "connect_timeout='3'"));
  CHECK(has(*ci, "keepalives='0'"));
  CHECK(has(*ci, "host='/run/postgresql'"));
}

TEST_CASE("values are quoted for libpq") {
  auto ci = conninfo_with_timeouts("host=h dbname='we ird\\'name'", {}, nullptr);
  REQUIRE(ci);
  CHECK(has(*ci, "dbname='we ird\\'name'"));
}

TEST_CASE("an unparsable URL is an error with libpq's reason") {
  std::string error;
  CHECK_FALSE(conninfo_with_timeouts("host=h bogus_key=1", {}, &error));
  CHECK(has(error, "bogus_key"));
  CHECK_FALSE(conninfo_with_timeouts("postgresql://h:notaport/x?nonsense=1", {}, &error));
}
