// libFuzzer target for what the component reads from the XMPP server: one stanza through the
// parsers its handlers use (router addressing, PubSub requests with their bundle and device-list
// payloads, MAM queries, archive messages with OMEMO header, XEP-0033 addresses and
// <excluded/>), the per-account accounting, and the error reply it would send. The services
// themselves need PostgreSQL and a stream (tests/integration covers them).
// Oracles beyond "no crash, no sanitizer report": a parsed JID is canonical (parsing its
// string form again gives the same JID), an error reply serialises and parses back, and the
// accounting returns to zero.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "protocol/jid.hpp"
#include "protocol/omemo/bundle.hpp"
#include "protocol/omemo/device_list.hpp"
#include "protocol/omemo/encrypted_element.hpp"
#include "protocol/xml/serializer.hpp"
#include "protocol/xml/stream_parser.hpp"
#include "protocol/xmpp/mam_query.hpp"
#include "protocol/xmpp/namespaces.hpp"
#include "protocol/xmpp/pubsub_request.hpp"
#include "protocol/xmpp/stanza.hpp"
#include "server/services/account_limits.hpp"

using namespace multiend;

namespace {

std::size_t accepted = 0;

void check_jid(std::string_view text) {
  auto j = Jid::parse(text);
  if (!j) return;
  auto again = Jid::parse(j->to_string());
  if (!again || !(*again == *j) || again->to_string() != j->to_string()) __builtin_trap();
}

}  // namespace

extern "C" std::size_t MultiendFuzzAccepted() { return accepted; }

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  xml::StreamLimits limits;  // what the component's stream parser allows, scaled down
  limits.max_stanza_bytes = 64 * 1024;
  limits.max_depth = 32;
  auto e = xml::parse_element(std::string_view(reinterpret_cast<const char*>(data), size), limits);
  if (!e) return 0;
  bool valid = false;
  check_jid(e->attr("from").value_or(""));
  check_jid(e->attr("to").value_or(""));
  for (const xml::Element* p : e->element_children()) {
    if (p->name() == "pubsub" && p->ns() == xmpp::kPubsubNs) {
      for (bool set : {false, true}) {
        auto r = xmpp::parse_pubsub(*p, set);
        if (!r) continue;
        valid = true;
        if (auto* pub = std::get_if<xmpp::PublishRequest>(&*r)) {
          (void)omemo::bundle_from_xml(pub->payload);
          (void)omemo::device_list_from_xml(pub->payload);
          if (pub->item_id) (void)omemo::parse_id(*pub->item_id);
        } else if (auto* s = std::get_if<xmpp::SubscribeRequest>(&*r)) {
          check_jid(s->jid);
        }
      }
    }
    if (p->name() == "query" && p->ns() == xmpp::kMamNs) {
      if (auto q = xmpp::parse_mam_query(*p)) {
        valid = true;
        if (q->with) check_jid(*q->with);
      }
    }
    if (p->name() == "encrypted") {
      if (auto m = omemo::encrypted_from_xml(*p)) {
        valid = true;
        for (const auto& g : m->groups) check_jid(g.jid);
      }
    }
    if (p->name() == "identity" && p->ns() == xmpp::kMultiendNs)
      valid |= !p->attr("device") || omemo::parse_id(*p->attr("device")).has_value();
    if (p->name() == "addresses" && p->ns() == xmpp::kAddressNs)
      for (const xml::Element* a : p->children("address", xmpp::kAddressNs)) check_jid(a->attr("jid").value_or(""));
    if (p->name() == "excluded" && p->ns() == xmpp::kMultiendNs)
      for (const xml::Element* d : p->children("device", xmpp::kMultiendNs)) {
        check_jid(d->attr("jid").value_or(""));
        (void)omemo::parse_id(d->attr("id").value_or(""));
      }
  }
  // Accounting as the router does it: admitted, released, back to nothing.
  server::AccountLimits limits_table({});
  const auto now = server::AccountLimits::Clock::time_point{};
  const std::string account(e->attr("from").value_or(""));
  if (!limits_table.admit(account, e->memory_bytes(), server::AccountLimits::Kind::message, now)) {
    limits_table.release(account, e->memory_bytes(), server::AccountLimits::Kind::message, now);
    if (limits_table.inflight() != 0 || limits_table.inflight_bytes() != 0) __builtin_trap();
  }
  // The error reply the router would send (unless the stanza is itself an error or result).
  const auto type = e->attr("type").value_or("");
  if (type != "error" && type != "result") {
    auto reply = xmpp::make_error_reply(*e, {xmpp::ErrorType::modify, "bad-request", "fuzz", std::nullopt});
    auto text = xml::serialize(reply);
    if (!xml::parse_element(text, {.max_stanza_bytes = 1 << 20})) __builtin_trap();
  }
  if (valid) ++accepted;
  return 0;
}
