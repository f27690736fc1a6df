// Dispatches each stanza from the component stream to its service, each in a coroutine of its
// own so a slow database call never holds up the next stanza; bounds how many run at once,
// and what each account may have in flight (AccountLimits), before any work is done.
// Answers disco#info and ping itself, and refuses what nobody handles with the right error.
#pragma once

#include "protocol/xml/element.hpp"
#include "protocol/xmpp/stanza.hpp"
#include "server/services/account_limits.hpp"
#include "server/services/archive_service.hpp"
#include "server/services/mam_service.hpp"
#include "server/services/pubsub_service.hpp"

namespace multiend::server {

class Router {
 public:
  Router(ServiceContext ctx, ArchiveService& archive, PubsubService& pubsub, MamService& mam);

  void dispatch(xml::Element stanza);
  std::size_t inflight() const noexcept { return limits_.inflight(); }
  // Shutdown: new stanzas are left unanswered (clients resend what got no receipt).
  void stop_accepting() { accepting_ = false; }

 private:
  asio::awaitable<void> handle(xml::Element stanza);
  void error(const xml::Element& stanza, xmpp::ErrorType type, const char* condition, std::string text = {});

  ServiceContext ctx_;
  ArchiveService& archive_;
  PubsubService& pubsub_;
  MamService& mam_;
  AccountLimits limits_;
  bool accepting_ = true;
};

}  // namespace multiend::server
