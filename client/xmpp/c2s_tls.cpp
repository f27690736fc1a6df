// STARTTLS (RFC 6120 §5): the client TLS context (TLS 1.2 or later, the CA file or the system
// store) and the upgrade of the TCP socket, verifying the chain and that the certificate names
// the JID's domain (host name with SNI, or an IP address literal). What a failure means for the
// user is decided here: certificate_untrusted, hostname_mismatch, tls_failed or timeout.
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <utility>

#include "client/xmpp/c2s_impl.hpp"
#include "client/xmpp/c2s_text.hpp"
#include "client/xmpp/c2s_timeout.hpp"

namespace multiend::client {

using namespace c2s_detail;

void C2sConnection::Impl::setup_tls_context(const std::optional<std::string>& ca_file) {
  ssl_ctx.emplace(asio::ssl::context::tls_client);
  ssl_ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1 | asio::ssl::context::no_compression);
  SSL_CTX_set_min_proto_version(ssl_ctx->native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  if (ca_file) {
    ssl_ctx->load_verify_file(*ca_file, ec);
    if (ec) throw C2sError(ConnectError::tls_failed, "cannot load the CA file " + *ca_file + ": " + ec.message());
  } else {
    ssl_ctx->set_default_verify_paths(ec);
    if (ec) throw C2sError(ConnectError::tls_failed, "cannot load the system CA store: " + ec.message());
  }
  ssl_ctx->set_verify_mode(asio::ssl::verify_peer);
}

asio::awaitable<void> C2sConnection::Impl::starttls() {
  phase = "STARTTLS";
  co_await write_timed("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
  xml::Element answer = co_await next_element();
  if (answer.ns() == kTlsNs && answer.name() == "failure")
    throw C2sError(ConnectError::tls_failed, "the server refused STARTTLS");
  if (answer.ns() != kTlsNs || answer.name() != "proceed")
    throw C2sError(ConnectError::protocol_violation, "expected <proceed/>, got " + element_name(answer));
  restart_stream("<proceed/>");

  tls.emplace(std::move(socket), *ssl_ctx);
  SSL* ssl = tls->native_handle();
  const std::string name = strip_brackets(domain);
  if (is_ip_literal(name)) {
    // SNI carries host names only (RFC 6066 §3); an address is checked against iPAddress SANs.
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) != 1)
      throw C2sError(ConnectError::tls_failed, "cannot set the expected address");
  } else {
    if (SSL_set_tlsext_host_name(ssl, name.c_str()) != 1 || SSL_set1_host(ssl, name.c_str()) != 1)
      throw C2sError(ConnectError::tls_failed, "cannot set the expected host name");
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  }

  phase = "the TLS handshake";
  std::function<void()> on_expire = [this] {
    boost::system::error_code ec;
    lowest().cancel(ec);
  };
  bool done = false;
  try {
    done = co_await with_timeout_void(tls->async_handshake(asio::ssl::stream_base::client, asio::use_awaitable),
                                      timeout, &on_expire);
  } catch (const boost::system::system_error& e) {
    const long v = SSL_get_verify_result(ssl);
    if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
      throw C2sError(ConnectError::hostname_mismatch, "the certificate is not valid for " + domain);
    if (v != X509_V_OK) throw C2sError(ConnectError::certificate_untrusted, X509_verify_cert_error_string(v));
    if (state == State::closed && error) throw *error;
    if (e.code() == asio::error::eof || e.code() == asio::ssl::error::stream_truncated ||
        e.code() == asio::error::connection_reset)
      throw C2sError(ConnectError::tls_failed, "the server closed the connection during the TLS handshake");
    throw C2sError(ConnectError::tls_failed, "TLS handshake failed: " + e.code().message());
  }
  if (!done) throw C2sError(ConnectError::timeout, "TLS handshake not completed within " + seconds_text(timeout));
  // verify_peer already enforces this; keep the check next to the decision.
  if (SSL_get_verify_result(ssl) != X509_V_OK || !SSL_get0_peer_certificate(ssl))
    throw C2sError(ConnectError::certificate_untrusted, "no verified server certificate");
}

}  // namespace multiend::client
