// XEP-0082 DateTime ("CCYY-MM-DDThh:mm:ss[.sss]TZD") to and from microseconds since the Unix
// epoch, UTC. Owns the syntax and the calendar arithmetic (proleptic Gregorian, no time zone
// database, no locale, no libc time functions); knows nothing about clocks or where dates appear.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/error.hpp"

namespace multiend::xmpp {

// Accepts years 0000–9999, 'T' and 'Z' in upper case only, an optional fraction of any length
// (digits beyond microseconds are truncated) and a mandatory zone: 'Z' or ±hh:mm (hh ≤ 23,
// mm ≤ 59). Fields out of range (month 13, 30 February, hour 24, second 60 — leap seconds are
// not representable here) and any other syntax are Errc::bad_request.
Result<std::int64_t> parse_datetime(std::string_view text);

// "YYYY-MM-DDThh:mm:ss.mmmZ": milliseconds, UTC; sub-millisecond digits are truncated towards
// the past. Values outside 0000-01-01 … 9999-12-31T23:59:59.999Z are clamped to that range, so
// the output always parses.
std::string format_datetime(std::int64_t micros);

}  // namespace multiend::xmpp
