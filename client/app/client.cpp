#include "client/app/client.hpp"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "client/app/errors.hpp"
#include "protocol/omemo/constants.hpp"
#include "protocol/xmpp/namespaces.hpp"

namespace multiend::client {

std::string describe(const xmpp::StanzaError& e) {
  std::string s = std::string(xmpp::error_type_name(e.type)) + "/" + e.condition;
  if (!e.text.empty()) s += " (" + e.text.substr(0, 200) + ")";
  return s;
}

std::size_t approx_bytes(const xml::Element& e) {
  std::size_t n = 64 + e.name().size() + e.ns().size();
  for (const auto& [k, v] : e.attrs()) n += 16 + k.size() + v.size();
  for (const auto& node : e.nodes()) n += node.element() ? approx_bytes(*node.element()) : 32 + node.text().size();
  return n;
}

std::string user_bare_jid(const std::string& jid) {
  auto j = Jid::parse(jid);
  if (!j || j->local().empty()) throw ClientError(ErrorKind::usage, "'" + jid + "' is not a user's JID");
  return j->bare_string();
}

Client::Client(C2sConnection& conn, Device& device, ClientOptions options)
    : conn_(conn), device_(device), options_(std::move(options)) {}

std::string Client::new_id() {
  std::array<std::uint8_t, 12> raw{};
  crypto::SodiumRng().fill(raw);
  std::array<char, 2 * raw.size() + 1> hex{};
  sodium_bin2hex(hex.data(), hex.size(), raw.data(), raw.size());
  return std::string(hex.data(), 2 * raw.size());
}

asio::awaitable<xml::Element> Client::request(xml::Element iq) {
  co_return co_await request([&iq] { return iq; });
}

asio::awaitable<xml::Element> Client::request(const std::function<xml::Element()>& make) {
  // `wait` errors (a per-account limit, the database briefly away, the component restarting:
  // Prosody answers wait/remote-server-timeout while it is not connected) are asked again
  // after a growing pause while the timeout allows; other answers go back to the caller.
  // Silence is asked again too (a fresh id each time): a request the component read just
  // before it died is never answered, and waiting out the whole timeout would fail the call.
  const auto deadline = std::chrono::steady_clock::now() + options_.timeout;
  auto backoff = std::chrono::milliseconds(250);
  auto patience = kFirstResendAfter;
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::seconds>(deadline - std::chrono::steady_clock::now());
    const bool last_try = left <= patience;
    std::optional<xml::Element> answer;
    try {
      answer = co_await conn_.iq(make(), std::max(last_try ? left : patience, std::chrono::seconds(1)));
    } catch (const C2sError& e) {
      if (e.code() != ConnectError::timeout || last_try) throw;
    }
    if (!answer) {
      spdlog::info("no answer from the component within {} s; asking again", patience.count());
      patience = std::min(patience * 2, std::chrono::seconds(16));
      continue;
    }
    xml::Element reply = std::move(*answer);
    auto err = component::iq_error(reply);
    if (!err || err->type != xmpp::ErrorType::wait || std::chrono::steady_clock::now() + backoff >= deadline)
      co_return reply;
    spdlog::info("the component says wait ({}); asking again in {} ms", err->condition, backoff.count());
    asio::steady_timer pause(co_await asio::this_coro::executor, backoff);
    co_await pause.async_wait(asio::use_awaitable);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(4000));
  }
}

asio::awaitable<void> Client::publish_bundle() {
  const std::string node = component::node_jid(device_.jid(), options_.component);
  auto reply = co_await request(component::publish_bundle(node, device_.device_id(), device_.manager().bundle()));
  if (auto err = component::iq_error(reply))
    throw ClientError(ErrorKind::refused, "the component refused our bundle: " + describe(*err));
}

asio::awaitable<bool> Client::register_and_maintain() {
  const std::int64_t now = options_.clock();
  auto& settings = device_.store().settings();
  if (settings.get(setting::registered) != "1") {
    co_await publish_bundle();
    settings.set(setting::registered, "1");
    co_await publish_pep();
    co_await mark_server_archive_end();
    co_return true;
  }
  auto list = co_await fetch_device_list(device_.jid());
  if (!list.contains(device_.device_id())) {
    removed_ = true;
    co_return false;
  }
  bool republish = false;
  {
    auto tx = device_.store().begin();
    republish = device_.manager().rotate_signed_prekey_if_due(now);
    republish = device_.manager().refill_prekeys() > 0 || republish;
    tx.commit();
  }
  const std::string node = component::node_jid(device_.jid(), options_.component);
  auto counts = component::parse_prekey_counts(co_await request(component::get_prekey_counts(node)));
  if (counts) {
    auto it = counts->find(device_.device_id());
    if (it == counts->end() || it->second < options_.prekey_low) {
      device_.add_prekeys(options_.prekey_batch, options_.prekey_cap);
      republish = true;
    }
  }
  if (republish) co_await publish_bundle();
  co_await publish_pep();
  co_return true;
}

asio::awaitable<omemo::DeviceList> Client::fetch_device_list(const std::string& bare_jid) {
  auto reply = co_await request(component::get_device_list(co_await node_of(bare_jid)));
  auto list = component::parse_device_list_reply(reply);
  if (!list) {
    if (auto err = component::iq_error(reply))
      throw ClientError(ErrorKind::refused, "device list of " + bare_jid + ": " + describe(*err));
    throw ClientError(ErrorKind::refused, "device list of " + bare_jid + ": malformed reply");
  }
  device_.store().save_device_list(bare_jid, *list);
  if (lists_fetched_.size() >= 4096) lists_fetched_.clear();  // bounded
  lists_fetched_[bare_jid] = std::chrono::steady_clock::now();
  co_return std::move(*list);
}

asio::awaitable<std::map<std::uint32_t, omemo::Bundle>> Client::fetch_bundles(
    const std::string& bare_jid, const std::vector<std::uint32_t>& devices) {
  auto reply = co_await request(component::get_bundles(co_await node_of(bare_jid), devices));
  auto parsed = component::parse_bundles_reply(reply);
  if (!parsed) {
    spdlog::warn("bundles of {}: unusable reply", bare_jid);
    co_return std::map<std::uint32_t, omemo::Bundle>{};
  }
  for (auto id : parsed->bad) spdlog::warn("bundle of {} device {} is malformed; skipped", bare_jid, id);
  co_return std::move(parsed->bundles);
}

asio::awaitable<std::map<std::uint32_t, crypto::Ed25519Public>> Client::fetch_identities(const std::string& bare_jid) {
  auto reply = co_await request(component::get_identities(co_await node_of(bare_jid)));
  co_return component::parse_identities(reply);
}

asio::awaitable<bool> Client::remove_device(std::uint32_t device) {
  auto list = co_await fetch_device_list(device_.jid());
  bool removed = false;
  if (list.contains(device)) {
    omemo::DeviceList next;
    for (const auto& d : list.devices)
      if (d.id != device) next.devices.push_back(d);
    if (next.devices.empty())
      throw ClientError(ErrorKind::refused, "device " + std::to_string(device) + " is the account's last device");
    auto reply = co_await request(
        component::publish_device_list(component::node_jid(device_.jid(), options_.component), next));
    if (auto err = component::iq_error(reply))
      throw ClientError(ErrorKind::refused, "the component refused the device list: " + describe(*err));
    device_.store().save_device_list(device_.jid(), next);
    removed = true;
  }
  // The same device in the account's PEP: otherwise plain apps, and our own sends, still reach it.
  if (co_await remove_from_pep(device)) removed = true;
  co_return removed;
}

asio::awaitable<void> Client::handle_unsolicited(const xml::Element& stanza, const MessageSink& sink) {
  if (auto low = component::parse_prekeys_low(stanza, options_.component)) {
    if (*low == device_.device_id() && !removed_) {
      device_.add_prekeys(options_.prekey_batch, options_.prekey_cap);
      co_await publish_bundle();
    }
    co_return;
  }
  auto fanout = component::parse_fanout(stanza, options_.component);
  if (!fanout && options_.pep) {
    if (auto chat = parse_chat(stanza, device_.jid())) {
      if (catching_up_ || submitting_) {
        // past the bound the server's MAM has it: the next catch-up reads it from there
        if (!defer(stanza)) spdlog::info("a chat message from {} is left to the server's archive", chat->from_bare);
        co_return;
      }
      co_await handle_chat(*chat, sink);
      co_return;
    }
  }
  if (!fanout) {
    // Presence, pubsub events, chat from elsewhere: not ours to show. A forwarded message from
    // anyone but the component is a forgery (or a stray): say so, never show it.
    const auto from = stanza.attr("from").value_or("");
    if (stanza.name() == "message" && stanza.child("forwarded", xmpp::kForwardNs) && from != options_.component)
      spdlog::warn("ignored a forwarded message from {}: only {} forwards archived messages", from, options_.component);
    co_return;
  }
  // Our own message coming back (fan-out goes to the sender's bare JID, for its other devices):
  // its receipt put it in the history already, and a catch-up would find it in the archive if
  // not. Holding it while a bulk send is under way would fill the deferred buffer with echoes.
  if (conn_.jid() && fanout->message.attr("from").value_or("") == conn_.jid()->to_string()) co_return;
  if (catching_up_ || submitting_) {
    if (!defer(stanza)) deferred_overflow_ = true;  // the archive has it: read it from there afterwards
    co_return;
  }
  {
    std::vector<component::Archived> one;
    one.push_back(*fanout);
    co_await refresh_device_lists(one);
  }
  Received r;
  {
    auto tx = device_.store().begin();
    r = device_.receive(*fanout, options_.clock(), true);
    tx.commit();
  }
  if (r.entry && sink) sink(*r.entry);
  std::vector<omemo::DeviceAddress> repair;
  if (r.repair) repair.push_back(*r.repair);
  co_await after_receive(std::move(r.empty_reply_to), std::move(repair), r.prekey_used);
}

bool Client::defer(const xml::Element& stanza) {
  const std::size_t bytes = approx_bytes(stanza);
  if (deferred_bytes_ + bytes > options_.max_deferred_bytes) return false;
  deferred_bytes_ += bytes;
  deferred_.push_back(stanza);
  return true;
}

asio::awaitable<void> Client::drain_deferred(const MessageSink& sink) {
  if (draining_) co_return;  // the outer call goes on (catch_up below drains at its end)
  draining_ = true;
  const ProgressSink no_progress;
  try {
    for (;;) {
      while (!deferred_.empty() && !catching_up_ && !submitting_) {
        xml::Element st = std::move(deferred_.front());
        deferred_.pop_front();
        deferred_bytes_ -= std::min(deferred_bytes_, approx_bytes(st));
        co_await handle_unsolicited(st, sink);
      }
      if (deferred_.empty()) deferred_bytes_ = 0;
      if (!deferred_overflow_ || catching_up_ || submitting_) break;
      deferred_overflow_ = false;
      spdlog::info("fan-out arrived faster than it could be held; reading it from the archive");
      co_await catch_up(sink, no_progress);
    }
  } catch (...) {
    draining_ = false;
    throw;
  }
  draining_ = false;
}

}  // namespace multiend::client
