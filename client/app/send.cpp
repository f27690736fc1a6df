// Sending: who gets keys, encrypting once for all of them, the outbox, the component's
// receipt or bounce, and empty OMEMO messages.
#include <spdlog/spdlog.h>
#include <sodium.h>

#include <algorithm>
#include <cstdlib>

#include "client/app/client.hpp"
#include "client/app/errors.hpp"
#include "client/app/send_parts.hpp"
#include "protocol/omemo/sce_envelope.hpp"
#include "protocol/xml/serializer.hpp"
#include "protocol/xml/stream_parser.hpp"
#include "protocol/xmpp/datetime.hpp"

namespace multiend::client {
namespace detail {

// Built outside coroutines (GCC 12 mis-handles aggregates that own memory inside them).
omemo::DeviceAddress address(const std::string& jid, std::uint32_t device) {
  omemo::DeviceAddress a;
  a.jid = jid;
  a.device = device;
  return a;
}

// Encrypts once for every planned device (identity keys checked in Device::encrypt). The
// caller holds the transaction.
omemo::EncryptOutcome encrypt_for(Device& device, const std::vector<omemo::DeviceAddress>& devices,
                                  const std::map<omemo::DeviceAddress, omemo::Bundle>& bundles,
                                  const std::optional<std::string>& body, std::int64_t now) {
  if (!body) return device.encrypt(devices, bundles, std::nullopt);
  crypto::SodiumRng rng;
  std::string plaintext =
      omemo::build_envelope(omemo::text_envelope(*body, device.jid(), xmpp::format_datetime(now * 1000000)), rng);
  auto out = device.encrypt(devices, bundles,
                            crypto::ByteView(reinterpret_cast<const std::uint8_t*>(plaintext.data()), plaintext.size()));
  sodium_memzero(plaintext.data(), plaintext.size());
  return out;
}

std::string failure_reason(const boost::system::error_code& ec) {
  if (ec == Errc::identity_mismatch)
    return "identity-changed: its identity key is not the one pinned for this device; refused";
  if (ec == Errc::limit_exceeded) return "limit: too many sessions with this account's devices";
  return "encryption failed: " + ec.message();
}

HistoryEntry sent_entry(const Device& device, const std::string& stanza_id, const std::string& body,
                        const std::vector<std::string>& to, std::int64_t now) {
  HistoryEntry e;
  e.stanza_id = stanza_id;
  e.type = EntryType::message;
  e.from_jid = device.jid();
  e.from_device = device.device_id();
  e.to = to;
  e.body = body;
  e.timestamp_us = now * 1000000;
  e.direction = Direction::out;
  e.trust = "own";
  return e;
}

OutboxEntry outbox_entry(const std::string& origin_id, const xml::Element& stanza, const std::string& body,
                         const std::vector<std::string>& to, std::int64_t now) {
  OutboxEntry o;
  o.origin_id = origin_id;
  o.stanza = xml::serialize(stanza);
  o.body = body;
  o.recipients = to;
  o.created_us = now * 1000000;
  return o;
}

// Crash simulation for the exactly-once tests (docs/cli.md): the process dies as a SIGKILL
// would leave it, at the two points where a crash matters.
void failpoint(std::string_view where) {
  const char* fp = std::getenv("MULTIEND_TEST_FAILPOINT");
  if (fp && where == fp) std::_Exit(137);
}

bool sort_known(TrustStore& trust, const omemo::DeviceAddress& a, bool has_session,
                std::vector<omemo::DeviceAddress>& devices,
                std::vector<std::pair<omemo::DeviceAddress, std::string>>& skipped) {
  if (trust.trust_of(a.jid, a.device) == Trust::distrusted) {
    skipped.emplace_back(a, "distrusted");
    return false;
  }
  if (!has_session) return true;
  if (trust.usable(a.jid, a.device))
    devices.push_back(a);
  else
    skipped.emplace_back(a, "not trusted (another device of " + a.jid + " is verified)");
  return false;
}

bool admit_from_bundle(TrustStore& trust, const omemo::DeviceAddress& a, const crypto::Ed25519Public& ik,
                       std::vector<std::pair<omemo::DeviceAddress, std::string>>& skipped) {
  if (!trust.record_device_identity(a.jid, a.device, ik)) {
    skipped.emplace_back(a, "identity key changed; refused");
    return false;
  }
  if (!trust.usable(a.jid, a.device)) {
    skipped.emplace_back(a, "not trusted");
    return false;
  }
  return true;
}

std::string list_devices(const std::vector<omemo::DeviceAddress>& v) {
  std::string s;
  for (const auto& a : v) s += (s.empty() ? "" : ", ") + a.jid + "/" + std::to_string(a.device);
  return s;
}

}  // namespace detail

using detail::address;
using detail::encrypt_for;
using detail::failpoint;
using detail::failure_reason;
using detail::list_devices;
using detail::outbox_entry;
using detail::sent_entry;

asio::awaitable<Client::Plan> Client::plan_recipients(const std::vector<std::string>& users, bool reuse_lists) {
  Plan plan;
  auto& trust = device_.store().trust();
  // With PEP, users the archive cannot reach are PEP's (plan_pep); without, they are refused.
  if (!options_.pep)
    for (const std::string& user : users) co_await require_deliverable(user);
  for (const std::string& user : users) {
    if (!archive_delivers_to(user)) continue;
    std::optional<omemo::DeviceList> stored;
    if (auto it = lists_fetched_.find(user);
        reuse_lists && it != lists_fetched_.end() && std::chrono::steady_clock::now() - it->second < std::chrono::seconds(30))
      stored = device_.store().load_device_list(user);
    omemo::DeviceList list;
    if (stored)
      list = std::move(*stored);
    else
      list = co_await fetch_device_list(user);
    const bool own = user == device_.jid();
    if (!own && list.devices.empty() && options_.pep) continue;  // maybe in PEP
    if (!own && list.devices.empty())
      throw ClientError(ErrorKind::refused, user + " has no OMEMO device at " + options_.component +
                                                " (unknown user, or not registered with Multiend)");
    std::vector<std::uint32_t> need_bundle;
    for (const auto& d : list.devices) {
      if (own && d.id == device_.device_id()) continue;
      omemo::DeviceAddress a = address(user, d.id);
      if (detail::sort_known(trust, a, device_.store().has_session(a), plan.devices, plan.skipped))
        need_bundle.push_back(d.id);
    }
    if (need_bundle.empty()) continue;
    auto bundles = co_await fetch_bundles(user, need_bundle);
    for (std::uint32_t id : need_bundle) {
      omemo::DeviceAddress a = address(user, id);
      auto it = bundles.find(id);
      if (it == bundles.end()) {
        plan.skipped.emplace_back(a, "no usable bundle");
        continue;
      }
      if (!detail::admit_from_bundle(trust, a, it->second.ik, plan.skipped)) continue;
      plan.devices.push_back(a);
      plan.bundles.emplace(a, std::move(it->second));
    }
  }
  co_return plan;
}

asio::awaitable<Client::Answer> Client::submit(const xml::Element& stanza, const std::string& id) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + options_.timeout;
  // The same stanza is sent again — the component stores an origin-id once, so this is safe —
  // when the component answers `wait` (a per-account limit, the database briefly away, or the
  // component restarting: Prosody answers wait/remote-server-timeout while it is away), after a
  // growing pause, and when nothing at all came back for a while (a receipt lost with a
  // component that was killed after its commit). All within the timeout.
  auto wait_backoff = std::chrono::milliseconds(250);
  auto quiet = std::chrono::milliseconds(3000);
  conn_.send(stanza);
  Clock::time_point send_again = Clock::now() + quiet;
  submitting_ = true;
  Answer answer;
  try {
    for (;;) {
      const auto now = Clock::now();
      if (now >= deadline)
        throw ClientError(ErrorKind::connection, "no receipt from " + options_.component + " within " +
                                                     std::to_string(options_.timeout.count()) + " s");
      if (now >= send_again) {
        conn_.send(stanza);
        quiet = std::min(quiet * 2, std::chrono::milliseconds(16000));
        send_again = now + quiet;
      }
      xml::Element st("message");
      try {
        st = co_await conn_.next_stanza(std::min(deadline, send_again) - now);
      } catch (const C2sError& e) {
        if (e.code() == ConnectError::timeout) continue;  // time to send again, or the deadline
        throw;
      }
      if (auto r = component::parse_receipt(st, options_.component); r && r->id == id) {
        answer.receipt = std::move(*r);
        break;
      }
      if (auto b = component::parse_bounce(st, options_.component); b && b->id == id) {
        if (b->error.type == xmpp::ErrorType::wait && Clock::now() + wait_backoff < deadline) {
          spdlog::info("the component says wait ({}{}{}); sending again in {} ms", b->error.condition,
                       b->error.text.empty() ? "" : ": ", b->error.text, wait_backoff.count());
          send_again = Clock::now() + wait_backoff;
          wait_backoff = std::min(wait_backoff * 2, std::chrono::milliseconds(4000));
          continue;
        }
        answer.bounce = std::move(*b);
        break;
      }
      co_await handle_unsolicited(st, {});
    }
  } catch (const C2sError& e) {
    submitting_ = false;
    if (e.code() == ConnectError::timeout)
      throw ClientError(ErrorKind::connection, "no receipt from " + options_.component + " within " +
                                                   std::to_string(options_.timeout.count()) + " s");
    throw;
  } catch (...) {
    submitting_ = false;
    throw;
  }
  submitting_ = false;
  co_return answer;
}

bool Client::reaches(const std::string& user, const Plan& plan, const PepPlan* pep) const {
  auto theirs = [&](const std::vector<omemo::DeviceAddress>& v) {
    return std::any_of(v.begin(), v.end(), [&](const omemo::DeviceAddress& a) { return a.jid == user; });
  };
  return user == device_.jid() || theirs(plan.devices) || (pep && (theirs(pep->devices) || theirs(pep->omemo2_devices)));
}

HistoryEntry Client::pep_sent_entry(const std::string& origin_id, const std::string& body,
                                    const std::vector<std::string>& to, std::int64_t now, const SendReport& chats) const {
  HistoryEntry e = sent_entry(device_, "pep:" + device_.jid() + ":" + origin_id, body, to, now);
  e.protocol = chats.pep_omemo2_devices.empty() ? "oldmemo" : "omemo2";
  e.via = "pep";
  e.live = true;
  return e;
}

std::vector<omemo::DeviceAddress> Client::archive_listed(const std::vector<std::string>& users) {
  std::vector<omemo::DeviceAddress> out;
  for (const auto& user : users) {
    if (!archive_delivers_to(user)) continue;
    if (auto list = device_.store().load_device_list(user))
      for (const auto& d : list->devices) out.push_back(address(user, d.id));
  }
  return out;
}

asio::awaitable<SendReport> Client::send(const std::vector<std::string>& to, const std::string& body,
                                         const MessageSink& sink) {
  if (removed_) throw ClientError(ErrorKind::refused, "this device was removed from the account; it cannot send");
  std::vector<std::string> recipients;
  for (const auto& t : to) {
    std::string n = user_bare_jid(t);
    if (std::find(recipients.begin(), recipients.end(), n) == recipients.end()) recipients.push_back(n);
  }
  if (recipients.empty()) throw ClientError(ErrorKind::usage, "no recipient");
  std::vector<std::string> users = recipients;
  if (std::find(users.begin(), users.end(), device_.jid()) == users.end()) users.push_back(device_.jid());

  const std::string origin_id = new_id();
  SendReport report;
  std::optional<PepPlan> pep_plan;
  std::vector<std::string> chat_keys;  // chat messages queued in the outbox
  SendReport chat_report;               // their devices and failures
  bool chats_queued = false;
  std::optional<HistoryEntry> pep_entry;  // when chat messages are the whole send
  for (int attempt = 0;; ++attempt) {
    Plan plan = co_await plan_recipients(users);
    if (options_.pep && !pep_plan) pep_plan = co_await plan_pep(users, archive_listed(users));
    for (const auto& user : recipients) {
      if (reaches(user, plan, pep_plan ? &*pep_plan : nullptr)) continue;
      std::size_t skipped = plan.skipped.size() + (pep_plan ? pep_plan->skipped.size() : 0);
      if (skipped > 0)
        throw ClientError(ErrorKind::refused, "no device of " + user + " can receive keys (" + std::to_string(skipped) +
                                                  " skipped; see 'multiend devices --of " + user + "')");
      std::vector<std::string> pep_looked_at;
      if (pep_plan)
        for (const auto& l : pep_plan->looked_at)
          if (l.find(" " + user + "'s ") != std::string::npos) pep_looked_at.push_back(l);
      // (awaited into a named value first: GCC 12 mishandles co_await inside a throw expression)
      std::string why = co_await unreachable_reason(user, pep_looked_at);
      throw ClientError(ErrorKind::refused, why);
    }
    const bool chats = pep_plan && pep_plan->any();
    if (plan.devices.empty() && chats) {
      // No device to reach through the archive: the chat messages are the whole send, in the
      // history and the outbox together. (After a missing-devices answer they are queued
      // already, and the archive copy of the first attempt is taken out.)
      report.skipped = std::move(plan.skipped);
      auto tx = device_.store().begin();
      if (!chats_queued) {
        chats_queued = true;
        chat_keys = queue_chats(recipients, *pep_plan, body, origin_id, chat_report);
      }
      if (chat_keys.empty())  // nothing stored: the transaction is not committed
        throw ClientError(ErrorKind::refused, "no device could receive keys (" +
                                                  std::to_string(chat_report.skipped.size() + report.skipped.size()) +
                                                  " skipped; see 'multiend devices --of')");
      device_.store().outbox().remove(origin_id);
      HistoryEntry e = pep_sent_entry(origin_id, body, recipients, options_.clock(), chat_report);
      report.stanza_id = e.stanza_id;
      device_.store().history().append(e);
      tx.commit();
      pep_entry = std::move(e);
      break;
    }
    const std::string id = new_id();
    const std::int64_t now = options_.clock();
    xml::Element stanza("message");
    {
      auto tx = device_.store().begin();
      auto outcome = encrypt_for(device_, plan.devices, plan.bundles, body, now);
      for (const auto& [a, ec] : outcome.failed) plan.skipped.emplace_back(a, failure_reason(ec));
      std::vector<omemo::DeviceAddress> excluded;
      for (const auto& sk : plan.skipped) excluded.push_back(sk.first);
      stanza = component::archive_message(options_.component, id, origin_id, outcome.message, excluded);
      device_.store().outbox().put(outbox_entry(origin_id, stanza, body, recipients, now));
      if (chats && !chats_queued) {
        // In the same transaction as the archive copy: they leave with its receipt (a crash
        // before it: with the next command's), and are dropped if it is refused.
        chats_queued = true;
        chat_keys = queue_chats(recipients, *pep_plan, body, origin_id, chat_report);
      }
      tx.commit();
      report.devices = std::move(outcome.encrypted_for);
    }
    report.skipped = std::move(plan.skipped);
    failpoint("before-send");
    Answer answer = co_await submit(stanza, id);
    if (answer.receipt) {
      failpoint("before-receipt");
      report.stanza_id = answer.receipt->stanza_id;
      auto tx = device_.store().begin();
      device_.store().outbox().remove(origin_id);
      HistoryEntry e = sent_entry(device_, report.stanza_id, body, recipients, now);
      device_.store().history().append(e);
      tx.commit();
      if (sink) sink(e);
      break;
    }
    const component::Bounce& b = *answer.bounce;
    if (b.error.type == xmpp::ErrorType::wait) {
      // Not refused, only not yet: it stays in the outbox, and the next command sends it again
      // (the component stores an origin-id once, so nothing is duplicated).
      throw ClientError(ErrorKind::connection, "the component asked to wait (" + b.error.condition +
                                                   (b.error.text.empty() ? "" : ": " + b.error.text) + ") for " +
                                                   std::to_string(options_.timeout.count()) +
                                                   " s; the message is kept in the outbox and sent by the next command");
    }
    if (!b.missing.empty() && attempt == 0) {
      spdlog::info("the component says devices were missing ({}); resending", list_devices(b.missing));
      report.resent = true;
      continue;  // device lists fetched again: the new devices get sessions from their bundles
    }
    device_.store().outbox().remove(origin_id);
    drop_chats_of(origin_id);  // refused: nobody gets it
    std::string why = std::string(xmpp::error_type_name(b.error.type)) + "/" + b.error.condition;
    if (!b.missing.empty()) why += " (still missing: " + list_devices(b.missing) + ")";
    throw ClientError(ErrorKind::refused, "the component refused the message: " + why);
  }
  if (pep_plan)
    for (auto& s : pep_plan->skipped) report.skipped.push_back(std::move(s));
  report.pep_devices = std::move(chat_report.pep_devices);
  report.pep_omemo2_devices = std::move(chat_report.pep_omemo2_devices);
  for (auto& s : chat_report.skipped) report.skipped.push_back(std::move(s));
  if (pep_entry && sink) sink(*pep_entry);
  if (!chat_keys.empty()) {
    try {
      co_await deliver_chats(&chat_keys);
    } catch (const ClientError& e) {
      // The message is stored (and, with an archive copy, receipted): the chat messages stay
      // in the outbox and go with the next command. Reporting a failure would make a script
      // send it again.
      if (e.kind() != ErrorKind::connection) throw;
      spdlog::warn("{}", e.what());
    }
  }
  try {
    co_await drain_deferred(sink);
  } catch (const std::exception& e) {
    // The message is stored and receipted: what arrived meanwhile is read next time.
    spdlog::warn("after sending: {}", e.what());
  }
  co_return report;
}

asio::awaitable<std::size_t> Client::flush_outbox(const MessageSink& sink) {
  std::size_t done = 0;
  for (const OutboxEntry& o : device_.store().outbox().pending()) {
    if (o.origin_id.starts_with(kChatOutboxPrefix)) continue;
    auto stanza = xml::parse_element(o.stanza);
    const std::string id(stanza ? stanza->attr("id").value_or("") : "");
    if (!stanza || id.empty()) {
      spdlog::warn("dropping an unreadable outbox entry");
      device_.store().outbox().remove(o.origin_id);
      continue;
    }
    Answer answer = co_await submit(*stanza, id);
    if (answer.bounce && answer.bounce->error.type == xmpp::ErrorType::wait) {
      spdlog::warn("an unsent message is still not accepted ({}); kept in the outbox", answer.bounce->error.condition);
      break;  // the component is busy: the rest waits for the next command as well
    }
    auto tx = device_.store().begin();
    device_.store().outbox().remove(o.origin_id);
    if (answer.receipt) {
      HistoryEntry e = sent_entry(device_, answer.receipt->stanza_id, o.body, o.recipients, o.created_us / 1000000);
      const bool fresh = device_.store().history().append(e);
      tx.commit();
      if (fresh && sink) sink(e);
      ++done;
    } else {
      drop_chats_of(o.origin_id);  // nobody gets it
      tx.commit();
      spdlog::warn("an unsent message was refused by the component ({}); dropped",
                   answer.bounce->error.condition);
    }
  }
  // Chat messages whose archive copy is receipted (above, or before a crash), or that have none.
  if (options_.pep && !removed_) co_await deliver_chats();
  co_await drain_deferred(sink);
  co_return done;
}

asio::awaitable<void> Client::send_empty(const std::vector<omemo::DeviceAddress>& to) {
  if (to.empty() || removed_) co_return;
  std::vector<omemo::DeviceAddress> devices;
  std::map<std::string, std::vector<std::uint32_t>> need;
  for (const auto& a : to) {
    if (std::find(devices.begin(), devices.end(), a) != devices.end()) continue;
    if (device_.store().trust().trust_of(a.jid, a.device) == Trust::distrusted) continue;
    devices.push_back(a);
    if (!device_.store().has_session(a)) need[a.jid].push_back(a.device);
  }
  std::map<omemo::DeviceAddress, omemo::Bundle> bundles;
  for (const auto& [jid, ids] : need) {
    auto got = co_await fetch_bundles(jid, ids);
    for (auto& [id, b] : got) bundles.emplace(address(jid, id), std::move(b));
  }
  const std::string id = new_id();
  xml::Element stanza("message");
  {
    auto tx = device_.store().begin();
    auto outcome = encrypt_for(device_, devices, bundles, std::nullopt, options_.clock());
    for (const auto& [a, ec] : outcome.failed)
      spdlog::warn("no empty message to {}/{}: {}", a.jid, a.device, failure_reason(ec));
    if (outcome.encrypted_for.empty()) co_return;
    stanza = component::archive_message(options_.component, id, new_id(), outcome.message);
    tx.commit();
  }
  Answer answer = co_await submit(stanza, id);
  if (answer.bounce) spdlog::warn("an empty OMEMO message was refused: {}", answer.bounce->error.condition);
}

asio::awaitable<std::string> Client::reset_session(const std::string& bare_jid, std::uint32_t device) {
  if (removed_) throw ClientError(ErrorKind::refused, "this device was removed from the account; it cannot send");
  const omemo::DeviceAddress a = address(bare_jid, device);
  if (bare_jid == device_.jid() && device == device_.device_id())
    throw ClientError(ErrorKind::usage, "that is this device");
  if (device_.store().trust().trust_of(bare_jid, device) == Trust::distrusted)
    throw ClientError(ErrorKind::refused, "device " + std::to_string(device) + " of " + bare_jid +
                                              " is distrusted; trust it first if a session is wanted");
  co_await require_deliverable(bare_jid);
  auto list = co_await fetch_device_list(bare_jid);
  if (!list.contains(device))
    throw ClientError(ErrorKind::refused, "device " + std::to_string(device) + " is not on the device list of " + bare_jid);
  std::vector<std::uint32_t> wanted;
  wanted.push_back(device);
  auto got = co_await fetch_bundles(bare_jid, wanted);
  auto it = got.find(device);
  if (it == got.end()) throw ClientError(ErrorKind::refused, "no usable bundle for device " + std::to_string(device));
  std::map<omemo::DeviceAddress, omemo::Bundle> bundles;
  bundles.emplace(a, std::move(it->second));
  const std::string fingerprint = omemo::SessionManager::fingerprint_of(bundles.at(a).ik);
  const std::string id = new_id();
  xml::Element stanza("message");
  {
    auto tx = device_.store().begin();
    // The bundle's identity is checked against the pinned one before anything is dropped.
    auto pinned = device_.store().trust().identity_of(bare_jid, device);
    if (pinned && !crypto::ct_equal(pinned->view(), bundles.at(a).ik.view()))
      throw ClientError(ErrorKind::refused, "identity-changed: device " + std::to_string(device) + " of " + bare_jid +
                                                " presents another identity key than the one pinned; session kept");
    device_.manager().reset_session(a);
    std::vector<omemo::DeviceAddress> one;
    one.push_back(a);
    auto outcome = encrypt_for(device_, one, bundles, std::nullopt, options_.clock());
    if (outcome.encrypted_for.empty())
      throw ClientError(ErrorKind::refused,
                        "no new session: " + (outcome.failed.empty() ? std::string("unknown")
                                                                      : failure_reason(outcome.failed.front().second)));
    stanza = component::archive_message(options_.component, id, new_id(), outcome.message);
    tx.commit();
  }
  Answer answer = co_await submit(stanza, id);
  if (answer.bounce)
    throw ClientError(ErrorKind::refused, "the component refused the key exchange: " + answer.bounce->error.condition);
  co_return fingerprint;
}

asio::awaitable<void> Client::after_receive(std::vector<omemo::DeviceAddress> empty_to,
                                            std::vector<omemo::DeviceAddress> repair, bool republish) {
  if (republish && !removed_) {
    {
      auto tx = device_.store().begin();
      device_.manager().refill_prekeys();
      tx.commit();
    }
    co_await publish_bundle();
  }
  for (auto& r : repair) empty_to.push_back(std::move(r));
  co_await send_empty(empty_to);
}

}  // namespace multiend::client
