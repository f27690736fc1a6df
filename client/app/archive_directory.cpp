// Which archive holds a user's devices. A contact on another domain is never looked up at our
// own component: alice@example.org's component would answer for its own bob@example.org, and
// a message "to bob@elsewhere.test" would be encrypted for the wrong person's devices.
#include <spdlog/spdlog.h>

#include "client/app/client.hpp"
#include "client/app/errors.hpp"
#include "protocol/xmpp/disco.hpp"
#include "protocol/xmpp/namespaces.hpp"

namespace multiend::client {
namespace {

constexpr std::size_t kMaxItemsAsked = 16;  // disco#info requests per domain, at most
constexpr std::size_t kMaxArchivesKnown = 256;

std::string domain_of(const std::string& bare_jid) {
  auto j = Jid::parse(bare_jid);
  if (!j) throw ClientError(ErrorKind::usage, "'" + bare_jid + "' is not a JID");
  return j->domain();
}

}  // namespace

asio::awaitable<Client::ArchiveLookup> Client::archive_of_domain(const std::string& domain) {
  if (domain == domain_of(device_.jid())) co_return ArchiveLookup{options_.component, "the configured component"};
  if (auto it = archives_.find(domain); it != archives_.end()) co_return it->second;
  // One attempt per query, no retries on `wait`: Prosody lists a component that is not
  // connected and answers for it with wait/remote-server-timeout, which is an answer here.
  auto ask = [this](xml::Element iq) -> asio::awaitable<std::optional<xml::Element>> {
    try {
      co_return co_await conn_.iq(std::move(iq), options_.timeout);
    } catch (const C2sError& e) {
      if (e.code() != ConnectError::timeout) throw;
    }
    co_return std::nullopt;
  };
  ArchiveLookup found;
  bool definite = true;  // cache only answers, not silence or errors
  found.looked_at = "disco#items of " + domain;
  auto reply = co_await ask(xmpp::disco_items_query(domain));
  auto items = reply ? xmpp::parse_disco_items(*reply) : Result<std::vector<std::string>>(Errc::bad_element);
  if (!items) {
    auto err = reply ? component::iq_error(*reply) : std::nullopt;
    found.looked_at += ": " + (!reply ? "no answer" : err ? describe(*err) : std::string("unusable reply"));
    definite = false;
  } else {
    std::vector<std::string> silent;
    std::size_t asked = 0;
    for (const std::string& item : *items) {
      if (asked++ == kMaxItemsAsked) break;
      auto answer = co_await ask(xmpp::disco_info_query(item));
      auto info = answer ? xmpp::parse_disco_features(*answer) : Result<std::set<std::string>>(Errc::bad_element);
      if (info && info->count(std::string(xmpp::kMultiendNs))) {
        found.archive = item;
        break;
      }
      auto err = answer ? component::iq_error(*answer) : std::nullopt;
      if (!answer || (err && err->type == xmpp::ErrorType::wait))
        silent.push_back(item + (err ? " (" + describe(*err) + ")" : std::string(" (no answer)")));
    }
    if (!found.archive) {
      found.looked_at += ": " + std::to_string(items->size()) + " items, none a Multiend archive (" +
                         std::string(xmpp::kMultiendNs) + ")";
      for (const auto& s : silent) found.looked_at += "; unreachable: " + s;
      definite = silent.empty();
    }
  }
  spdlog::info("archive of {}: {}", domain, found.archive ? *found.archive : found.looked_at);
  if (definite) {
    if (archives_.size() >= kMaxArchivesKnown) archives_.clear();
    archives_[domain] = found;
  }
  co_return found;
}

asio::awaitable<std::string> Client::node_of(const std::string& bare_jid) {
  const std::string domain = domain_of(bare_jid);
  auto found = co_await archive_of_domain(domain);
  if (!found.archive)
    throw ClientError(ErrorKind::refused, "no OMEMO device of " + bare_jid + " found: " + found.looked_at +
                                              "; devices in the user's own PEP are not supported yet");
  co_return component::node_jid(bare_jid, *found.archive);
}

bool Client::archive_delivers_to(const std::string& bare_jid) const {
  return domain_of(bare_jid) == domain_of(device_.jid());
}

asio::awaitable<void> Client::require_deliverable(const std::string& bare_jid) {
  if (archive_delivers_to(bare_jid)) co_return;
  const std::vector<std::string> none;
  std::string why = co_await unreachable_reason(bare_jid, none);
  throw ClientError(ErrorKind::refused, why);
}

asio::awaitable<std::string> Client::unreachable_reason(const std::string& bare_jid,
                                                        const std::vector<std::string>& pep_looked_at) {
  std::string pep;
  for (const auto& l : pep_looked_at) pep += "; " + l;
  if (archive_delivers_to(bare_jid))
    co_return "no OMEMO device of " + bare_jid + " can receive keys: " + options_.component + "'s device list" + pep;
  auto found = co_await archive_of_domain(domain_of(bare_jid));
  if (!found.archive)
    co_return "cannot send to " + bare_jid + ": no OMEMO device found (" + found.looked_at + pep + ")";
  co_return "cannot send to " + bare_jid + ": its archive devices are at " + *found.archive +
      ", another domain's archive, and " + options_.component + " delivers only within " + domain_of(device_.jid()) +
      (pep.empty() ? std::string(" (PEP is off for this device)") : pep);
}

}  // namespace multiend::client
