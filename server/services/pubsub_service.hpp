// The OMEMO 2 PubSub nodes of every user, served at user@component (XEP-0060 subset):
// device lists and bundles, one-time prekeys claimed per requester, prekey counts and identity
// keys (urn:multiend:archive:0), subscriptions and change notifications. Only the owner (the
// `from` the XMPP server stamped) may publish or retract; anyone may retrieve.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "protocol/xml/element.hpp"
#include "server/services/claim_budget.hpp"
#include "server/services/context.hpp"

namespace multiend::server {

class PubsubService {
 public:
  explicit PubsubService(ServiceContext ctx) : ctx_(ctx), claims_(ctx.config.prekey_claims_per_hour) {}

  // An <iq/> addressed to user@component; `owner` is the user's bare JID.
  asio::awaitable<void> handle_iq(xml::Element iq, std::string owner);

 private:
  asio::awaitable<void> notify_device_list(const std::string& owner);
  ServiceContext ctx_;
  ClaimBudget claims_;
};

}  // namespace multiend::server
