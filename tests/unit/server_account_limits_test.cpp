#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>

#include "server/services/account_limits.hpp"

using multiend::server::AccountLimits;
using Kind = AccountLimits::Kind;
using namespace std::chrono_literals;

namespace {

AccountLimits::Settings small() {
  AccountLimits::Settings s;
  s.max_inflight = 10;
  s.max_inflight_bytes = 1000;
  s.max_inflight_per_account = 3;
  s.max_inflight_bytes_per_account = 500;
  s.message_rate_per_account = 2;
  s.message_burst_per_account = 4;
  s.max_mam_queries_per_account = 1;
  return s;
}

const AccountLimits::Clock::time_point t0{};

}  // namespace

TEST_CASE("one account cannot take all the in-flight slots") {
  AccountLimits l(small());
  for (int i = 0; i < 3; ++i) CHECK(l.admit("mallory@x", 10, Kind::other, t0) == nullptr);
  CHECK(std::string(l.admit("mallory@x", 10, Kind::other, t0)) == "max_inflight_per_account");
  // others are still served
  CHECK(l.admit("alice@x", 10, Kind::other, t0) == nullptr);
  l.release("mallory@x", 10, Kind::other, t0);
  CHECK(l.admit("mallory@x", 10, Kind::other, t0) == nullptr);
  CHECK(l.inflight() == 4);
}

TEST_CASE("memory in flight is bounded per account and overall, in bytes") {
  AccountLimits l(small());
  CHECK(l.admit("mallory@x", 400, Kind::other, t0) == nullptr);
  CHECK(std::string(l.admit("mallory@x", 200, Kind::other, t0)) == "max_inflight_bytes_per_account");
  CHECK(l.admit("alice@x", 450, Kind::other, t0) == nullptr);
  CHECK(std::string(l.admit("bob@x", 200, Kind::other, t0)) == "max_inflight_bytes");
  CHECK(l.inflight_bytes() == 850);
  l.release("alice@x", 450, Kind::other, t0);
  CHECK(l.admit("bob@x", 200, Kind::other, t0) == nullptr);
}

TEST_CASE("the total count bounds everyone") {
  auto s = small();
  s.max_inflight = 2;
  AccountLimits l(s);
  CHECK(l.admit("a@x", 1, Kind::other, t0) == nullptr);
  CHECK(l.admit("b@x", 1, Kind::other, t0) == nullptr);
  CHECK(std::string(l.admit("c@x", 1, Kind::other, t0)) == "max_inflight");
}

TEST_CASE("messages: a burst, then the sustained rate") {
  auto s = small();
  s.max_inflight_per_account = 100;
  AccountLimits l(s);
  for (int i = 0; i < 4; ++i) {
    REQUIRE(l.admit("bot@x", 1, Kind::message, t0) == nullptr);
    l.release("bot@x", 1, Kind::message, t0);
  }
  CHECK(std::string(l.admit("bot@x", 1, Kind::message, t0)) == "message_rate_per_account");
  // other kinds are not rate limited
  CHECK(l.admit("bot@x", 1, Kind::other, t0) == nullptr);
  l.release("bot@x", 1, Kind::other, t0);
  // 2 per second: after 500 ms one more
  CHECK(l.admit("bot@x", 1, Kind::message, t0 + 500ms) == nullptr);
  l.release("bot@x", 1, Kind::message, t0 + 500ms);
  CHECK(l.admit("bot@x", 1, Kind::message, t0 + 600ms) != nullptr);
  // another account has its own bucket
  CHECK(l.admit("alice@x", 1, Kind::message, t0 + 600ms) == nullptr);
}

TEST_CASE("MAM queries in flight per account") {
  AccountLimits l(small());
  CHECK(l.admit("a@x", 1, Kind::mam_query, t0) == nullptr);
  CHECK(std::string(l.admit("a@x", 1, Kind::mam_query, t0)) == "max_mam_queries_per_account");
  CHECK(l.admit("b@x", 1, Kind::mam_query, t0) == nullptr);
  l.release("a@x", 1, Kind::mam_query, t0);
  CHECK(l.admit("a@x", 1, Kind::mam_query, t0) == nullptr);
}

TEST_CASE("idle accounts with full buckets are forgotten") {
  AccountLimits l(small());
  REQUIRE(l.admit("a@x", 1, Kind::other, t0) == nullptr);
  CHECK(l.tracked_accounts() == 1);
  l.release("a@x", 1, Kind::other, t0);
  CHECK(l.tracked_accounts() == 0);
  REQUIRE(l.admit("a@x", 1, Kind::message, t0) == nullptr);
  l.release("a@x", 1, Kind::message, t0);
  CHECK(l.tracked_accounts() == 1);  // its bucket is not full: remembered
  REQUIRE(l.admit("b@x", 1, Kind::other, t0 + 10s) == nullptr);
  l.release("b@x", 1, Kind::other, t0 + 10s);
  // a refusal of a new account leaves nothing behind
  auto s = small();
  s.max_inflight_bytes_per_account = 10;
  AccountLimits m(s);
  CHECK(m.admit("big@x", 100, Kind::other, t0) != nullptr);
  CHECK(m.tracked_accounts() == 0);
}
