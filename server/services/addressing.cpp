#include "server/services/addressing.hpp"

namespace multiend::server {

std::optional<std::string> owner_of_node_jid(const Config& c, const Jid& to) {
  if (to.domain() != c.component_domain || to.local().empty()) return std::nullopt;
  auto owner = Jid::parse(to.local() + "@" + c.user_domain);
  if (!owner) return std::nullopt;
  return owner->bare_string();
}

std::optional<Jid> user_sender(const Config& c, const xml::Element& stanza) {
  auto from = stanza.attr("from");
  if (!from) return std::nullopt;
  auto j = Jid::parse(*from);
  if (!j || j->domain() != c.user_domain || j->local().empty()) return std::nullopt;
  return *j;
}

}  // namespace multiend::server
