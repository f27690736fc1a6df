// The c2s connection's pure text helpers; see c2s_text.hpp.
#include "client/xmpp/c2s_text.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/system/error_code.hpp>

#include "protocol/crypto/base64.hpp"
#include "protocol/crypto/random.hpp"
#include "protocol/xml/serializer.hpp"
#include "protocol/xmpp/namespaces.hpp"
#include "protocol/xmpp/stanza.hpp"

namespace multiend::client::c2s_detail {

namespace asio = boost::asio;

std::string seconds_text(std::chrono::steady_clock::duration d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  return std::to_string(ms) + " ms";
}

// Text from the server, fit for an error message: printable ASCII, at most `max` bytes.
std::string sanitize(std::string_view s, std::size_t max) {
  std::string out;
  for (char c : s) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    const auto u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7F) ? c : (c == '\n' || c == '\t' ? ' ' : '?');
  }
  return out;
}

// "<condition> (<text>)" from an element holding one condition element and an optional <text/>
// in namespace `ns`.
std::string describe_condition(const xml::Element& e, std::string_view ns) {
  std::string cond;
  std::string text;
  for (const xml::Element* c : e.element_children()) {
    if (c->ns() != ns) continue;
    if (c->name() == "text") {
      if (text.empty()) text = sanitize(c->text());
    } else if (cond.empty()) {
      cond = c->name();
    }
  }
  if (cond.empty()) cond = "undefined-condition";
  return text.empty() ? cond : cond + " (" + text + ")";
}

std::string describe_stanza_error(const xml::Element& stanza) {
  auto err = xmpp::parse_stanza_error(stanza);
  if (!err) return "malformed error reply";
  std::string out = err->condition;
  if (!err->text.empty()) out += " (" + sanitize(err->text) + ")";
  return out;
}

std::string element_name(const xml::Element& e) {
  return "<" + sanitize(e.name(), 64) + (e.ns().empty() ? "" : " xmlns='" + sanitize(e.ns(), 100) + "'") + "/>";
}

bool is_ip_literal(std::string_view host) {
  boost::system::error_code ec;
  (void)asio::ip::make_address(std::string(host), ec);
  return !ec;
}

std::string strip_brackets(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') return std::string(host.substr(1, host.size() - 2));
  return std::string(host);
}

std::string stream_header(const std::string& domain, const std::string& from) {
  std::string h =
      "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
      "xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xml:lang='en' to='" +
      domain + "'";
  if (!from.empty()) h += " from='" + from + "'";
  h += ">";
  return h;
}

std::string bind_request(const std::string& id, const std::string& resource) {
  xml::Element iq("iq", std::string(xmpp::kClientNs));
  iq.set_attr("type", "set");
  iq.set_attr("id", id);
  xml::Element& bind = iq.add_child(xml::Element("bind", std::string(kBindNs)));
  if (!resource.empty()) bind.add_child(xml::Element("resource", std::string(kBindNs))).add_text(resource);
  return xml::serialize(iq);
}

std::string session_request(const std::string& id) {
  xml::Element iq("iq", std::string(xmpp::kClientNs));
  iq.set_attr("type", "set");
  iq.set_attr("id", id);
  iq.add_child(xml::Element("session", std::string(kSessionNs)));
  return xml::serialize(iq);
}

std::string sasl_auth(std::string_view mechanism, const std::string& payload_b64) {
  return "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='" + std::string(mechanism) + "'>" +
         (payload_b64.empty() ? std::string("=") : payload_b64) + "</auth>";
}

std::string sasl_response(const std::string& payload_b64) {
  if (payload_b64.empty()) return "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
  return "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + payload_b64 + "</response>";
}

// The decoded payload of a <challenge/> or <success/>: "" for no data or "=" (RFC 6120 §6.4.2).
std::optional<std::string> sasl_payload(const xml::Element& e) {
  std::string text = e.text();
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return std::string();
  text = text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
  if (text == "=") return std::string();
  auto bytes = crypto::base64_decode(text, 8 * 1024);
  if (!bytes) return std::nullopt;
  return std::string(bytes->begin(), bytes->end());
}

std::string random_token(std::size_t bytes) {
  crypto::SodiumRng rng;
  crypto::Bytes b(bytes);
  rng.fill(b);
  return crypto::base64_encode(b);
}

}  // namespace multiend::client::c2s_detail
