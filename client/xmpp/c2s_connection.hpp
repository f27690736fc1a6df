// The client-to-server XMPP connection (RFC 6120): TCP, STARTTLS with certificate and
// hostname verification, SASL (SCRAM-SHA-256, SCRAM-SHA-1, PLAIN only over TLS), resource
// binding; then stanzas in and out. Owns the socket, the TLS session, the stream parser, the
// write queue and the matching of IQ responses. Knows nothing about what stanzas mean (no
// roster, presence or OMEMO logic). The one stanza it answers itself is an XEP-0199 ping from
// our own server; every other iq get/set goes to next_stanza(), and the application must
// answer it (RFC 6120 §8.2.3: with service-unavailable if it does not understand it).
//
// Threading: every member must be called on the connection's executor, which must be
// single-threaded (an io_context run by one thread, or a strand). One connection per object:
// to reconnect, make a new C2sConnection.
//
// Failures are thrown as C2sError (a std::runtime_error carrying a ConnectError code) whose
// what() reads like "authentication failed: not-authorized" or "certificate not trusted:
// self-signed certificate in certificate chain". Nothing printed or thrown ever contains the
// password or SCRAM key material.
//
// Waits and timeouts:
//  * connect(): every network wait (resolve, TCP connect, each server answer, the TLS
//    handshake, each write) is bounded by ConnectOptions::timeout.
//  * after connect, reading has no timeout (an idle stream is normal); iq() and ping() wait
//    for their answer at most the given time. Writes time out after ConnectOptions::timeout,
//    which closes the connection (the peer is dead or not reading).
//  * a single space is written after ConnectOptions::keepalive of write silence (RFC 6120
//    §4.6.1 whitespace keepalive), so NATs keep the mapping and a dead peer shows up as a
//    failed or stalled write.
//
// Bounds on what the server sends: ConnectOptions::max_stanza_bytes per stanza (256 KiB by
// default, see there), depth 32, at most 64 stream features and 64 SASL mechanisms, at most
// max_queued_stanzas stanzas waiting for next_stanza() (beyond that the connection stops
// reading until the application catches up; TCP flow control pushes back on the server).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "protocol/crypto/secret.hpp"
#include "protocol/jid.hpp"
#include "protocol/xml/element.hpp"

namespace multiend::client {

namespace asio = boost::asio;

enum class ConnectError {
  unreachable = 1,         // name resolution or TCP connect failed (or timed out)
  timeout,                 // the server did not answer in time, or a write stalled
  tls_failed,              // STARTTLS refused or not offered, handshake failed, CA file unusable
  certificate_untrusted,   // the chain does not verify against the CA file / system store
  hostname_mismatch,       // the certificate is valid but not for the JID's domain
  auth_failed,             // SASL failure (wrong password…), or the server failed to prove itself
  no_supported_mechanism,  // none of SCRAM-SHA-256, SCRAM-SHA-1, PLAIN(over TLS) offered
  stream_error,            // the server sent <stream:error/>
  bind_failed,             // resource binding refused or not offered
  disconnected,            // the connection ended (server closed it, network error, close())
  protocol_violation,      // bad XML, unexpected elements, data injected before TLS, …
  tls_required,            // insecure_plaintext was asked for but the server requires TLS
};

const boost::system::error_category& connect_category() noexcept;
boost::system::error_code make_error_code(ConnectError e) noexcept;

// "<category message>: <detail>". The detail may quote the server (sanitised, truncated).
class C2sError : public std::runtime_error {
 public:
  C2sError(ConnectError code, const std::string& detail);
  ConnectError code() const noexcept { return code_; }
  boost::system::error_code error_code() const noexcept { return make_error_code(code_); }
  const std::string& detail() const noexcept { return detail_; }

 private:
  ConnectError code_;
  std::string detail_;
};

// Fill it member by member (it owns a secret, so it is move-only).
struct ConnectOptions {
  std::string jid;                      // the account as a bare JID, e.g. "alice@localhost"
  crypto::SecretBytes password;         // see password_from(); never logged
  std::string host;                     // where to connect; empty: the JID's domain
  std::uint16_t port = 5222;
  std::string resource;                 // empty: the server picks one
  std::optional<std::string> ca_file;   // PEM CA certificates to trust instead of the system store
  bool insecure_plaintext = false;      // no TLS at all (test servers only); PLAIN is then refused
  std::chrono::seconds timeout{15};     // each wait during connect(); each write afterwards
  std::chrono::seconds keepalive{60};   // whitespace keepalive after this much write silence; 0: off
  std::size_t max_queued_stanzas = 1000;
  // Largest stanza accepted from the server; a bigger one ends the connection (protocol_violation).
  // Prosody limits what a client *sends* to 256 KiB but re-escapes text when it forwards (' → &apos;,
  // " → &quot;, > → &gt;), so a stanza a peer sends within its limit can reach us up to 6× larger.
  // With this default a peer can thus end our connection; ~1.6 MiB covers any forwarded stanza.
  std::size_t max_stanza_bytes = 256 * 1024;
};

crypto::SecretBytes password_from(std::string_view password);

class C2sConnection {
 public:
  explicit C2sConnection(asio::any_io_executor ex);
  // As close() when the connection is up (finished in the background: keep the executor
  // running a moment), else the socket is closed at once.
  ~C2sConnection();
  C2sConnection(const C2sConnection&) = delete;
  C2sConnection& operator=(const C2sConnection&) = delete;

  // TCP → stream → STARTTLS (chain verified against ca_file or the system store, name = the
  // JID's domain, SNI) → SASL → bind. Returns the full JID the server bound. Throws C2sError;
  // std::invalid_argument for options that cannot work (not a bare JID with a localpart, …);
  // std::logic_error when called twice. `options` is read during the call only.
  asio::awaitable<Jid> connect(const ConnectOptions& options);

  // The next received stanza (message, presence, or an iq that is not the answer to our iq()),
  // in namespace jabber:client. Waits without limit; prefer the overload with a timeout.
  // (Asio's `||` waits for the first branch to *succeed*: in `next_stanza() || timer` an error
  // from next_stanza() would surface only when the timer expires.) A stanza is never lost when
  // the wait is cancelled. Throws C2sError once the connection is gone and nothing is queued.
  asio::awaitable<xml::Element> next_stanza();
  // The same, throwing C2sError(timeout) after `timeout`; the connection stays up.
  asio::awaitable<xml::Element> next_stanza(std::chrono::steady_clock::duration timeout);

  // Queues a stanza (message/presence/iq in jabber:client, or without namespace: then it and
  // its children without namespace are put in jabber:client). Throws C2sError(disconnected)
  // when the connection is not up; std::invalid_argument for anything but a stanza.
  void send(const xml::Element& stanza);

  // Sends an iq get/set (an id is added if missing) and returns the matching result or error
  // stanza: same id and from the addressee (RFC 6120 §8.1.2.1; for an iq without 'to' also
  // from our bare JID or domain, or without 'from'). Anything else goes to next_stanza().
  // Throws C2sError(timeout) after `timeout` (the connection stays up), or the connection's
  // error if it ends meanwhile.
  asio::awaitable<xml::Element> iq(xml::Element iq, std::chrono::seconds timeout);

  // XEP-0199 ping to our server. No answer within `timeout` means a dead peer: the connection
  // is closed and C2sError(timeout) thrown. An error reply counts as alive.
  asio::awaitable<void> ping(std::chrono::seconds timeout);

  // Writes what is queued and </stream:stream>, then closes the socket once the server
  // closes its stream too (at most 5 s later). Waiters get C2sError(disconnected).
  void close();

  bool connected() const noexcept;            // bound and not closed
  // Stanzas read and waiting for next_stanza(): at most max_queued_stanzas plus what one read
  // of 16 KiB held.
  std::size_t queued_stanzas() const noexcept;
  const std::optional<Jid>& jid() const noexcept;  // the bound full JID
  const std::string& mechanism() const noexcept;   // SASL mechanism used, e.g. "SCRAM-SHA-1"
  bool encrypted() const noexcept;            // TLS is active
  // Why the connection ended (nullopt while it is up or before connect()).
  std::optional<C2sError> error() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;  // shared with the reader/writer coroutines
};

}  // namespace multiend::client

namespace boost::system {
template <>
struct is_error_code_enum<multiend::client::ConnectError> : std::true_type {};
}  // namespace boost::system
