// C2sConnection against a real Prosody 0.12 (deploy/testbed) and, for what Prosody cannot
// show, a small scripted XMPP server in this process (SCRAM-SHA-256, a certificate for another
// name, a server that forges its SCRAM signature, injects plaintext after <proceed/>, stays
// silent, or ignores iqs).
//
// Reads the testbed's environment: MULTIEND_C2S_PORT, MULTIEND_CA_FILE, MULTIEND_XMPP_HOST,
// MULTIEND_USER_DOMAIN (users alice…eve, password NAME+"pw"). Needs the openssl command to make
// a second CA. Prints one line per check and ends with "N passed, M failed"; exit status 0 only
// if nothing failed. tests/integration/c2s_connection_test.sh runs it against a fresh testbed.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "client/xmpp/c2s_connection.hpp"
#include "protocol/crypto/base64.hpp"
#include "protocol/xml/serializer.hpp"
#include "protocol/xml/stream_parser.hpp"

using namespace multiend;
using namespace multiend::client;
using tcp = boost::asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

asio::io_context* g_ioc = nullptr;
int g_passed = 0;
int g_failed = 0;
std::string g_test;

void check(bool ok, const std::string& what) {
  if (ok) {
    ++g_passed;
    std::cout << "  ok    " << what << "\n";
  } else {
    ++g_failed;
    std::cout << "  FAIL  " << what << "\n";
  }
}

std::string env(const char* name, const char* fallback = nullptr) {
  const char* v = std::getenv(name);
  if (v && *v) return v;
  if (fallback) return fallback;
  std::cerr << "missing environment variable " << name << " (source the testbed env: deploy/testbed up)\n";
  std::exit(2);
}

struct Testbed {
  std::string host;
  std::uint16_t port = 0;
  std::string ca_file;
  std::string domain;
  std::string tmp;  // our scratch dir: a second CA and certificates for the scripted server
};
Testbed g_tb;

bool run_shell(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }

// A second CA with two server certificates: SAN localhost and SAN other.example.
void make_certificates() {
  char dir[] = "/tmp/c2s-test.XXXXXX";
  if (!mkdtemp(dir)) {
    std::perror("mkdtemp");
    std::exit(2);
  }
  g_tb.tmp = dir;
  const std::string d = g_tb.tmp;
  const std::string ca =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -keyout " + d +
      "/ca2.key -out " + d + "/ca2.crt -subj '/CN=Another CA' -addext basicConstraints=critical,CA:TRUE "
      "-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null";
  auto leaf = [&](const std::string& name, const std::string& san) {
    return "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + d + "/" + name +
           ".key -out " + d + "/" + name + ".csr -subj '/CN=x' 2>/dev/null && printf 'basicConstraints=CA:FALSE\\n"
           "extendedKeyUsage=serverAuth\\nsubjectAltName=" + san + "\\n' > " + d + "/" + name +
           ".ext && openssl x509 -req -in " + d + "/" + name + ".csr -CA " + d + "/ca2.crt -CAkey " + d +
           "/ca2.key -CAcreateserial -days 2 -extfile " + d + "/" + name + ".ext -out " + d + "/" + name +
           ".crt 2>/dev/null";
  };
  if (!run_shell(ca) || !run_shell(leaf("localhost", "DNS:localhost")) ||
      !run_shell(leaf("other", "DNS:other.example"))) {
    std::cerr << "openssl could not make the test certificates in " << d << "\n";
    std::exit(2);
  }
}

ConnectOptions options(const std::string& user, const std::string& password) {
  ConnectOptions o;
  o.jid = user + "@" + g_tb.domain;
  o.password = password_from(password);
  o.host = g_tb.host;
  o.port = g_tb.port;
  o.ca_file = g_tb.ca_file;
  o.timeout = std::chrono::seconds(5);
  return o;
}

asio::awaitable<void> sleep_for(Clock::duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

// The error connect() throws, or nullopt if it succeeded.
asio::awaitable<std::optional<C2sError>> connect_error(const ConnectOptions& o) {
  C2sConnection c(co_await asio::this_coro::executor);
  try {
    co_await c.connect(o);
  } catch (const C2sError& e) {
    co_return e;
  }
  c.close();
  co_return std::nullopt;
}

void check_error(const std::optional<C2sError>& e, ConnectError code, const std::string& text,
                 const std::string& what) {
  if (!e) {
    check(false, what + " (connect succeeded)");
    return;
  }
  std::cout << "        -> \"" << e->what() << "\"\n";
  check(e->code() == code, what + ": code");
  check(std::string(e->what()).find(text) != std::string::npos, what + ": message mentions \"" + text + "\"");
}

// ---------------------------------------------------------------------------------------------
// A scripted server: one connection, STARTTLS, SCRAM-SHA-256 for user "user" / "secret", bind.

enum class Script { silent, inject_after_proceed, login, forged_signature, offer_plain_only };

std::string hmac256(std::string_view key, std::string_view data) {
  unsigned char out[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string sha256(std::string_view data) {
  unsigned char out[32];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
  return std::string(reinterpret_cast<char*>(out), 32);
}

std::string b64(std::string_view s) {
  return crypto::base64_encode(crypto::ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
}

std::string unb64(std::string_view s) {
  auto r = crypto::base64_decode(s);
  if (!r) throw std::runtime_error("fake server: bad base64 from the client");
  return std::string(r->begin(), r->end());
}

class FakeServer : public std::enable_shared_from_this<FakeServer> {
 public:
  FakeServer(asio::io_context& ioc, Script script, const std::string& cert)
      : acceptor_(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        ctx_(asio::ssl::context::tls_server),
        script_(script) {
    ctx_.use_certificate_chain_file(g_tb.tmp + "/" + cert + ".crt");
    ctx_.use_private_key_file(g_tb.tmp + "/" + cert + ".key", asio::ssl::context::pem);
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  bool saw_whitespace_chunk = false;  // a read after bind that held only whitespace (keepalive)
  bool ignore_iqs = false;          // never answer an iq after bind (timeouts)
  std::string failure;              // what went wrong on the server side, if anything

  // `self` keeps the server alive until its coroutine ends.
  asio::awaitable<void> run(std::shared_ptr<FakeServer> /*self*/) {
    try {
      tcp::socket s = co_await acceptor_.async_accept(asio::use_awaitable);
      socket_.emplace(std::move(s));
      if (script_ == Script::silent) {
        co_await sleep_for(std::chrono::seconds(30));
        co_return;
      }
      co_await expect_header();
      // GCC 12: no temporaries with destructors inside co_await expressions.
      const std::string tls_features =
          header() +
          "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
          "</stream:features>";
      co_await write(tls_features);
      xml::Element st = co_await element();
      if (st.name() != "starttls") throw std::runtime_error("expected starttls");
      if (script_ == Script::inject_after_proceed) {
        const std::string injected = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><stream:features/>";
        co_await write(injected);
        co_await sleep_for(std::chrono::seconds(5));
        co_return;
      }
      const std::string proceed = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
      co_await write(proceed);
      tls_.emplace(std::move(*socket_), ctx_);
      co_await tls_->async_handshake(asio::ssl::stream_base::server, asio::use_awaitable);
      parser_.reset();
      co_await expect_header();
      if (script_ == Script::offer_plain_only) {
        const std::string odd = header() +
                                "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                                "<mechanism>X-OAUTH2</mechanism></mechanisms></stream:features>";
        co_await write(odd);
        co_await sleep_for(std::chrono::seconds(5));
        co_return;
      }
      const std::string sasl_features = header() +
                                        "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                                        "<mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1</mechanism>"
                                        "<mechanism>SCRAM-SHA-256</mechanism></mechanisms></stream:features>";
      co_await write(sasl_features);
      co_await scram();
      parser_.reset();
      co_await expect_header();
      const std::string bind_features =
          header() + "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>";
      co_await write(bind_features);
      xml::Element bind = co_await element();
      const xml::Element* res = bind.child("bind", "urn:ietf:params:xml:ns:xmpp-bind");
      const xml::Element* r = res ? res->child("resource", "urn:ietf:params:xml:ns:xmpp-bind") : nullptr;
      const std::string resource = r ? r->text() : std::string("generated");
      const std::string bound = "<iq type='result' id='" + std::string(bind.attr("id").value_or("")) +
                                "'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>user@localhost/" + resource +
                                "</jid></bind></iq>";
      co_await write(bound);
      // Echo: answer iqs with an empty result (unless told not to), record everything else.
      recording_ = true;
      for (;;) {
        xml::Element e = co_await element();
        if (e.name() == "iq" && !ignore_iqs) {
          const std::string result = "<iq type='result' id='" + std::string(e.attr("id").value_or("")) + "'/>";
          co_await write(result);
        }
      }
    } catch (const std::exception& e) {
      failure = e.what();
    }
  }

 private:
  static std::string header() {
    return "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
           "version='1.0' from='localhost' id='fake1'>";
  }

  asio::awaitable<void> write(const std::string& s) {
    if (tls_)
      co_await asio::async_write(*tls_, asio::buffer(s), asio::use_awaitable);
    else
      co_await asio::async_write(*socket_, asio::buffer(s), asio::use_awaitable);
  }

  asio::awaitable<xml::StreamEvent> event() {
    for (;;) {
      if (auto ev = parser_.next()) co_return std::move(*ev);
      std::size_t n = tls_ ? co_await tls_->async_read_some(asio::buffer(buf_), asio::use_awaitable)
                           : co_await socket_->async_read_some(asio::buffer(buf_), asio::use_awaitable);
      if (recording_ && std::string_view(buf_.data(), n).find_first_not_of(" \t\r\n") == std::string_view::npos)
        saw_whitespace_chunk = true;
      if (!parser_.feed(std::string_view(buf_.data(), n))) throw std::runtime_error("fake server: bad XML");
    }
  }

  asio::awaitable<void> expect_header() {
    auto ev = co_await event();
    if (!std::holds_alternative<xml::StreamOpened>(ev)) throw std::runtime_error("fake server: expected a header");
  }

  asio::awaitable<xml::Element> element() {
    auto ev = co_await event();
    if (!std::holds_alternative<xml::StanzaEvent>(ev)) throw std::runtime_error("fake server: stream ended");
    co_return std::move(std::get<xml::StanzaEvent>(ev).stanza);
  }

  asio::awaitable<void> scram() {
    xml::Element auth = co_await element();
    if (auth.attr("mechanism") != "SCRAM-SHA-256") throw std::runtime_error("fake server: mechanism not SCRAM-SHA-256");
    const std::string client_first = unb64(auth.text());
    if (client_first.rfind("n,,n=user,r=", 0) != 0) throw std::runtime_error("fake server: bad client-first");
    const std::string bare = client_first.substr(3);
    const std::string cnonce = client_first.substr(12);
    const std::string salt = "0123456789abcdef";
    const std::string server_first = "r=" + cnonce + "SERVERNONCE,s=" + b64(salt) + ",i=4096";
    const std::string challenge = "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + b64(server_first) + "</challenge>";
    co_await write(challenge);

    xml::Element resp = co_await element();
    const std::string client_final = unb64(resp.text());
    const auto p = client_final.find(",p=");
    if (p == std::string::npos) throw std::runtime_error("fake server: no proof");
    const std::string without_proof = client_final.substr(0, p);
    const std::string proof = unb64(client_final.substr(p + 3));
    const std::string auth_message = bare + "," + server_first + "," + without_proof;

    unsigned char salted[32];
    PKCS5_PBKDF2_HMAC("secret", 6, reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()),
                      4096, EVP_sha256(), 32, salted);
    const std::string sp(reinterpret_cast<char*>(salted), 32);
    const std::string stored_key = sha256(hmac256(sp, "Client Key"));
    const std::string client_signature = hmac256(stored_key, auth_message);
    std::string client_key = proof;
    for (std::size_t i = 0; i < client_key.size() && i < client_signature.size(); ++i) client_key[i] ^= client_signature[i];
    if (sha256(client_key) != stored_key) {
      const std::string failure_xml = "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>";
      co_await write(failure_xml);
      throw std::runtime_error("fake server: client proof does not verify");
    }
    std::string server_signature = hmac256(hmac256(sp, "Server Key"), auth_message);
    if (script_ == Script::forged_signature) server_signature[0] ^= 1;
    const std::string success =
        "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + b64("v=" + b64(server_signature)) + "</success>";
    co_await write(success);
  }

  tcp::acceptor acceptor_;
  asio::ssl::context ctx_;
  Script script_;
  std::optional<tcp::socket> socket_;
  std::optional<asio::ssl::stream<tcp::socket>> tls_;
  xml::StreamParser parser_;
  std::string buf_ = std::string(16384, '\0');
  bool recording_ = false;
};

ConnectOptions fake_options(std::uint16_t port, const std::string& ca) {
  ConnectOptions o;
  o.jid = "user@localhost";
  o.password = password_from("secret");
  o.host = "127.0.0.1";
  o.port = port;
  o.resource = "fake";
  o.ca_file = ca;
  o.timeout = std::chrono::seconds(3);
  return o;
}

// ---------------------------------------------------------------------------------------------
// The scenarios. Each runs on its own io_context with a 60 s guard.

asio::awaitable<void> login_binds_resource() {
  ConnectOptions o = options("alice", "alicepw");
  o.resource = "c2s-test";
  C2sConnection c(co_await asio::this_coro::executor);
  Jid j = co_await c.connect(o);
  check(j.to_string() == "alice@" + g_tb.domain + "/c2s-test", "bound " + j.to_string());
  check(c.connected() && c.encrypted(), "connected over TLS");
  // Prosody 0.12 (internal_hashed) offers SCRAM-SHA-1 and PLAIN only: the best of those is used.
  check(c.mechanism() == "SCRAM-SHA-1", "mechanism " + c.mechanism());
  co_await c.ping(std::chrono::seconds(5));
  check(true, "ping answered");
  c.close();
  try {
    (void)co_await c.next_stanza(std::chrono::seconds(5));
    check(false, "next_stanza after close throws");
  } catch (const C2sError& e) {
    check(e.code() == ConnectError::disconnected, std::string("after close: ") + e.what());
  }
}

asio::awaitable<void> server_picks_resource() {
  ConnectOptions o = options("carol", "carolpw");
  C2sConnection c(co_await asio::this_coro::executor);
  Jid j = co_await c.connect(o);
  check(!j.resource().empty() && j.bare_string() == "carol@" + g_tb.domain, "server-chosen resource " + j.to_string());
  c.close();
}

xml::Element presence() { return xml::Element("presence", "jabber:client"); }

xml::Element chat(const std::string& to, const std::string& body) {
  xml::Element m("message", "jabber:client");
  m.set_attr("to", to);
  m.set_attr("type", "chat");
  m.set_attr("id", "m1");
  m.add_child(xml::Element("body", "jabber:client")).add_text(body);
  return m;
}

// Skips presences and anything else until a <message/> arrives.
asio::awaitable<xml::Element> next_message(C2sConnection& c) {
  for (;;) {
    xml::Element e = co_await c.next_stanza(std::chrono::seconds(10));
    if (e.name() == "message") co_return e;
  }
}

asio::awaitable<void> alice_and_bob_exchange_messages() {
  auto ex = co_await asio::this_coro::executor;
  ConnectOptions oa = options("alice", "alicepw");
  oa.resource = "a1";
  ConnectOptions ob = options("bob", "bobpw");
  ob.resource = "b1";
  C2sConnection alice(ex), bob(ex);
  Jid ja = co_await alice.connect(oa);
  Jid jb = co_await bob.connect(ob);
  alice.send(presence());
  bob.send(presence());
  alice.send(chat(jb.to_string(), "hello bob <&> \xC3\xA9"));
  xml::Element got = co_await next_message(bob);
  const xml::Element* body = got.child("body");
  check(body && body->text() == "hello bob <&> \xC3\xA9", "bob received alice's message");
  check(got.attr("from") == ja.to_string(), "from alice's full JID");
  // an unqualified stanza is sent in jabber:client
  xml::Element reply("message");
  reply.set_attr("to", ja.to_string());
  reply.add_child(xml::Element("body")).add_text("hi alice");
  bob.send(reply);
  xml::Element back = co_await next_message(alice);
  check(back.child("body") && back.child("body")->text() == "hi alice", "alice received bob's reply");
  // iq to the server: disco#info
  xml::Element q("iq", "jabber:client");
  q.set_attr("type", "get");
  q.set_attr("to", g_tb.domain);
  q.add_child(xml::Element("query", "http://jabber.org/protocol/disco#info"));
  xml::Element r = co_await alice.iq(q, std::chrono::seconds(5));
  check(r.attr("type") == "result" && r.child("query", "http://jabber.org/protocol/disco#info"), "disco#info answered");
  // iq error is returned, not thrown
  xml::Element bad("iq", "jabber:client");
  bad.set_attr("type", "get");
  bad.add_child(xml::Element("nonsense", "urn:example:nothing"));
  xml::Element err = co_await alice.iq(bad, std::chrono::seconds(5));
  check(err.attr("type") == "error", "unknown iq answered with an error stanza");
  alice.close();
  bob.close();
}

asio::awaitable<void> backpressure_keeps_order() {
  auto ex = co_await asio::this_coro::executor;
  ConnectOptions oa = options("alice", "alicepw");
  oa.resource = "bp-a";
  ConnectOptions ob = options("bob", "bobpw");
  ob.resource = "bp-b";
  ob.max_queued_stanzas = 3;
  C2sConnection alice(ex), bob(ex);
  co_await alice.connect(oa);
  Jid jb = co_await bob.connect(ob);
  // 8 KiB bodies: one 16 KiB read holds at most three, so a reader that pauses holds at most
  // 3 + 3 of the 40 (320 KiB); one that does not would hold all 40.
  const std::string pad(8 * 1024, 'p');
  for (int i = 0; i < 40; ++i) alice.send(chat(jb.to_string(), "n" + std::to_string(i) + " " + pad));
  co_await sleep_for(std::chrono::milliseconds(800));  // bob's queue fills; his reader pauses
  const std::size_t held = bob.queued_stanzas();
  check(held >= 3 && held <= 6, "the reader paused with a full queue (" + std::to_string(held) + " stanzas held of 40)");
  bool in_order = true;
  for (int i = 0; i < 40; ++i) {
    xml::Element m = co_await next_message(bob);
    if (!m.child("body") || m.child("body")->text() != "n" + std::to_string(i) + " " + pad) in_order = false;
  }
  check(in_order && bob.connected(), "40 messages through a queue of 3, in order");
  alice.close();
  bob.close();
}

// Prosody limits what a client sends to 256 KiB but re-escapes ' as &apos; when it forwards:
// 60 000 apostrophes become 360 000 bytes on the recipient's stream.
asio::awaitable<void> reescaped_stanza_size() {
  auto ex = co_await asio::this_coro::executor;
  ConnectOptions oa = options("alice", "alicepw");
  oa.resource = "big-a";
  ConnectOptions ob = options("bob", "bobpw");
  ob.resource = "big-b";
  ConnectOptions oe = options("eve", "evepw");
  oe.resource = "big-e";
  oe.max_stanza_bytes = 1664 * 1024;
  C2sConnection alice(ex), bob(ex), eve(ex);
  co_await alice.connect(oa);
  Jid jb = co_await bob.connect(ob);
  Jid je = co_await eve.connect(oe);
  const std::string quotes(60000, '\'');
  alice.send(chat(jb.to_string(), quotes));
  alice.send(chat(je.to_string(), quotes));
  try {
    (void)co_await next_message(bob);
    check(false, "default limit: bob's connection ends");
  } catch (const C2sError& e) {
    std::cout << "        -> \"" << e.what() << "\"\n";
    check(e.code() == ConnectError::protocol_violation && std::string(e.what()).find("too large (limit 262144 bytes)") != std::string::npos,
          "default limit (256 KiB): the forwarded stanza ends bob's connection");
  }
  xml::Element m = co_await next_message(eve);
  check(m.child("body") && m.child("body")->text() == quotes, "max_stanza_bytes 1.6 MiB: eve receives it");
  alice.close();
  eve.close();
}

asio::awaitable<void> wrong_password() {
  ConnectOptions o = options("alice", "not-the-password");
  auto start = Clock::now();
  auto e = co_await connect_error(o);
  check_error(e, ConnectError::auth_failed, "authentication failed: not-authorized", "wrong password");
  check(!e || std::string(e->what()).find("not-the-password") == std::string::npos, "message does not show the password");
  check(Clock::now() - start < std::chrono::seconds(5), "reported without waiting for a timeout");
}

asio::awaitable<void> unknown_user() {
  ConnectOptions o = options("mallory", "x");
  auto e = co_await connect_error(o);
  check_error(e, ConnectError::auth_failed, "authentication failed", "unknown user");
}

asio::awaitable<void> unreachable_port() {
  std::uint16_t port = 0;
  {
    tcp::acceptor a(co_await asio::this_coro::executor, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = a.local_endpoint().port();
  }  // closed again: nobody listens there now
  ConnectOptions o = options("alice", "alicepw");
  o.port = port;
  o.timeout = std::chrono::seconds(3);
  auto start = Clock::now();
  auto e = co_await connect_error(o);
  check_error(e, ConnectError::unreachable, "server unreachable: cannot connect to 127.0.0.1:", "closed port");
  check(Clock::now() - start < std::chrono::seconds(4), "within the timeout");
}

asio::awaitable<void> unresolvable_host() {
  ConnectOptions o = options("alice", "alicepw");
  o.host = "no-such-host.invalid";
  auto e = co_await connect_error(o);
  check_error(e, ConnectError::unreachable, "no-such-host.invalid", "unresolvable host");
}

asio::awaitable<void> untrusted_certificate() {
  ConnectOptions o = options("alice", "alicepw");
  o.ca_file = g_tb.tmp + "/ca2.crt";  // a CA that did not sign Prosody's certificate
  auto e = co_await connect_error(o);
  check_error(e, ConnectError::certificate_untrusted, "certificate not trusted: ", "CA of a different, fresh CA");
}

asio::awaitable<void> system_store_does_not_trust_testbed() {
  ConnectOptions o = options("alice", "alicepw");
  o.ca_file.reset();
  auto e = co_await connect_error(o);
  check_error(e, ConnectError::certificate_untrusted, "certificate not trusted: ", "system CA store");
}

asio::awaitable<void> missing_ca_file() {
  ConnectOptions o = options("alice", "alicepw");
  o.ca_file = g_tb.tmp + "/does-not-exist.pem";
  auto e = co_await connect_error(o);
  check_error(e, ConnectError::tls_failed, "cannot load the CA file", "missing CA file");
}

asio::awaitable<void> insecure_plaintext_refused() {
  ConnectOptions o = options("alice", "alicepw");
  o.insecure_plaintext = true;
  auto e = co_await connect_error(o);
  check_error(e, ConnectError::tls_required, "the server requires TLS", "insecure plaintext vs. Prosody");
}

asio::awaitable<void> unknown_domain_stream_error() {
  ConnectOptions o = options("alice", "alicepw");
  o.jid = "alice@example.org";
  auto e = co_await connect_error(o);
  check_error(e, ConnectError::stream_error, "stream error: host-unknown", "domain Prosody does not serve");
}

asio::awaitable<void> conflict_replaces_session() {
  auto ex = co_await asio::this_coro::executor;
  ConnectOptions o = options("dave", "davepw");
  o.resource = "same";
  C2sConnection first(ex), second(ex);
  co_await first.connect(o);
  co_await second.connect(o);
  try {
    (void)co_await first.next_stanza(std::chrono::seconds(5));
    check(false, "first session ends");
  } catch (const C2sError& e) {
    std::cout << "        -> \"" << e.what() << "\"\n";
    check(e.code() == ConnectError::stream_error && std::string(e.what()).find("conflict") != std::string::npos,
          "the replaced session reports a conflict stream error");
  }
  check(!first.connected() && second.connected(), "second session stays up");
  try {
    first.send(presence());
    check(false, "send on a closed connection throws");
  } catch (const C2sError& e) {
    check(e.code() == ConnectError::stream_error, std::string("send after the end: ") + e.what());
  }
  second.close();
}

asio::awaitable<void> fake_scram_sha256_login() {
  auto server = std::make_shared<FakeServer>(*g_ioc, Script::login, "localhost");
  asio::co_spawn(*g_ioc, server->run(server), asio::detached);
  ConnectOptions o = fake_options(server->port(), g_tb.tmp + "/ca2.crt");
  o.keepalive = std::chrono::seconds(1);
  C2sConnection c(co_await asio::this_coro::executor);
  Jid j = co_await c.connect(o);
  check(j.to_string() == "user@localhost/fake", "bound " + j.to_string() + " at the scripted server");
  check(c.mechanism() == "SCRAM-SHA-256", "SCRAM-SHA-256 preferred over SCRAM-SHA-1 and PLAIN");
  xml::Element q("iq", "jabber:client");
  q.set_attr("type", "get");
  q.add_child(xml::Element("ping", "urn:xmpp:ping"));
  xml::Element r = co_await c.iq(q, std::chrono::seconds(3));
  check(r.attr("type") == "result", "iq answered");
  co_await sleep_for(std::chrono::milliseconds(2500));
  check(server->saw_whitespace_chunk, "whitespace keepalive sent after 1 s of silence");
  // iq without an answer: timeout, connection stays up
  server->ignore_iqs = true;
  try {
    (void)co_await c.iq(q, std::chrono::seconds(1));
    check(false, "unanswered iq times out");
  } catch (const C2sError& e) {
    check(e.code() == ConnectError::timeout && c.connected(), std::string("unanswered iq: ") + e.what());
  }
  try {
    co_await c.ping(std::chrono::seconds(1));
    check(false, "unanswered ping throws");
  } catch (const C2sError& e) {
    check(e.code() == ConnectError::timeout && !c.connected(), std::string("unanswered ping ends the connection: ") + e.what());
  }
  check(server->failure.empty() || server->failure.find("stream ended") != std::string::npos ||
            server->failure.find("End of file") != std::string::npos || server->failure.find("truncated") != std::string::npos,
        "scripted server saw no error (" + server->failure + ")");
}

asio::awaitable<void> fake_forged_signature() {
  auto server = std::make_shared<FakeServer>(*g_ioc, Script::forged_signature, "localhost");
  asio::co_spawn(*g_ioc, server->run(server), asio::detached);
  const ConnectOptions o = fake_options(server->port(), g_tb.tmp + "/ca2.crt");
  auto e = co_await connect_error(o);
  check_error(e, ConnectError::auth_failed, "server signature does not verify", "server forges its SCRAM signature");
}

asio::awaitable<void> fake_hostname_mismatch() {
  auto server = std::make_shared<FakeServer>(*g_ioc, Script::login, "other");  // certificate for other.example, trusted CA
  asio::co_spawn(*g_ioc, server->run(server), asio::detached);
  const ConnectOptions o = fake_options(server->port(), g_tb.tmp + "/ca2.crt");
  auto e = co_await connect_error(o);
  check_error(e, ConnectError::hostname_mismatch, "not valid for localhost", "certificate for another name");
}

asio::awaitable<void> fake_silent_server() {
  auto server = std::make_shared<FakeServer>(*g_ioc, Script::silent, "localhost");
  asio::co_spawn(*g_ioc, server->run(server), asio::detached);
  ConnectOptions o = fake_options(server->port(), g_tb.tmp + "/ca2.crt");
  o.timeout = std::chrono::seconds(2);
  auto start = Clock::now();
  auto e = co_await connect_error(o);
  const auto took = Clock::now() - start;
  check_error(e, ConnectError::timeout, "no answer from the server within 2 s", "server silent after TCP connect");
  check(took >= std::chrono::milliseconds(1900) && took < std::chrono::seconds(4), "after about the timeout");
}

asio::awaitable<void> fake_injection_after_proceed() {
  auto server = std::make_shared<FakeServer>(*g_ioc, Script::inject_after_proceed, "localhost");
  asio::co_spawn(*g_ioc, server->run(server), asio::detached);
  const ConnectOptions o = fake_options(server->port(), g_tb.tmp + "/ca2.crt");
  auto e = co_await connect_error(o);
  check_error(e, ConnectError::protocol_violation, "after <proceed/>", "plaintext injected after <proceed/>");
}

asio::awaitable<void> fake_no_mechanism() {
  auto server = std::make_shared<FakeServer>(*g_ioc, Script::offer_plain_only, "localhost");
  asio::co_spawn(*g_ioc, server->run(server), asio::detached);
  const ConnectOptions o = fake_options(server->port(), g_tb.tmp + "/ca2.crt");
  auto e = co_await connect_error(o);
  check_error(e, ConnectError::no_supported_mechanism, "X-OAUTH2", "only an unknown mechanism offered");
}

void run(const std::string& name, std::function<asio::awaitable<void>()> test) {
  std::cout << name << "\n";
  asio::io_context ioc;
  g_ioc = &ioc;
  bool finished = false;
  std::string error;
  asio::steady_timer drain(ioc);
  asio::co_spawn(ioc, test(), [&](std::exception_ptr e) {
    finished = true;
    // Let closing handshakes go out, then stop whatever still waits (scripted servers, lingers).
    drain.expires_after(std::chrono::milliseconds(300));
    drain.async_wait([&](boost::system::error_code) { ioc.stop(); });
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        error = ex.what();
      }
    }
  });
  ioc.run_for(std::chrono::seconds(60));
  g_ioc = nullptr;
  if (!finished) check(false, name + ": did not finish within 60 s");
  else if (!error.empty()) check(false, name + ": threw \"" + error + "\"");
}

// close(), then dropping the connection: the closing handshake finishes in the background and
// nothing keeps io_context::run() busy afterwards (no 5 s linger once Prosody answers).
void close_returns_promptly() {
  std::cout << "close() lets io_context::run return promptly\n";
  asio::io_context ioc;
  g_ioc = &ioc;
  bool connected = false;
  auto body = [&]() -> asio::awaitable<void> {
    ConnectOptions o = options("alice", "alicepw");
    o.resource = "quick";
    C2sConnection c(ioc.get_executor());
    co_await c.connect(o);
    connected = true;
    c.close();
  };
  auto start = Clock::now();
  asio::co_spawn(ioc, body(), asio::detached);  // `body` outlives run_for
  ioc.run_for(std::chrono::seconds(20));
  g_ioc = nullptr;
  const auto took = Clock::now() - start;
  check(connected, "connected");
  check(ioc.stopped() && took < std::chrono::seconds(4),
        "run() returned after " + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()) +
            " ms");
}

}  // namespace

int main() {
  g_tb.host = env("MULTIEND_XMPP_HOST", "127.0.0.1");
  g_tb.port = static_cast<std::uint16_t>(std::stoi(env("MULTIEND_C2S_PORT")));
  g_tb.ca_file = env("MULTIEND_CA_FILE");
  g_tb.domain = env("MULTIEND_USER_DOMAIN", "localhost");
  make_certificates();

  run("login with SCRAM binds the requested resource", login_binds_resource);
  run("the server picks a resource", server_picks_resource);
  close_returns_promptly();
  run("alice and bob exchange messages; iq results and errors", alice_and_bob_exchange_messages);
  run("a full receive queue pauses reading without losing order", backpressure_keeps_order);
  run("stanza size after Prosody re-escapes text", reescaped_stanza_size);
  run("wrong password", wrong_password);
  run("unknown user", unknown_user);
  run("unreachable port", unreachable_port);
  run("unresolvable host", unresolvable_host);
  run("certificate from an untrusted CA", untrusted_certificate);
  run("system store does not know the testbed CA", system_store_does_not_trust_testbed);
  run("missing CA file", missing_ca_file);
  run("insecure plaintext against a server that requires TLS", insecure_plaintext_refused);
  run("unknown domain", unknown_domain_stream_error);
  run("same resource twice: conflict", conflict_replaces_session);
  run("scripted server: SCRAM-SHA-256, iq, keepalive, timeouts", fake_scram_sha256_login);
  run("scripted server: forged SCRAM server signature", fake_forged_signature);
  run("scripted server: certificate for another name", fake_hostname_mismatch);
  run("scripted server: silent", fake_silent_server);
  run("scripted server: data injected after <proceed/>", fake_injection_after_proceed);
  run("scripted server: no supported mechanism", fake_no_mechanism);

  run_shell("rm -rf '" + g_tb.tmp + "'");
  std::cout << g_passed << " passed, " << g_failed << " failed\n";
  return g_failed == 0 ? 0 : 1;
}
