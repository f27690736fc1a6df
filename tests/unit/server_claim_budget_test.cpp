#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "server/services/claim_budget.hpp"

using multiend::server::ClaimBudget;
using namespace std::chrono_literals;

TEST_CASE("fresh prekeys per requester account and target, per hour") {
  ClaimBudget b(5);
  const ClaimBudget::Clock::time_point t0{};
  CHECK(b.allows("mallory@x", "alice@x", t0));
  b.spend("mallory@x", "alice@x", 3, t0);
  CHECK(b.allows("mallory@x", "alice@x", t0));
  b.spend("mallory@x", "alice@x", 2, t0 + 1s);
  CHECK_FALSE(b.allows("mallory@x", "alice@x", t0 + 2s));
  // other targets and other requesters have their own budget
  CHECK(b.allows("mallory@x", "bob@x", t0 + 2s));
  CHECK(b.allows("carol@x", "alice@x", t0 + 2s));
  // the window starts at the first claim
  CHECK_FALSE(b.allows("mallory@x", "alice@x", t0 + 59min));
  CHECK(b.allows("mallory@x", "alice@x", t0 + 60min));
  b.spend("mallory@x", "alice@x", 1, t0 + 60min);
  CHECK(b.allows("mallory@x", "alice@x", t0 + 60min));
  CHECK(b.tracked_pairs() == 1);
}

TEST_CASE("spending nothing tracks nothing") {
  ClaimBudget b(1);
  b.spend("a@x", "b@x", 0, {});
  CHECK(b.tracked_pairs() == 0);
}
