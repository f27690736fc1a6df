#include "protocol/omemo/sce_envelope.hpp"

#include <array>

#include "protocol/omemo/constants.hpp"
#include "protocol/xml/serializer.hpp"
#include "protocol/xml/stream_parser.hpp"

namespace multiend::omemo {
namespace {

constexpr std::string_view kClientNs = "jabber:client";
constexpr std::array<std::string_view, 5> kServerOnlyNs = {
    "urn:xmpp:hints", "urn:xmpp:sid:0", "urn:xmpp:eme:0", "urn:xmpp:delay", "urn:xmpp:mam:2"};
constexpr std::size_t kMaxEnvelopeBytes = 192 * 1024;

std::string random_padding(crypto::Rng& rng, std::size_t n) {
  static constexpr std::string_view kChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string s(n, 'A');
  for (auto& c : s) c = kChars[rng.uniform(static_cast<std::uint32_t>(kChars.size()))];
  return s;
}

}  // namespace

std::optional<std::string> Envelope::body() const {
  for (const auto& c : content)
    if (c.name() == "body" && c.ns() == kClientNs) return c.text();
  return std::nullopt;
}

std::string build_envelope(const Envelope& e, crypto::Rng& rng) {
  const std::string ns(kSceNs);
  xml::Element env("envelope", ns);
  auto& content = env.add_child(xml::Element("content", ns));
  std::size_t content_size = 0;
  for (const auto& c : e.content) {
    content_size += xml::serialize(c).size();
    content.add_child(c);
  }
  // Hide the content length: round up to 64 bytes, then add 0..200 random characters.
  const std::size_t pad = (64 - content_size % 64) % 64 + rng.uniform(201);
  env.add_child(xml::Element("rpad", ns)).add_text(random_padding(rng, pad));
  if (e.time) env.add_child(xml::Element("time", ns)).set_attr("stamp", *e.time);
  if (e.from) env.add_child(xml::Element("from", ns)).set_attr("jid", *e.from);
  if (e.to) env.add_child(xml::Element("to", ns)).set_attr("jid", *e.to);
  return xml::serialize(env);
}

Result<Envelope> parse_envelope(std::string_view plaintext) {
  if (plaintext.size() > kMaxEnvelopeBytes) return Errc::limit_exceeded;
  auto root = xml::parse_element(plaintext, {.max_stanza_bytes = kMaxEnvelopeBytes});
  if (!root) return root.error();
  if (root->name() != "envelope" || root->ns() != kSceNs) return Errc::bad_element;
  const xml::Element* content = root->child("content");
  if (!content) return Errc::bad_element;
  Envelope e;
  for (const xml::Element* c : content->element_children()) {
    bool server_only = false;
    for (auto ns : kServerOnlyNs) server_only |= c->ns() == ns;
    if (!server_only) e.content.push_back(*c);
  }
  if (const xml::Element* t = root->child("time"))
    if (auto s = t->attr("stamp")) e.time = std::string(*s);
  if (const xml::Element* f = root->child("from"))
    if (auto j = f->attr("jid")) e.from = std::string(*j);
  if (const xml::Element* t = root->child("to"))
    if (auto j = t->attr("jid")) e.to = std::string(*j);
  return e;
}

Envelope text_envelope(std::string body, std::string from_bare, std::string time) {
  Envelope e;
  xml::Element b("body", std::string(kClientNs));
  b.add_text(std::move(body));
  e.content.push_back(std::move(b));
  e.from = std::move(from_bare);
  e.time = std::move(time);
  return e;
}

}  // namespace multiend::omemo
