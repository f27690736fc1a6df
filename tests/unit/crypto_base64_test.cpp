#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <random>
#include <string>

#include "protocol/crypto/base64.hpp"

using namespace multiend;

// base64_decode_public must decide and decode exactly as the constant-time decoder does.
static void same(const std::string& text) {
  auto a = crypto::base64_decode(text, 4096);
  auto b = crypto::base64_decode_public(text, 4096);
  INFO("input: '" << text << "'");
  REQUIRE(a.has_value() == b.has_value());
  if (a) CHECK(*a == *b);
}

TEST_CASE("the public decoder agrees with libsodium on round trips, whitespace and padding") {
  std::mt19937 rng(42);
  for (int len = 0; len < 70; ++len) {
    crypto::Bytes data(len);
    for (auto& x : data) x = static_cast<std::uint8_t>(rng());
    const std::string enc = crypto::base64_encode(crypto::ByteView(data.data(), data.size()));
    same(enc);
    auto dec = crypto::base64_decode_public(enc, 4096);
    REQUIRE(dec.has_value());
    CHECK(*dec == data);
    std::string spaced;
    for (std::size_t i = 0; i < enc.size(); ++i) spaced += (i % 5 == 4 ? "\n" : "") + enc.substr(i, 1) + (i % 7 == 0 ? " " : "");
    same(spaced);
  }
  for (const char* s : {"", "=", "==", "===", "====", "A", "AB", "ABC", "AB=", "A===", "AB==", "ABC=", "ABCD",
                        "AB=C", "ABC==", "ABCD=", "AAE=", "AAF=", "AR==", "AQ==", "A-_B", "AB\tC=", "YQ==\n",
                        " YWJj ", "YW=j", "Y\rQ\n=\t="})
    same(s);
}

TEST_CASE("the public decoder agrees with libsodium on random near-base64 text") {
  std::mt19937 rng(7);
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=== \n-_*";
  for (int round = 0; round < 200000; ++round) {
    std::string s(rng() % 13, ' ');
    for (auto& c : s) c = alphabet[rng() % alphabet.size()];
    same(s);
  }
}

TEST_CASE("the public decoder bounds its output") {
  const boost::system::error_code limit = Errc::limit_exceeded;
  CHECK(crypto::base64_decode_public(std::string(100, 'A'), 10).error() == limit);
  CHECK(crypto::base64_decode_public(std::string(16, 'A'), 12).has_value());
  CHECK(crypto::base64_decode_public(std::string(20, 'A'), 12).error() == limit);
}
