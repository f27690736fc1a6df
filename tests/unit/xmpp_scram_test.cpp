// SCRAM client: the RFC 5802 (SHA-1) and RFC 7677 (SHA-256) example exchanges byte for byte,
// and refusal of everything a hostile or broken server can send.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>

#include "protocol/xmpp/scram.hpp"

using namespace multiend;
using namespace multiend::xmpp;

namespace {

constexpr const char* kSha1Nonce = "fyko+d2lbbFgONRv9qkxdawL";
constexpr const char* kSha1ServerFirst = "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
constexpr const char* kSha1ClientFinal = "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=";
constexpr const char* kSha1ServerFinal = "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=";

constexpr const char* kSha256Nonce = "rOprNGfwEbeRWgbNEkqO";
constexpr const char* kSha256ServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr const char* kSha256ClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr const char* kSha256ServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

ScramClient sha1_after_first() {
  ScramClient c(ScramHash::sha1, "user", "pencil", kSha1Nonce);
  REQUIRE(c.client_first().has_value());
  return c;
}

ScramClient sha1_after_final() {
  ScramClient c = sha1_after_first();
  REQUIRE(c.client_final(kSha1ServerFirst).has_value());
  return c;
}

void check_final_fails(std::string_view server_first, Errc expected, std::string_view detail_part) {
  ScramClient c = sha1_after_first();
  auto r = c.client_final(server_first);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == expected);
  CHECK_MESSAGE(c.error_detail().find(detail_part) != std::string::npos, c.error_detail());
  CHECK_FALSE(c.server_verified());
}

}  // namespace

TEST_CASE("RFC 5802 SCRAM-SHA-1 example") {
  ScramClient c(ScramHash::sha1, "user", "pencil", kSha1Nonce);
  CHECK(scram_mechanism_name(c.hash()) == "SCRAM-SHA-1");
  auto first = c.client_first();
  REQUIRE(first.has_value());
  CHECK(*first == "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
  auto final = c.client_final(kSha1ServerFirst);
  REQUIRE(final.has_value());
  CHECK(*final == kSha1ClientFinal);
  CHECK_FALSE(c.server_verified());
  REQUIRE(c.verify_server_final(kSha1ServerFinal).has_value());
  CHECK(c.server_verified());
}

TEST_CASE("RFC 7677 SCRAM-SHA-256 example") {
  ScramClient c(ScramHash::sha256, "user", "pencil", kSha256Nonce);
  CHECK(scram_mechanism_name(c.hash()) == "SCRAM-SHA-256");
  auto first = c.client_first();
  REQUIRE(first.has_value());
  CHECK(*first == "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
  auto final = c.client_final(kSha256ServerFirst);
  REQUIRE(final.has_value());
  CHECK(*final == kSha256ClientFinal);
  REQUIRE(c.verify_server_final(kSha256ServerFinal).has_value());
  CHECK(c.server_verified());
}

TEST_CASE("password as SecretBytes gives the same exchange") {
  const std::string pw = "pencil";
  crypto::SecretBytes secret(crypto::ByteView(reinterpret_cast<const std::uint8_t*>(pw.data()), pw.size()));
  ScramClient c(ScramHash::sha256, "user", secret, kSha256Nonce);
  REQUIRE(c.client_first().has_value());
  auto final = c.client_final(kSha256ServerFirst);
  REQUIRE(final.has_value());
  CHECK(*final == kSha256ClientFinal);
}

TEST_CASE("username with ',' and '=' is escaped") {
  ScramClient c(ScramHash::sha1, "a,b=c", "pw", "nonce");
  auto first = c.client_first();
  REQUIRE(first.has_value());
  CHECK(*first == "n,,n=a=2Cb=3Dc,r=nonce");
}

TEST_CASE("non-ASCII or control characters in password or username are refused") {
  {
    ScramClient c(ScramHash::sha256, "user", "p\xC3\xA4XYZsecret", "nonce");
    auto r = c.client_first();
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == Errc::unsupported);
    CHECK(c.error_detail().find("password must be printable ASCII") != std::string::npos);
    CHECK(c.error_detail().find("XYZsecret") == std::string::npos);  // never echoes the password
  }
  {
    ScramClient c(ScramHash::sha256, "user", std::string_view("pw\0x", 4), "nonce");
    CHECK(c.client_first().error() == Errc::unsupported);
  }
  {
    ScramClient c(ScramHash::sha256, "\xC3\xA4lice", "pw", "nonce");
    CHECK(c.client_first().error() == Errc::unsupported);
  }
  {
    ScramClient c(ScramHash::sha256, "", "pw", "nonce");
    CHECK(c.client_first().error() == Errc::unsupported);
  }
}

TEST_CASE("a bad client nonce is a programmer error") {
  CHECK_THROWS_AS(ScramClient(ScramHash::sha1, "u", "p", ""), std::invalid_argument);
  CHECK_THROWS_AS(ScramClient(ScramHash::sha1, "u", "p", "a,b"), std::invalid_argument);
  CHECK_THROWS_AS(ScramClient(ScramHash::sha1, "u", "p", "a b"), std::invalid_argument);
}

TEST_CASE("calls out of order throw") {
  ScramClient c(ScramHash::sha1, "user", "pencil", kSha1Nonce);
  CHECK_THROWS_AS((void)c.client_final(kSha1ServerFirst), std::logic_error);
  REQUIRE(c.client_first().has_value());
  CHECK_THROWS_AS((void)c.client_first(), std::logic_error);
  CHECK_THROWS_AS((void)c.verify_server_final(kSha1ServerFinal), std::logic_error);
}

TEST_CASE("server nonce must extend ours") {
  check_final_fails("r=XXXX+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096", Errc::bad_request,
                    "does not extend");
  // exactly our nonce: the server added nothing
  check_final_fails("r=fyko+d2lbbFgONRv9qkxdawL,s=QSXCR+Q6sek8bf92,i=4096", Errc::bad_request, "does not extend");
  check_final_fails("r=fyko+d2lbbFgONRv9qkxdawL\x01x,s=QSXCR+Q6sek8bf92,i=4096", Errc::bad_request,
                    "printable");
}

TEST_CASE("malformed server-first-message") {
  check_final_fails("", Errc::bad_request, "malformed");
  check_final_fails("garbage", Errc::bad_request, "malformed");
  check_final_fails("r=fyko+d2lbbFgONRv9qkxdawL3rfc,i=4096", Errc::bad_request, "r=, s= or i=");
  check_final_fails("s=QSXCR+Q6sek8bf92,r=fyko+d2lbbFgONRv9qkxdawL3rfc,i=4096", Errc::bad_request, "r=, s= or i=");
  check_final_fails("m=ext,r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=4096", Errc::bad_request, "m=");
  check_final_fails(std::string(5000, 'a'), Errc::limit_exceeded, "over 4096 bytes");
}

TEST_CASE("bad salt") {
  check_final_fails("r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=!!!notbase64,i=4096", Errc::bad_base64, "base64");
  check_final_fails("r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=,i=4096", Errc::bad_base64, "empty salt");
  check_final_fails("r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=" + std::string(1500, 'A') + ",i=4096", Errc::limit_exceeded,
                    "salt over");
}

TEST_CASE("iteration count is bounded") {
  const std::string prefix = "r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=";
  check_final_fails(prefix + "0", Errc::limit_exceeded, "iteration count 0 outside 4096..1000000");
  check_final_fails(prefix + "4095", Errc::limit_exceeded, "outside");
  check_final_fails(prefix + "1000001", Errc::limit_exceeded, "outside");
  check_final_fails(prefix + "4294967296", Errc::limit_exceeded, "outside");
  check_final_fails(prefix + "99999999999999999999999", Errc::limit_exceeded, "over 1000000");
  check_final_fails(prefix + "-4096", Errc::bad_request, "decimal");
  check_final_fails(prefix + "0x1000", Errc::bad_request, "decimal");
  check_final_fails(prefix, Errc::bad_request, "decimal");
  // extensions after i= are allowed
  ScramClient c = sha1_after_first();
  CHECK(c.client_final(std::string(kSha1ServerFirst) + ",x=ext").has_value());
}

TEST_CASE("server signature must verify") {
  {
    ScramClient c = sha1_after_final();
    auto r = c.verify_server_final("v=rmF9pqV8S7suAoZWja4dJRkFsKQ=x");  // bad base64
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == Errc::bad_signature);
  }
  {
    ScramClient c = sha1_after_final();
    auto r = c.verify_server_final("v=AmF9pqV8S7suAoZWja4dJRkFsKQ=");  // one flipped byte
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == Errc::bad_signature);
    CHECK(c.error_detail().find("does not verify") != std::string::npos);
    CHECK_FALSE(c.server_verified());
  }
  {
    ScramClient c = sha1_after_final();
    CHECK(c.verify_server_final("v=").error() == Errc::bad_signature);
  }
  {
    ScramClient c = sha1_after_final();
    CHECK(c.verify_server_final("x=1").error() == Errc::bad_request);
  }
  {
    // the SHA-256 signature for the SHA-1 exchange
    ScramClient c = sha1_after_final();
    CHECK(c.verify_server_final(kSha256ServerFinal).error() == Errc::bad_signature);
  }
}

TEST_CASE("server error e= is an error value with the server's reason") {
  ScramClient c = sha1_after_final();
  auto r = c.verify_server_final("e=invalid-proof");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == Errc::bad_request);
  CHECK(c.error_detail() == "server error: invalid-proof");

  ScramClient d = sha1_after_final();
  CHECK(d.verify_server_final("e=<script>").error() == Errc::bad_request);
  CHECK(d.error_detail() == "server error: (unprintable)");
}
