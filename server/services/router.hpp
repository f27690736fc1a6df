// Dispatches each stanza from the component stream to its service, each in a coroutine of its
// own so a slow database call never holds up the next stanza; bounds how many run at once.
// Answers disco#info and ping itself, and refuses what nobody handles with the right error.
#pragma once

#include "protocol/xml/element.hpp"
#include "protocol/xmpp/stanza.hpp"
#include "server/services/archive_service.hpp"
#include "server/services/mam_service.hpp"
#include "server/services/pubsub_service.hpp"

namespace multiend::server {

class Router {
 public:
  Router(ServiceContext ctx, ArchiveService& archive, PubsubService& pubsub, MamService& mam)
      : ctx_(ctx), archive_(archive), pubsub_(pubsub), mam_(mam) {}

  void dispatch(xml::Element stanza);
  std::size_t inflight() const noexcept { return inflight_; }
  // Shutdown: new stanzas are left unanswered (clients resend what got no receipt).
  void stop_accepting() { accepting_ = false; }

 private:
  asio::awaitable<void> handle(xml::Element stanza);
  void error(const xml::Element& stanza, xmpp::ErrorType type, const char* condition, std::string text = {});

  ServiceContext ctx_;
  ArchiveService& archive_;
  PubsubService& pubsub_;
  MamService& mam_;
  std::size_t inflight_ = 0;
  bool accepting_ = true;
};

}  // namespace multiend::server
