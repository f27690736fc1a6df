// XEP-0114 handshake digest: lowercase hex SHA-1 over stream id ‖ secret.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>

#include "protocol/crypto/sha1_hex.hpp"

using multiend::crypto::component_handshake_digest;

TEST_CASE("known digests") {
  // printf '3BF96D75sesame' | sha1sum
  CHECK(component_handshake_digest("3BF96D75", "sesame") == "7d9ebd743a486205e137f8c168c192e3495856d2");
  // SHA-1 of the empty string and of "abc" (FIPS 180 test vectors), split anywhere.
  CHECK(component_handshake_digest("", "") == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  CHECK(component_handshake_digest("abc", "") == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(component_handshake_digest("a", "bc") == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(component_handshake_digest("", "abc") == "a9993e364706816aba3e25717850c26c9cd0d89d");
}

TEST_CASE("shape and sensitivity") {
  const std::string d = component_handshake_digest("stream-1", "secret");
  CHECK(d.size() == 40);
  CHECK(d.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(component_handshake_digest("stream-2", "secret") != d);
  CHECK(component_handshake_digest("stream-1", "Secret") != d);
  CHECK(component_handshake_digest("stream-1", "secret") == d);
  // Binary-safe: embedded NULs count.
  CHECK(component_handshake_digest(std::string_view("a\0b", 3), "") != component_handshake_digest("ab", ""));
}
