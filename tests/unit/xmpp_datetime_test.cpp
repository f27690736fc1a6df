// XEP-0082 DateTime: known instants, zones, fractions, calendar edges, and every malformed form.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "protocol/xmpp/datetime.hpp"

using namespace multiend;
using namespace multiend::xmpp;

namespace {

std::int64_t must(std::string_view s) {
  auto r = parse_datetime(s);
  REQUIRE_MESSAGE(r.has_value(), s);
  return *r;
}

bool bad(std::string_view s) {
  auto r = parse_datetime(s);
  return !r.has_value() && r.error() == Errc::bad_request;
}

constexpr std::int64_t kSec = 1'000'000;

}  // namespace

TEST_CASE("known instants") {
  CHECK(must("1970-01-01T00:00:00Z") == 0);
  CHECK(must("2000-01-01T00:00:00Z") == 946684800 * kSec);
  CHECK(must("2038-01-19T03:14:07Z") == 2147483647 * kSec);
  CHECK(must("2010-07-10T23:08:25Z") == 1278803305 * kSec);  // XEP-0313's example stamp
  CHECK(must("1969-12-31T23:59:59Z") == -1 * kSec);
  CHECK(must("1900-01-01T00:00:00Z") == -2208988800LL * kSec);
  CHECK(must("0000-01-01T00:00:00Z") == -62167219200LL * kSec);
  CHECK(must("9999-12-31T23:59:59Z") == 253402300799LL * kSec);
}

TEST_CASE("zones") {
  const std::int64_t t = must("2026-11-28T12:00:00Z");
  CHECK(must("2026-11-28T13:30:00+01:30") == t);
  CHECK(must("2026-11-28T07:00:00-05:00") == t);
  CHECK(must("2026-11-28T12:00:00+00:00") == t);
  CHECK(must("2026-11-28T12:00:00-00:00") == t);
  CHECK(must("2026-11-29T11:59:00+23:59") == t);
  // An offset can cross the epoch and the year.
  CHECK(must("1970-01-01T00:00:00+01:00") == -3600 * kSec);
  CHECK(must("2026-12-31T23:00:00-01:00") == must("2027-01-01T00:00:00Z"));
}

TEST_CASE("fractional seconds of any length") {
  CHECK(must("1970-01-01T00:00:00.5Z") == 500'000);
  CHECK(must("1970-01-01T00:00:00.123Z") == 123'000);
  CHECK(must("1970-01-01T00:00:00.123456Z") == 123'456);
  CHECK(must("1970-01-01T00:00:00.1234569Z") == 123'456);  // truncated, not rounded
  CHECK(must("1970-01-01T00:00:00.999999999999999999999999999999Z") == 999'999);
  CHECK(must("1970-01-01T00:00:01.000000+00:00") == kSec);
  CHECK(must("1969-12-31T23:59:59.250Z") == -750'000);
  CHECK(must("1970-01-01T00:00:00." + std::string(100000, '7') + "Z") == 777'777);
}

TEST_CASE("calendar edges") {
  CHECK(must("2024-02-29T00:00:00Z") == must("2024-02-28T00:00:00Z") + 86400 * kSec);
  CHECK(must("2000-02-29T00:00:00Z") > 0);  // divisible by 400: leap
  CHECK(bad("1900-02-29T00:00:00Z"));       // divisible by 100: not leap
  CHECK(bad("2023-02-29T00:00:00Z"));
  CHECK(bad("2024-02-30T00:00:00Z"));
  CHECK(bad("2024-04-31T00:00:00Z"));
  CHECK(must("2024-12-31T23:59:59Z") + kSec == must("2025-01-01T00:00:00Z"));
}

TEST_CASE("out-of-range fields") {
  CHECK(bad("2024-00-10T00:00:00Z"));
  CHECK(bad("2024-13-10T00:00:00Z"));
  CHECK(bad("2024-01-00T00:00:00Z"));
  CHECK(bad("2024-01-32T00:00:00Z"));
  CHECK(bad("2024-01-10T24:00:00Z"));
  CHECK(bad("2024-01-10T00:60:00Z"));
  CHECK(bad("2024-01-10T00:00:60Z"));  // no leap seconds
  CHECK(bad("2024-01-10T00:00:00+24:00"));
  CHECK(bad("2024-01-10T00:00:00+01:60"));
}

TEST_CASE("malformed syntax") {
  for (const char* s : {"", "2024", "2024-01-10", "2024-01-10T00:00:00", "2024-01-10T00:00Z",
                        "24-01-10T00:00:00Z", "20240-01-10T00:00:00Z", "2024-1-10T00:00:00Z",
                        "2024-01-1T00:00:00Z", "2024-01-10 00:00:00Z", "2024-01-10t00:00:00Z",
                        "2024-01-10T00:00:00z", "2024-01-10T0:00:00Z", "2024-01-10T00:00:00.Z",
                        "2024-01-10T00:00:00,5Z", "2024-01-10T00:00:00ZZ", "2024-01-10T00:00:00Z ",
                        " 2024-01-10T00:00:00Z", "2024-01-10T00:00:00+0100", "2024-01-10T00:00:00+01",
                        "2024-01-10T00:00:00+1:00", "2024-01-10T00:00:00UTC", "-2024-01-10T00:00:00Z",
                        "+2024-01-10T00:00:00Z", "2024/01/10T00:00:00Z", "2024-01-10T00:00:0aZ",
                        "２024-01-10T00:00:00Z", "2024-01-10T00:00:00.5", "2024-01-10T00:00:00.5+",
                        "2024-01-10T00:00:00.-5Z"}) {
    CHECK_MESSAGE(bad(s), s);
  }
  CHECK(bad(std::string_view("2024-01-10T00:00:00Z\0", 21)));
}

TEST_CASE("format") {
  CHECK(format_datetime(0) == "1970-01-01T00:00:00.000Z");
  CHECK(format_datetime(1278803305 * kSec) == "2010-07-10T23:08:25.000Z");
  CHECK(format_datetime(1278803305 * kSec + 123'999) == "2010-07-10T23:08:25.123Z");
  CHECK(format_datetime(-1) == "1969-12-31T23:59:59.999Z");  // floor, not towards zero
  CHECK(format_datetime(-1000) == "1969-12-31T23:59:59.999Z");
  CHECK(format_datetime(-1001) == "1969-12-31T23:59:59.998Z");
  CHECK(format_datetime(must("2024-02-29T12:34:56.789Z")) == "2024-02-29T12:34:56.789Z");
  CHECK(format_datetime(must("0000-01-01T00:00:00Z")) == "0000-01-01T00:00:00.000Z");
  CHECK(format_datetime(must("9999-12-31T23:59:59.999999Z")) == "9999-12-31T23:59:59.999Z");
  // Clamped, so the output always parses.
  CHECK(format_datetime(std::numeric_limits<std::int64_t>::max()) == "9999-12-31T23:59:59.999Z");
  CHECK(format_datetime(std::numeric_limits<std::int64_t>::min()) == "0000-01-01T00:00:00.000Z");
}

TEST_CASE("round trip over many instants") {
  // Every ~3.7 days at an odd time of day across five centuries, plus millisecond remainders.
  for (std::int64_t s = -11'000'000'000LL; s < 7'000'000'000LL; s += 318'513) {
    const std::int64_t us = s * kSec + (s % 1000 + 1000) % 1000 * 1000;
    const std::string text = format_datetime(us);
    auto back = parse_datetime(text);
    REQUIRE_MESSAGE(back.has_value(), text);
    CHECK_MESSAGE(*back == us, text);
  }
}
