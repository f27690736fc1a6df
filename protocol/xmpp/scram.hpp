// The client side of SASL SCRAM (RFC 5802) with SHA-1 and SHA-256 (RFC 7677), without channel
// binding (gs2 header "n,,": we never offer the -PLUS variants). A pure state machine: it knows
// no sockets, XML or base64 framing of XMPP — callers pass the decoded SASL payloads in and out.
// The client nonce is passed in, so tests can replay the RFC exchanges byte for byte.
//
//   ScramClient c(ScramHash::sha256, "user", "pencil", nonce);
//   auto first = c.client_first();            // -> <auth>
//   auto final = c.client_final(challenge);   // -> <response>
//   auto ok    = c.verify_server_final(data); // <success> payload: proves the server knows us
//
// Everything from the server is bounded: message length, nonce characters, salt size, and the
// iteration count (kMinIterations … kMaxIterations, so a hostile server can neither downgrade
// the work factor below RFC 5802's minimum nor make us burn minutes of CPU).
//
// SASLprep (RFC 4013): only printable ASCII (0x20…0x7E) is accepted for the username and the
// password. On that range SASLprep is the identity, so what we hash is exactly what a
// conforming server hashed. Any other character would need the stringprep mapping tables and
// Unicode NFKC normalisation; sending unnormalised bytes could silently derive a different key
// than the server stored, which looks like a wrong password. We refuse with a clear error
// (Errc::unsupported, error_detail() says why) instead.
//
// Secrets — the password, the salted password, the client and server keys and the expected
// server signature — live in crypto::SecretBytes (wiped, never printable). error_detail()
// never contains any of them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/crypto/secret.hpp"
#include "protocol/error.hpp"

namespace multiend::xmpp {

enum class ScramHash { sha1, sha256 };

// "SCRAM-SHA-1" / "SCRAM-SHA-256".
std::string_view scram_mechanism_name(ScramHash h) noexcept;

class ScramClient {
 public:
  static constexpr std::uint32_t kMinIterations = 4096;       // RFC 5802 §5.1 / RFC 7677 §4
  static constexpr std::uint32_t kMaxIterations = 1'000'000;  // ~1 s of PBKDF2 on a slow CPU
  static constexpr std::size_t kMaxMessageBytes = 4096;       // any server message
  static constexpr std::size_t kMaxSaltBytes = 1024;

  // client_nonce: printable ASCII without ',' (e.g. base64 of 18+ random bytes); a bad nonce is
  // a programmer error and throws std::invalid_argument. Username and password are checked in
  // client_first().
  ScramClient(ScramHash hash, std::string_view username, std::string_view password, std::string client_nonce);
  ScramClient(ScramHash hash, std::string_view username, const crypto::SecretBytes& password,
              std::string client_nonce);
  ~ScramClient();
  ScramClient(ScramClient&&) noexcept;
  ScramClient& operator=(ScramClient&&) noexcept;
  ScramClient(const ScramClient&) = delete;
  ScramClient& operator=(const ScramClient&) = delete;

  ScramHash hash() const noexcept { return hash_; }

  // "n,,n=<saslname>,r=<nonce>". Errc::unsupported for a username or password outside
  // printable ASCII (see SASLprep above). Call once, first.
  Result<std::string> client_first();

  // Parses server-first-message, derives the keys and returns client-final-message
  // ("c=biws,r=…,p=…"). Errors: Errc::bad_request (malformed, nonce not extending ours,
  // mandatory extension 'm='), Errc::bad_base64 (salt), Errc::limit_exceeded (iteration count
  // outside the bounds, oversized message or salt).
  Result<std::string> client_final(std::string_view server_first);

  // Checks server-final-message: "v=<signature>" compared in constant time (Errc::bad_signature
  // on mismatch), or "e=<error>" (Errc::bad_request; error_detail() names the server's error).
  Result<void> verify_server_final(std::string_view server_final);

  bool server_verified() const noexcept { return state_ == State::done; }

  // Why the last call failed, in words (no secret material): "iteration count 0 outside
  // 4096..1000000", "server error: invalid-proof", …
  const std::string& error_detail() const noexcept { return detail_; }

 private:
  enum class State { initial, first_sent, final_sent, done, failed };
  Result<void> fail(Errc e, std::string detail);

  ScramHash hash_;
  std::string username_;
  crypto::SecretBytes password_;
  std::string client_nonce_;
  std::string client_first_bare_;
  crypto::SecretBytes expected_server_signature_;
  std::string detail_;
  State state_ = State::initial;
};

}  // namespace multiend::xmpp
