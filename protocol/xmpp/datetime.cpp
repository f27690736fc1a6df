#include "protocol/xmpp/datetime.hpp"

#include <optional>

namespace multiend::xmpp {
namespace {

constexpr std::int64_t kMicrosPerSecond = 1'000'000;
constexpr std::int64_t kSecondsPerDay = 86'400;

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil): exact
// for every year, no table, no libc.
constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);               // [0, 399]
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  // [0, 365]
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          // [0, 146096]
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct Civil {
  std::int64_t year;
  unsigned month, day;
};

// The inverse of days_from_civil.
constexpr Civil civil_from_days(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0), m, d};
}

static_assert(days_from_civil(1970, 1, 1) == 0);
static_assert(days_from_civil(2000, 3, 1) == 11017);
static_assert(civil_from_days(11017).year == 2000 && civil_from_days(11017).month == 3);

constexpr bool is_leap(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

constexpr unsigned days_in_month(std::int64_t y, unsigned m) {
  constexpr unsigned kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

// A cursor over the text; each read consumes exactly what it accepts.
class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}

  // Exactly n ASCII digits.
  std::optional<unsigned> digits(std::size_t n) {
    if (s_.size() - pos_ < n) return std::nullopt;
    unsigned v = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const char c = s_[pos_ + i];
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    pos_ += n;
    return v;
  }
  bool literal(char c) {
    if (pos_ >= s_.size() || s_[pos_] != c) return false;
    ++pos_;
    return true;
  }
  std::optional<char> peek() const {
    return pos_ < s_.size() ? std::optional<char>(s_[pos_]) : std::nullopt;
  }
  bool at_end() const { return pos_ == s_.size(); }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
};

// Appends v as exactly `width` decimal digits (v < 10^width).
void put_digits(std::string& out, unsigned v, int width) {
  char digits[4];
  for (int i = width - 1; i >= 0; --i) {
    digits[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  out.append(digits, static_cast<std::size_t>(width));
}

}  // namespace

Result<std::int64_t> parse_datetime(std::string_view text) {
  Reader r(text);
  const auto year = r.digits(4);
  if (!year || !r.literal('-')) return Errc::bad_request;
  const auto month = r.digits(2);
  if (!month || *month < 1 || *month > 12 || !r.literal('-')) return Errc::bad_request;
  const auto day = r.digits(2);
  if (!day || *day < 1 || *day > days_in_month(*year, *month) || !r.literal('T'))
    return Errc::bad_request;
  const auto hour = r.digits(2);
  if (!hour || *hour > 23 || !r.literal(':')) return Errc::bad_request;
  const auto minute = r.digits(2);
  if (!minute || *minute > 59 || !r.literal(':')) return Errc::bad_request;
  const auto second = r.digits(2);
  if (!second || *second > 59) return Errc::bad_request;

  std::int64_t fraction_us = 0;
  if (r.literal('.')) {
    // Any number of digits; the first six are microseconds, the rest truncated.
    std::size_t n = 0;
    std::int64_t scale = 100'000;
    while (auto d = r.digits(1)) {
      fraction_us += *d * scale;
      scale /= 10;
      ++n;
    }
    if (n == 0) return Errc::bad_request;
  }

  std::int64_t offset_s = 0;
  if (!r.literal('Z')) {
    const auto sign = r.peek();
    if (!sign || (*sign != '+' && *sign != '-')) return Errc::bad_request;
    r.literal(*sign);
    const auto oh = r.digits(2);
    if (!oh || *oh > 23 || !r.literal(':')) return Errc::bad_request;
    const auto om = r.digits(2);
    if (!om || *om > 59) return Errc::bad_request;
    offset_s = (*sign == '+' ? 1 : -1) * static_cast<std::int64_t>(*oh * 3600 + *om * 60);
  }
  if (!r.at_end()) return Errc::bad_request;

  // Local time minus its offset is UTC. Years ≤ 9999 keep this far from int64 overflow.
  const std::int64_t seconds = days_from_civil(*year, *month, *day) * kSecondsPerDay +
                               *hour * 3600 + *minute * 60 + *second - offset_s;
  return seconds * kMicrosPerSecond + fraction_us;
}

std::string format_datetime(std::int64_t micros) {
  constexpr std::int64_t kMin = days_from_civil(0, 1, 1) * kSecondsPerDay * kMicrosPerSecond;
  constexpr std::int64_t kMax = days_from_civil(10000, 1, 1) * kSecondsPerDay * kMicrosPerSecond - 1000;
  if (micros < kMin) micros = kMin;
  if (micros > kMax) micros = kMax;

  // Floor divisions: a time before 1970 still has a non-negative time of day.
  std::int64_t millis = micros / 1000;
  if (micros % 1000 < 0) --millis;
  std::int64_t seconds = millis / 1000;
  std::int64_t ms = millis % 1000;
  if (ms < 0) {
    ms += 1000;
    --seconds;
  }
  std::int64_t days = seconds / kSecondsPerDay;
  std::int64_t sod = seconds % kSecondsPerDay;
  if (sod < 0) {
    sod += kSecondsPerDay;
    --days;
  }
  const Civil c = civil_from_days(days);
  std::string out;
  out.reserve(24);
  put_digits(out, static_cast<unsigned>(c.year), 4);
  out += '-';
  put_digits(out, c.month, 2);
  out += '-';
  put_digits(out, c.day, 2);
  out += 'T';
  put_digits(out, static_cast<unsigned>(sod / 3600), 2);
  out += ':';
  put_digits(out, static_cast<unsigned>(sod / 60 % 60), 2);
  out += ':';
  put_digits(out, static_cast<unsigned>(sod % 60), 2);
  out += '.';
  put_digits(out, static_cast<unsigned>(ms), 3);
  out += 'Z';
  return out;
}

}  // namespace multiend::xmpp
