// SASL authentication (RFC 6120 §6): picks SCRAM-SHA-256, then SCRAM-SHA-1, then PLAIN (only
// over TLS), runs the exchange and insists that a SCRAM server proves it knows the password.
// The SCRAM arithmetic is protocol/xmpp/scram.hpp; this file only moves its messages. Nothing
// here may put the password or key material into an error message, and what is written to the
// socket with credentials in it is wiped afterwards.
#include <sodium.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "client/xmpp/c2s_impl.hpp"
#include "client/xmpp/c2s_text.hpp"
#include "protocol/crypto/base64.hpp"

namespace multiend::client {

using namespace c2s_detail;

namespace {

constexpr std::size_t kMaxMechanisms = 64;

// Zeroes a string on scope exit (credentials on their way to the socket).
class WipeString {
 public:
  explicit WipeString(std::string& s) : s_(s) {}
  ~WipeString() {
    if (!s_.empty()) sodium_memzero(s_.data(), s_.size());
  }
  WipeString(const WipeString&) = delete;
  WipeString& operator=(const WipeString&) = delete;

 private:
  std::string& s_;
};

}  // namespace

asio::awaitable<void> C2sConnection::Impl::authenticate(const ConnectOptions& o, const xml::Element& features) {
  phase = "authentication";
  const xml::Element* mechs = features.child("mechanisms", kSaslNs);
  if (!mechs) throw C2sError(ConnectError::no_supported_mechanism, "the server offers no SASL mechanisms");
  std::vector<std::string> offered;
  for (const xml::Element* m : mechs->children("mechanism", kSaslNs)) {
    if (offered.size() >= kMaxMechanisms)
      throw C2sError(ConnectError::protocol_violation, "more than " + std::to_string(kMaxMechanisms) + " SASL mechanisms");
    offered.push_back(sanitize(m->text(), 40));
  }
  auto has = [&](std::string_view name) { return std::find(offered.begin(), offered.end(), name) != offered.end(); };

  if (has("SCRAM-SHA-256")) {
    co_await authenticate_scram(o, xmpp::ScramHash::sha256);
  } else if (has("SCRAM-SHA-1")) {
    co_await authenticate_scram(o, xmpp::ScramHash::sha1);
  } else if (has("PLAIN") && tls) {
    co_await authenticate_plain(o);
  } else {
    std::string list;
    for (const auto& m : offered) list += (list.empty() ? "" : ", ") + m;
    throw C2sError(ConnectError::no_supported_mechanism,
                   "the server offers " + (list.empty() ? std::string("none") : list) +
                       "; we support SCRAM-SHA-256, SCRAM-SHA-1 and PLAIN (over TLS only)");
  }
}

void C2sConnection::Impl::sasl_failed(const xml::Element& failure) {
  throw C2sError(ConnectError::auth_failed, describe_condition(failure, kSaslNs));
}

// A <challenge/>, <success/> or <failure/>; anything else is a violation.
asio::awaitable<xml::Element> C2sConnection::Impl::next_sasl_element() {
  xml::Element el = co_await next_element();
  if (el.ns() != kSaslNs || (el.name() != "challenge" && el.name() != "success" && el.name() != "failure"))
    throw C2sError(ConnectError::protocol_violation, "unexpected " + element_name(el) + during());
  if (el.name() == "failure") sasl_failed(el);
  co_return el;
}

std::string C2sConnection::Impl::decoded_payload(const xml::Element& el) {
  auto payload = sasl_payload(el);
  if (!payload) throw C2sError(ConnectError::protocol_violation, "SASL data from the server is not valid base64");
  return std::move(*payload);
}

asio::awaitable<void> C2sConnection::Impl::authenticate_scram(const ConnectOptions& o, xmpp::ScramHash hash) {
  mechanism = std::string(xmpp::scram_mechanism_name(hash));
  xmpp::ScramClient scram(hash, local, o.password, random_token(24));
  auto first = scram.client_first();
  if (!first) throw C2sError(ConnectError::auth_failed, mechanism + ": " + scram.error_detail());
  const std::string first_b64 =
      crypto::base64_encode(crypto::ByteView(reinterpret_cast<const std::uint8_t*>(first->data()), first->size()));
  const std::string auth = sasl_auth(mechanism, first_b64);
  co_await write_timed(auth);

  xml::Element challenge = co_await next_sasl_element();
  if (challenge.name() != "challenge")
    throw C2sError(ConnectError::protocol_violation, "the server reported success before SCRAM completed");
  const std::string server_first = decoded_payload(challenge);
  auto final = scram.client_final(server_first);
  if (!final) throw C2sError(ConnectError::auth_failed, mechanism + ": " + scram.error_detail());
  std::string final_b64 =
      crypto::base64_encode(crypto::ByteView(reinterpret_cast<const std::uint8_t*>(final->data()), final->size()));
  std::string wire = sasl_response(final_b64);
  {
    WipeString w1(*final), w2(final_b64), w3(wire);
    co_await write_timed(wire);
  }

  xml::Element answer = co_await next_sasl_element();
  if (answer.name() == "challenge") {
    // Some servers send server-final-message as a challenge and <success/> without data.
    const std::string server_final = decoded_payload(answer);
    co_await verify_scram_final(scram, server_final);
    const std::string empty_response = sasl_response(std::string());
    co_await write_timed(empty_response);
    answer = co_await next_sasl_element();
    if (answer.name() != "success")
      throw C2sError(ConnectError::protocol_violation, "expected <success/> after the SCRAM exchange");
  }
  const std::string server_final = decoded_payload(answer);
  if (!server_final.empty()) {
    if (scram.server_verified())
      throw C2sError(ConnectError::protocol_violation, "a second SCRAM server-final-message");
    co_await verify_scram_final(scram, server_final);
  }
  if (!scram.server_verified())
    throw C2sError(ConnectError::auth_failed,
                   "the server reported success without proving that it knows the password (no SCRAM signature)");
}

asio::awaitable<void> C2sConnection::Impl::verify_scram_final(xmpp::ScramClient& scram, const std::string& server_final) {
  auto ok = scram.verify_server_final(server_final);
  if (!ok) throw C2sError(ConnectError::auth_failed, mechanism + ": " + scram.error_detail());
  co_return;
}

asio::awaitable<void> C2sConnection::Impl::authenticate_plain(const ConnectOptions& o) {
  mechanism = "PLAIN";
  for (std::uint8_t c : o.password.view())
    if (c == 0) throw std::invalid_argument("the password contains a NUL byte");
  // authzid (empty) NUL authcid NUL passwd (RFC 4616)
  crypto::SecretBytes message(local.size() + 2 + o.password.size());
  std::uint8_t* p = message.data();
  *p++ = 0;
  std::copy(local.begin(), local.end(), p);
  p += local.size();
  *p++ = 0;
  std::copy(o.password.view().begin(), o.password.view().end(), p);
  std::string b64 = crypto::base64_encode(message.view());
  std::string wire = sasl_auth("PLAIN", b64);
  {
    WipeString w1(b64), w2(wire);
    co_await write_timed(wire);
  }
  xml::Element answer = co_await next_sasl_element();
  if (answer.name() != "success")
    throw C2sError(ConnectError::protocol_violation, "a challenge in the PLAIN exchange");
}

}  // namespace multiend::client
