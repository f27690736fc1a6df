// libFuzzer target for what a client reads from the network about the component
// (client/component/component_api), service discovery, and the legacy OMEMO elements a client
// reads from PEP and messages, chat messages, Carbons and the server's MAM results: every
// parser on one element. Oracles beyond "no crash,
// no sanitizer report": an accepted archived message names a decimal stanza-id, and a bounce's
// missing devices are bare JIDs.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "client/app/chat_message.hpp"
#include "client/component/component_api.hpp"
#include "client/pep/pep_api.hpp"
#include "client/pep/server_mam.hpp"
#include "protocol/jid.hpp"
#include "protocol/oldmemo/bundle.hpp"
#include "protocol/oldmemo/encrypted_element.hpp"
#include "protocol/xml/serializer.hpp"
#include "protocol/xmpp/disco.hpp"
#include "protocol/xml/stream_parser.hpp"

using namespace multiend;
namespace component = multiend::client::component;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  xml::StreamLimits limits;
  limits.max_stanza_bytes = 64 * 1024;
  limits.max_depth = 16;
  auto e = xml::parse_element(std::string_view(reinterpret_cast<const char*>(data), size), limits);
  if (!e) return 0;
  const std::string comp = "archive.localhost";
  for (const auto& a : {component::parse_fanout(*e, comp), component::parse_mam_result(*e, comp, "q1")}) {
    if (!a) continue;
    if (a->stanza_id.empty() || a->stanza_id.find_first_not_of("0123456789") != std::string::npos) __builtin_trap();
    (void)component::open_archived(*a);
  }
  (void)component::parse_receipt(*e, comp);
  if (auto b = component::parse_bounce(*e, comp))
    for (const auto& d : b->missing)
      if (d.jid.find('/') != std::string::npos) __builtin_trap();
  (void)component::parse_prekeys_low(*e, comp);
  (void)component::parse_device_list_reply(*e);
  (void)component::parse_bundles_reply(*e);
  (void)component::parse_prekey_counts(*e);
  (void)component::parse_identities(*e);
  (void)component::parse_mam_fin(*e);
  // Chat messages and Carbons: a copy is believed only from our own bare JID, and what is
  // accepted names its sender as a bare JID.
  const std::string own = "alice@localhost";
  auto is_own = [&](std::optional<std::string_view> jid) {
    auto j = jid ? Jid::parse(*jid) : Result<Jid>(Errc::bad_jid);
    return j && j->to_string() == own;
  };
  if (auto c = client::parse_chat(*e, own)) {
    if (c->carbon && !is_own(e->attr("from"))) __builtin_trap();
    if (c->from_bare.find('/') != std::string::npos || c->history_id.rfind("pep:", 0) != 0) __builtin_trap();
  }
  if (auto r = client::pep::parse_server_result(*e, own, "q1")) {
    if (e->attr("from") && !is_own(e->attr("from"))) __builtin_trap();
    (void)client::parse_chat(r->message, own);
  }
  (void)client::pep::parse_server_fin(*e);
  (void)client::pep::legacy_device_list(*e);
  (void)client::pep::first_item(*e);
  (void)client::pep::precondition_not_met(*e);
  (void)xmpp::parse_disco_items(*e);
  (void)xmpp::parse_disco_features(*e);
  // Legacy elements: what is accepted survives our own serialisation unchanged.
  if (auto b = oldmemo::bundle_from_xml(*e)) {
    auto again = oldmemo::bundle_from_xml(oldmemo::bundle_to_xml(*b));
    if (!again || again->prekeys.size() != b->prekeys.size() || !(again->ik == b->ik)) __builtin_trap();
  }
  if (auto l = oldmemo::device_list_from_xml(*e); l && !l->empty()) {
    auto again = oldmemo::device_list_from_xml(oldmemo::device_list_to_xml(*l));
    if (!again || *again != *l) __builtin_trap();
  }
  if (auto m = oldmemo::encrypted_from_xml(*e)) {
    auto again = oldmemo::encrypted_from_xml(oldmemo::encrypted_to_xml(*m));
    if (!again || again->keys.size() != m->keys.size() || again->iv != m->iv) __builtin_trap();
  }
  return 0;
}
