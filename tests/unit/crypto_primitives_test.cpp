// RFC 7748 (X25519), RFC 8032 (Ed25519), RFC 5869 (HKDF), RFC 4231 (HMAC) vectors, plus
// AES-256-CBC, base64 and the secret types.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "protocol/crypto/aes_cbc.hpp"
#include "protocol/crypto/base64.hpp"
#include "protocol/crypto/ed25519.hpp"
#include "protocol/crypto/kdf.hpp"
#include "protocol/crypto/x25519.hpp"
#include "tests/support/hex.hpp"

using namespace multiend;
using namespace multiend::crypto;
using test::hex;
using test::unhex;

TEST_CASE("X25519: RFC 7748 section 5.2 scalar multiplication") {
  auto k = test::secret_hex<32>("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
  auto u = test::public_hex<X25519Public>("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c");
  auto r = x25519(k, u);
  REQUIRE(r.has_value());
  CHECK(hex(r->view()) == "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
}

TEST_CASE("X25519: RFC 7748 section 6.1 Diffie-Hellman") {
  auto a = X25519KeyPair::from_private(
      test::secret_hex<32>("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
  auto b = X25519KeyPair::from_private(
      test::secret_hex<32>("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"));
  CHECK(hex(a.pub.view()) == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  CHECK(hex(b.pub.view()) == "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  auto s1 = x25519(a.priv, b.pub);
  auto s2 = x25519(b.priv, a.pub);
  REQUIRE(s1.has_value());
  REQUIRE(s2.has_value());
  CHECK(*s1 == *s2);
  CHECK(hex(s1->view()) == "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
}

TEST_CASE("X25519: small-order peer key is rejected") {
  DeterministicRng rng(1);
  auto a = X25519KeyPair::generate(rng);
  X25519Public zero{};
  CHECK(x25519(a.priv, zero).error() == Errc::bad_key);
}

TEST_CASE("Ed25519: RFC 8032 test 1 and test 2") {
  auto k1 = IdentityKeyPair::from_seed(
      test::secret_hex<32>("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"));
  CHECK(hex(k1.pub().view()) == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  auto sig1 = k1.sign({});
  CHECK(hex(sig1.view()) ==
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46b"
        "d25bf5f0595bbe24655141438e7a100b");
  CHECK(ed25519_verify(k1.pub(), {}, sig1));

  auto k2 = IdentityKeyPair::from_seed(
      test::secret_hex<32>("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"));
  CHECK(hex(k2.pub().view()) == "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
  const std::uint8_t msg[] = {0x72};
  auto sig2 = k2.sign(ByteView(msg, 1));
  CHECK(hex(sig2.view()) ==
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c"
        "387b2eaeb4302aeeb00d291612bb0c00");
  CHECK(ed25519_verify(k2.pub(), ByteView(msg, 1), sig2));
  sig2.bytes[0] ^= 1;
  CHECK_FALSE(ed25519_verify(k2.pub(), ByteView(msg, 1), sig2));
}

TEST_CASE("Ed25519 to X25519: both forms agree on DH") {
  DeterministicRng rng(7);
  auto ik = IdentityKeyPair::generate(rng);
  auto eph = X25519KeyPair::generate(rng);
  auto ik_x_pub = ed25519_pub_to_x25519(ik.pub());
  REQUIRE(ik_x_pub.has_value());
  auto s1 = x25519(ik.x25519_private(), eph.pub);
  auto s2 = x25519(eph.priv, *ik_x_pub);
  REQUIRE(s1.has_value());
  REQUIRE(s2.has_value());
  CHECK(*s1 == *s2);
  Ed25519Public bad{};  // the identity point: small order
  CHECK(ed25519_pub_to_x25519(bad).error() == Errc::bad_key);
}

TEST_CASE("HKDF-SHA-256: RFC 5869 test cases 1 and 3") {
  auto ikm = unhex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
  auto salt = unhex("000102030405060708090a0b0c");
  auto info = unhex("f0f1f2f3f4f5f6f7f8f9");
  std::vector<std::uint8_t> okm(42);
  hkdf_sha256(ikm, salt, std::string_view(reinterpret_cast<const char*>(info.data()), info.size()), okm);
  CHECK(hex(okm) ==
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
  hkdf_sha256(ikm, {}, "", okm);
  CHECK(hex(okm) ==
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

TEST_CASE("HMAC-SHA-256: RFC 4231 test case 2") {
  std::string key = "Jefe", data = "what do ya want for nothing?";
  auto mac = hmac_sha256(ByteView(reinterpret_cast<const std::uint8_t*>(key.data()), key.size()),
                         ByteView(reinterpret_cast<const std::uint8_t*>(data.data()), data.size()));
  CHECK(hex(mac.view()) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Split input gives the same tag.
  auto split = hmac_sha256(ByteView(reinterpret_cast<const std::uint8_t*>(key.data()), key.size()),
                           ByteView(reinterpret_cast<const std::uint8_t*>(data.data()), 10),
                           ByteView(reinterpret_cast<const std::uint8_t*>(data.data()) + 10, data.size() - 10));
  CHECK(split == mac);
}

TEST_CASE("AES-256-CBC: NIST SP 800-38A F.2.5 first block, PKCS#7 round trip, bad padding") {
  auto key = test::secret_hex<32>("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
  auto iv = unhex("000102030405060708090a0b0c0d0e0f");
  auto pt = unhex("6bc1bee22e409f96e93d7e117393172a");
  auto ct = aes256_cbc_encrypt(key, iv, pt);
  REQUIRE(ct.size() == 32);  // one block plus a full padding block
  CHECK(hex(ByteView(ct).first(16)) == "f58c4c04d6e5f1ba779eabfb5f7bfbd6");
  auto back = aes256_cbc_decrypt(key, iv, ct);
  REQUIRE(back.has_value());
  CHECK(hex(back->view()) == hex(pt));
  ct[31] ^= 0x55;
  CHECK(aes256_cbc_decrypt(key, iv, ct).error() == Errc::bad_padding);
  CHECK(aes256_cbc_decrypt(key, iv, ByteView(ct).first(15)).error() == Errc::bad_padding);
}

TEST_CASE("base64: round trip, whitespace accepted, garbage and oversize refused") {
  auto data = unhex("00ff10203040506070");
  auto text = base64_encode(data);
  CHECK(text == "AP8QIDBAUGBw");
  auto back = base64_decode(" AP8Q\nIDBA\r\nUGBw ");
  REQUIRE(back.has_value());
  CHECK(hex(*back) == hex(data));
  CHECK(base64_decode("AP8Q!DBA").error() == Errc::bad_base64);
  CHECK(base64_decode("AP8QI").error() == Errc::bad_base64);
  CHECK(base64_decode(std::string(1000, 'A'), 16).error() == Errc::limit_exceeded);
  CHECK(base64_decode("").value().empty());
}

TEST_CASE("secrets: move wipes the source, clone is equal, comparison is by value") {
  auto a = test::secret_hex<32>("0101010101010101010101010101010101010101010101010101010101010101");
  auto b = a.clone();
  CHECK(a == b);
  Secret<32> c = std::move(a);
  CHECK(c == b);
  CHECK(a == Secret<32>());  // moved-from is zeroed
  SecretBytes s(ByteView(c.data(), 32));
  s.resize(4);
  CHECK(s.size() == 4);
}
