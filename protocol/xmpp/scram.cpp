#include "protocol/xmpp/scram.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdexcept>
#include <vector>

#include "protocol/crypto/base64.hpp"

namespace multiend::xmpp {
namespace {

// OpenSSL's implicit fetch per call costs more than the small HMACs: fetch once.
const EVP_MD* digest(ScramHash h) {
  static EVP_MD* sha1 = [] {
    EVP_MD* md = EVP_MD_fetch(nullptr, "SHA1", nullptr);
    if (!md) throw std::runtime_error("OpenSSL: SHA-1 unavailable");
    return md;
  }();
  static EVP_MD* sha256 = [] {
    EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (!md) throw std::runtime_error("OpenSSL: SHA-256 unavailable");
    return md;
  }();
  return h == ScramHash::sha1 ? sha1 : sha256;
}

std::size_t digest_size(ScramHash h) noexcept { return h == ScramHash::sha1 ? 20 : 32; }

crypto::SecretBytes hmac(ScramHash h, crypto::ByteView key, crypto::ByteView data) {
  crypto::SecretBytes out(digest_size(h));
  unsigned int len = 0;
  if (!HMAC(digest(h), key.data(), static_cast<int>(key.size()), data.data(), data.size(), out.data(), &len) ||
      len != out.size())
    throw std::runtime_error("OpenSSL: HMAC failed");
  return out;
}

crypto::SecretBytes hash_of(ScramHash h, crypto::ByteView data) {
  crypto::SecretBytes out(digest_size(h));
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, digest(h), nullptr) != 1 || len != out.size())
    throw std::runtime_error("OpenSSL: digest failed");
  return out;
}

crypto::ByteView bytes_of(std::string_view s) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

bool printable_ascii(std::string_view s) noexcept {
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7E) return false;
  return true;
}

bool printable_ascii(crypto::ByteView s) noexcept {
  for (std::uint8_t c : s)
    if (c < 0x20 || c > 0x7E) return false;
  return true;
}

// RFC 5802 "printable": %x21-2B / %x2D-7E (no comma, no space).
bool valid_nonce(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u > 0x7E || c == ',') return false;
  }
  return true;
}

// saslname: ',' and '=' escaped as "=2C" and "=3D".
std::string saslname(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == ',') out += "=2C";
    else if (c == '=') out += "=3D";
    else out += c;
  }
  return out;
}

// Splits "a=…,b=…,…" into its attributes; every attribute is one letter, '=', value.
struct Attr {
  char name;
  std::string_view value;
};
bool split_attrs(std::string_view msg, std::vector<Attr>& out) {
  std::size_t pos = 0;
  for (;;) {
    const std::size_t comma = msg.find(',', pos);
    const std::string_view part = msg.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    if (part.size() < 2 || part[1] != '=') return false;
    const char n = part[0];
    if (!((n >= 'a' && n <= 'z') || (n >= 'A' && n <= 'Z'))) return false;
    Attr a;
    a.name = n;
    a.value = part.substr(2);
    out.push_back(a);
    if (out.size() > 32) return false;
    if (comma == std::string_view::npos) return true;
    pos = comma + 1;
  }
}

}  // namespace

std::string_view scram_mechanism_name(ScramHash h) noexcept {
  return h == ScramHash::sha1 ? "SCRAM-SHA-1" : "SCRAM-SHA-256";
}

ScramClient::ScramClient(ScramHash hash, std::string_view username, std::string_view password,
                         std::string client_nonce)
    : hash_(hash), username_(username), password_(bytes_of(password)), client_nonce_(std::move(client_nonce)) {
  if (!valid_nonce(client_nonce_)) throw std::invalid_argument("SCRAM client nonce must be printable ASCII without ','");
}

ScramClient::ScramClient(ScramHash hash, std::string_view username, const crypto::SecretBytes& password,
                         std::string client_nonce)
    : hash_(hash), username_(username), password_(password.clone()), client_nonce_(std::move(client_nonce)) {
  if (!valid_nonce(client_nonce_)) throw std::invalid_argument("SCRAM client nonce must be printable ASCII without ','");
}

ScramClient::~ScramClient() = default;
ScramClient::ScramClient(ScramClient&&) noexcept = default;
ScramClient& ScramClient::operator=(ScramClient&&) noexcept = default;

Result<void> ScramClient::fail(Errc e, std::string detail) {
  state_ = State::failed;
  detail_ = std::move(detail);
  password_.wipe();
  expected_server_signature_.wipe();
  return e;
}

Result<std::string> ScramClient::client_first() {
  if (state_ != State::initial) throw std::logic_error("ScramClient::client_first called twice");
  if (username_.empty() || !printable_ascii(username_)) {
    auto r = fail(Errc::unsupported,
                  "the username must be printable ASCII: SASLprep of other characters is not implemented");
    return r.error();
  }
  if (!printable_ascii(password_.view())) {
    auto r = fail(Errc::unsupported,
                  "the password must be printable ASCII: SASLprep (Unicode normalisation) of other "
                  "characters is not implemented, and unnormalised bytes may not match the server's key");
    return r.error();
  }
  client_first_bare_ = "n=" + saslname(username_) + ",r=" + client_nonce_;
  state_ = State::first_sent;
  return "n,," + client_first_bare_;
}

Result<std::string> ScramClient::client_final(std::string_view server_first) {
  if (state_ != State::first_sent) throw std::logic_error("ScramClient::client_final out of order");
  if (server_first.size() > kMaxMessageBytes)
    return fail(Errc::limit_exceeded, "server-first-message over " + std::to_string(kMaxMessageBytes) + " bytes").error();
  std::vector<Attr> attrs;
  if (!split_attrs(server_first, attrs))
    return fail(Errc::bad_request, "malformed server-first-message").error();
  if (attrs[0].name == 'm')
    return fail(Errc::bad_request, "server-first-message demands an unsupported extension (m=)").error();
  if (attrs.size() < 3 || attrs[0].name != 'r' || attrs[1].name != 's' || attrs[2].name != 'i')
    return fail(Errc::bad_request, "server-first-message lacks r=, s= or i= in that order").error();

  const std::string_view nonce = attrs[0].value;
  if (!valid_nonce(nonce))
    return fail(Errc::bad_request, "server nonce has characters outside printable ASCII").error();
  if (nonce.size() <= client_nonce_.size() || nonce.substr(0, client_nonce_.size()) != client_nonce_)
    return fail(Errc::bad_request, "server nonce does not extend our client nonce").error();

  if (attrs[1].value.empty()) return fail(Errc::bad_base64, "empty salt").error();
  auto salt = crypto::base64_decode(attrs[1].value, kMaxSaltBytes);
  if (!salt) {
    if (salt.error() == Errc::limit_exceeded)
      return fail(Errc::limit_exceeded, "salt over " + std::to_string(kMaxSaltBytes) + " bytes").error();
    return fail(Errc::bad_base64, "salt is not valid base64").error();
  }
  if (salt->empty()) return fail(Errc::bad_base64, "empty salt").error();

  const std::string_view it = attrs[2].value;
  std::uint64_t iterations = 0;
  bool digits = !it.empty() && it.size() <= 10;
  for (char c : it) {
    if (c < '0' || c > '9') {
      digits = false;
      break;
    }
    iterations = iterations * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (!digits) {
    if (!it.empty() && it.size() > 10 && it.find_first_not_of("0123456789") == std::string_view::npos)
      return fail(Errc::limit_exceeded, "iteration count over " + std::to_string(kMaxIterations)).error();
    return fail(Errc::bad_request, "iteration count is not a decimal number").error();
  }
  if (iterations < kMinIterations || iterations > kMaxIterations)
    return fail(Errc::limit_exceeded, "iteration count " + std::to_string(iterations) + " outside " +
                                          std::to_string(kMinIterations) + ".." + std::to_string(kMaxIterations))
        .error();

  // SaltedPassword := Hi(Normalize(password), salt, i)
  crypto::SecretBytes salted(digest_size(hash_));
  if (PKCS5_PBKDF2_HMAC(reinterpret_cast<const char*>(password_.data()), static_cast<int>(password_.size()),
                        salt->data(), static_cast<int>(salt->size()), static_cast<int>(iterations), digest(hash_),
                        static_cast<int>(salted.size()), salted.data()) != 1)
    throw std::runtime_error("OpenSSL: PBKDF2 failed");
  password_.wipe();  // no longer needed

  const std::string without_proof = "c=biws,r=" + std::string(nonce);  // biws = base64("n,,")
  std::string auth_message;
  auth_message.reserve(client_first_bare_.size() + server_first.size() + without_proof.size() + 2);
  auth_message.append(client_first_bare_).append(",").append(server_first).append(",").append(without_proof);

  crypto::SecretBytes client_key = hmac(hash_, salted.view(), bytes_of("Client Key"));
  crypto::SecretBytes stored_key = hash_of(hash_, client_key.view());
  crypto::SecretBytes client_signature = hmac(hash_, stored_key.view(), bytes_of(auth_message));
  crypto::SecretBytes proof(client_key.size());
  for (std::size_t k = 0; k < proof.size(); ++k) proof.data()[k] = client_key.data()[k] ^ client_signature.data()[k];
  crypto::SecretBytes server_key = hmac(hash_, salted.view(), bytes_of("Server Key"));
  expected_server_signature_ = hmac(hash_, server_key.view(), bytes_of(auth_message));

  state_ = State::final_sent;
  return without_proof + ",p=" + crypto::base64_encode(proof.view());
}

Result<void> ScramClient::verify_server_final(std::string_view server_final) {
  if (state_ != State::final_sent) throw std::logic_error("ScramClient::verify_server_final out of order");
  if (server_final.size() > kMaxMessageBytes)
    return fail(Errc::limit_exceeded, "server-final-message over " + std::to_string(kMaxMessageBytes) + " bytes");
  std::vector<Attr> attrs;
  if (!split_attrs(server_final, attrs)) return fail(Errc::bad_request, "malformed server-final-message");
  if (attrs[0].name == 'e') {
    // server-error-value: a token like "invalid-proof" or "other-error"; show it only if harmless.
    std::string_view e = attrs[0].value;
    bool token = !e.empty() && e.size() <= 64;
    for (char c : e)
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
        token = false;
    return fail(Errc::bad_request, "server error: " + (token ? std::string(e) : std::string("(unprintable)")));
  }
  if (attrs[0].name != 'v') return fail(Errc::bad_request, "server-final-message has neither v= nor e=");
  auto sig = crypto::base64_decode(attrs[0].value, 64);
  if (!sig) return fail(Errc::bad_signature, "server signature is not valid base64");
  if (!crypto::ct_equal(*sig, expected_server_signature_.view()))
    return fail(Errc::bad_signature, "server signature does not verify: the server does not know the password");
  expected_server_signature_.wipe();
  state_ = State::done;
  detail_.clear();
  return {};
}

}  // namespace multiend::xmpp
