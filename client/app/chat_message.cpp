#include "client/app/chat_message.hpp"

#include "protocol/jid.hpp"
#include "protocol/oldmemo/constants.hpp"
#include "protocol/omemo/constants.hpp"
#include "protocol/xmpp/namespaces.hpp"

namespace multiend::client {
namespace {

using xml::Element;

constexpr std::size_t kMaxIdBytes = 256;

std::optional<std::string> bare(std::optional<std::string_view> jid) {
  if (!jid) return std::nullopt;
  auto j = Jid::parse(*jid);
  if (!j || j->local().empty()) return std::nullopt;
  return j->bare_string();
}

// The id every copy of one message shares: origin-id (XEP-0359), else the message id.
std::optional<std::string> message_key(const Element& m) {
  std::string id;
  if (const Element* o = m.child("origin-id", xmpp::kSidNs)) id = std::string(o->attr("id").value_or(""));
  if (id.empty()) id = std::string(m.attr("id").value_or(""));
  if (id.empty() || id.size() > kMaxIdBytes) return std::nullopt;
  return id;
}

}  // namespace

std::optional<ChatMessage> parse_chat(const Element& stanza, const std::string& own_bare) {
  if (stanza.name() != "message") return std::nullopt;
  const Element* m = &stanza;
  ChatMessage out;
  const Element* sent = stanza.child("sent", xmpp::kCarbonsNs);
  const Element* received = stanza.child("received", xmpp::kCarbonsNs);
  if (sent || received) {
    // Only our own server speaks for our account: a contact can put a <sent/> in any message.
    auto wrapper_from = Jid::parse(stanza.attr("from").value_or(""));
    if (!wrapper_from || wrapper_from->bare_string() != own_bare || !wrapper_from->resource().empty()) return std::nullopt;
    const Element* fw = (sent ? sent : received)->child("forwarded", xmpp::kForwardNs);
    m = fw ? fw->child("message", xmpp::kClientNs) : nullptr;
    if (!m) return std::nullopt;
    out.carbon = true;
  }
  if (m->attr("type").value_or("normal") != "chat" && m->attr("type").value_or("normal") != "normal") return std::nullopt;
  auto from = bare(m->attr("from"));
  auto to = bare(m->attr("to"));
  if (!from) return std::nullopt;
  // A message to a service (our own to the archive component, which ejabberd's MAM keeps too)
  // is not a chat message.
  if (!to && m->attr("to")) return std::nullopt;
  if (!to) to = own_bare;
  if (sent && *from != own_bare) return std::nullopt;  // we sent it, or it is not ours to show
  if (received && *to != own_bare) return std::nullopt;
  out.from_bare = *from;
  out.to_bare = *to;
  out.direction = *from == own_bare ? Direction::out : Direction::in;
  auto key = message_key(*m);
  if (const Element* enc = m->child("encrypted", oldmemo::kNs)) {
    auto parsed = oldmemo::encrypted_from_xml(*enc);
    if (parsed)
      out.legacy = std::move(*parsed);
    else
      out.legacy_error = parsed.error().message();
  } else if (const Element* enc2 = m->child("encrypted", omemo::kNs)) {
    auto parsed = omemo::encrypted_from_xml(*enc2);
    if (parsed)
      out.omemo2 = std::move(*parsed);
    else
      out.omemo2_error = parsed.error().message();
  }
  if (const Element* b = m->child("body", xmpp::kClientNs)) out.body = b->text();
  if (!out.legacy && !out.legacy_error && !out.omemo2 && !out.omemo2_error && !out.body) return std::nullopt;
  if (!key) return std::nullopt;  // without an id its copies could not be told apart
  out.history_id = "pep:" + out.from_bare + ":" + *key;
  return out;
}

namespace {

// <message type='chat' to id>encrypted<store/><origin-id/><encryption/></message>: archived by
// the server (XEP-0334), one id for every copy (XEP-0359), and what it is (XEP-0380).
Element chat_message(const std::string& to_bare, const std::string& id, const std::string& origin_id,
                     Element encrypted, std::string_view protocol_ns, std::string_view name) {
  Element m("message");
  m.set_attr("type", "chat");
  m.set_attr("to", to_bare);
  m.set_attr("id", id);
  m.add_child(std::move(encrypted));
  m.add_child(Element("store", std::string(xmpp::kHintsNs)));
  m.add_child(Element("origin-id", std::string(xmpp::kSidNs))).set_attr("id", origin_id);
  m.add_child(Element("encryption", std::string(xmpp::kEmeNs)))
      .set_attr("namespace", std::string(protocol_ns))
      .set_attr("name", std::string(name));
  return m;
}

}  // namespace

Element legacy_chat_message(const std::string& to_bare, const std::string& id, const std::string& origin_id,
                            const oldmemo::LegacyEncrypted& encrypted, bool with_body) {
  Element m = chat_message(to_bare, id, origin_id, oldmemo::encrypted_to_xml(encrypted), oldmemo::kNs, "OMEMO");
  if (with_body) m.add_child(Element("body", std::string(xmpp::kClientNs))).add_text(std::string(oldmemo::kFallbackBody));
  return m;
}

Element omemo2_chat_message(const std::string& to_bare, const std::string& id, const std::string& origin_id,
                            const omemo::EncryptedMessage& encrypted) {
  return chat_message(to_bare, id, origin_id, omemo::encrypted_to_xml(encrypted), omemo::kNs, "OMEMO 2");
}

}  // namespace multiend::client
