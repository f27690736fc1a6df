// Bulk sending over one connection with a window of messages awaiting receipts (`send --lines`,
// `run`). The guarantees are send()'s: a message is in the outbox before it is sent, leaves it
// with its receipt or a refusal, and is sent again byte for byte (same origin-id, which the
// component stores once) on `wait` and on silence. What a window buys is that the round trips
// overlap and SQLite commits (fsync) are shared: one for each batch encrypted, one for each
// batch of receipts.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "client/app/client.hpp"
#include "client/app/errors.hpp"
#include "client/app/send_parts.hpp"
#include "protocol/xml/serializer.hpp"

namespace multiend::client {
namespace {

using Clock = std::chrono::steady_clock;
// At most 400 awaiting receipts: with `run`'s echo that is 800 stanzas, below the connection's
// 1,000 queued before it stops reading (a request's answer behind them would never be read).
constexpr std::size_t kMaxWindow = 400;
constexpr std::size_t kReceiptBatch = 256;       // stanzas handled per commit, at most
constexpr auto kInputPoll = std::chrono::milliseconds(10);  // how soon new input is seen
constexpr auto kIdlePing = std::chrono::seconds(60);        // `run` idle: is the link alive?
constexpr auto kPepPlanFor = std::chrono::seconds(30);      // PEP lists read again after this

struct InFlight {
  std::string ref;
  std::vector<std::string> to;  // bare recipients as given
  std::string body;
  std::string origin_id;
  xml::Element stanza{"message"};
  SendReport report;
  std::int64_t created = 0;
  Clock::time_point deadline, resend_at;
  std::chrono::milliseconds quiet{3000};
  std::uint64_t seq = 0;  // send order: `wait`-ed messages go again oldest first
  bool replanned = false;
  // Chat messages to devices in PEP (queued in the outbox once, sent with the batch), and what
  // became of them; `pep_only`: there is no archive copy.
  bool chats_queued = false, pep_only = false;
  std::string refused;  // set by sealing: nothing could be encrypted
  std::vector<std::string> chat_keys;
  SendReport chat_report;
};

SendOutcome outcome_of(const InFlight& f) {
  SendOutcome o;
  o.ref = f.ref;
  o.to = f.to;
  o.report = f.report;
  o.report.pep_devices = f.chat_report.pep_devices;
  o.report.pep_omemo2_devices = f.chat_report.pep_omemo2_devices;
  for (const auto& s : f.chat_report.skipped) o.report.skipped.push_back(s);
  return o;
}

SendOutcome refusal(std::string ref, std::vector<std::string> to, std::string why) {
  SendOutcome o;
  o.ref = std::move(ref);
  o.to = std::move(to);
  o.refused = std::move(why);
  return o;
}

std::string users_key(const std::vector<std::string>& users) {
  std::string k;
  for (const auto& u : users) k += u + '\n';
  return k;
}

}  // namespace

asio::awaitable<BulkProgress> Client::send_many(const OutgoingSource& next, const OutcomeSink& done,
                                                const MessageSink& incoming, BulkOptions options) {
  if (removed_) throw ClientError(ErrorKind::refused, "this device was removed from the account; it cannot send");
  const std::size_t window = std::clamp<std::size_t>(options.window, 1, kMaxWindow);
  BulkProgress progress;
  std::map<std::string, InFlight> flight;  // by stanza id
  bool input_ended = false;
  std::optional<ClientError> stop;  // set: take no more input, finish what is in flight, throw it
  // `wait` (a rate or in-flight limit, the component restarting) holds the whole window: nothing
  // new goes out, and when the hold ends the messages told to wait go again oldest first (per
  // message backoffs let new messages take the tokens and starve old ones past their deadline).
  std::set<std::pair<std::uint64_t, std::string>> waiting;
  Clock::time_point hold_until{};
  auto hold_backoff = std::chrono::milliseconds(250);
  std::uint64_t next_seq = 0;
  auto report_outcome = [&](const SendOutcome& o) {
    if (done) done(o);
  };

  // PEP devices by recipient set, read again after kPepPlanFor (as the archive's lists are).
  std::map<std::string, std::pair<Clock::time_point, PepPlan>> pep_plans;

  // Encrypts `f` for its recipients' usable devices and stores it in the outbox under its
  // origin-id, its chat messages to PEP devices beside it; with no archive device to reach, the
  // chat messages are the whole message and it is in the history now. The caller holds the
  // transaction.
  auto seal = [&](InFlight& f, Plan& plan, PepPlan* pep) {
    if (!f.chats_queued && pep && pep->any()) {
      f.chats_queued = true;
      f.chat_report = SendReport{};
      f.chat_report.skipped = pep->skipped;
      f.chat_keys = queue_chats(f.to, *pep, f.body, f.origin_id, f.chat_report);
      // Sessions now exist for the bundles used: later messages of the batch ride on them.
      std::erase_if(pep->bundles, [&](const auto& b) { return device_.store().legacy().has_legacy_session(b.first); });
      std::erase_if(pep->omemo2_bundles, [&](const auto& b) { return device_.store().has_session(b.first); });
    }
    if (plan.devices.empty() && f.chats_queued) {
      // No archive device (also after a missing-devices answer: that attempt's archive copy
      // is taken out): the chat messages are the whole message.
      device_.store().outbox().remove(f.origin_id);
      if (f.chat_keys.empty()) {
        f.refused = "no device could receive keys (" + std::to_string(f.chat_report.skipped.size()) + " skipped)";
        return;
      }
      f.pep_only = true;
      f.report = SendReport{};
      f.report.skipped = plan.skipped;
      HistoryEntry e = pep_sent_entry(f.origin_id, f.body, f.to, f.created, f.chat_report);
      f.report.stanza_id = e.stanza_id;
      device_.store().history().append(e);
      return;
    }
    auto outcome = detail::encrypt_for(device_, plan.devices, plan.bundles, f.body, f.created);
    // Sessions now exist for the bundles used: later messages of the batch ride on them.
    std::erase_if(plan.bundles, [&](const auto& b) { return device_.store().has_session(b.first); });
    f.report = SendReport{};
    f.report.skipped = plan.skipped;
    for (const auto& [a, ec] : outcome.failed) f.report.skipped.emplace_back(a, detail::failure_reason(ec));
    f.report.devices = std::move(outcome.encrypted_for);
    std::vector<omemo::DeviceAddress> excluded;
    for (const auto& sk : f.report.skipped) excluded.push_back(sk.first);
    const std::string id = new_id();
    f.stanza = component::archive_message(options_.component, id, f.origin_id, outcome.message, excluded);
    device_.store().outbox().put(detail::outbox_entry(f.origin_id, f.stanza, f.body, f.to, f.created));
  };
  auto pep_of = [&](const std::string& key) -> PepPlan* {
    auto it = pep_plans.find(key);
    return it == pep_plans.end() ? nullptr : &it->second.second;
  };
  auto users_of = [&](const std::vector<std::string>& recipients) {
    std::vector<std::string> users = recipients;
    if (std::find(users.begin(), users.end(), device_.jid()) == users.end()) users.push_back(device_.jid());
    return users;
  };
  // A plan in which some recipient has no device at all is refused, as send() refuses it.
  auto unreachable = [&](const std::vector<std::string>& recipients, const Plan& plan,
                         const PepPlan* pep) -> std::optional<std::string> {
    for (const auto& user : recipients)
      if (!reaches(user, plan, pep)) return "no device of " + user + " can receive keys";
    return std::nullopt;
  };
  auto launch = [&](InFlight f) {
    const std::string id(f.stanza.attr("id").value_or(""));
    conn_.send(f.stanza);
    const auto now = Clock::now();
    f.resend_at = now + f.quiet;
    f.seq = next_seq++;
    if (f.deadline == Clock::time_point{}) f.deadline = now + options_.timeout;
    flight.emplace(id, std::move(f));
  };

  auto last_heard = Clock::now();
  submitting_ = true;  // fan-out that arrives while receipts are awaited is deferred
  try {
    for (;;) {
      // 1. New messages while the window has room: planned, encrypted and put in the outbox
      //    in one transaction, then sent.
      std::vector<OutgoingMessage> batch;
      const bool held = !waiting.empty() || Clock::now() < hold_until;
      while (!held && !input_ended && !stop && flight.size() + batch.size() < window) {
        OutgoingMessage m;
        const Poll p = next(m);
        if (p == Poll::item) {
          batch.push_back(std::move(m));
        } else {
          input_ended = p == Poll::ended;
          break;
        }
      }
      if (!batch.empty()) {
        // Bounded: stale PEP plans go (before this batch looks any up).
        for (auto old = pep_plans.begin(); old != pep_plans.end();)
          old = Clock::now() - old->second.first >= kPepPlanFor ? pep_plans.erase(old) : std::next(old);
        std::map<std::string, Plan> plans;
        std::map<std::string, std::string> unplannable;  // why, by recipient set
        std::vector<InFlight> ready;
        for (auto& m : batch) {
          std::vector<std::string> recipients;
          std::string bad;
          for (const auto& t : m.to) {
            try {
              std::string n = user_bare_jid(t);
              if (std::find(recipients.begin(), recipients.end(), n) == recipients.end()) recipients.push_back(n);
            } catch (const ClientError& e) {
              bad = e.what();
            }
          }
          if (recipients.empty() && bad.empty()) bad = "no recipient";
          if (!bad.empty()) {
            ++progress.refused;
            report_outcome(refusal(m.ref, m.to, bad));
            if (options.stop_on_refusal) stop = ClientError(ErrorKind::usage, bad);
            continue;
          }
          const auto users = users_of(recipients);
          const std::string key = users_key(users);
          if (!plans.count(key) && !unplannable.count(key)) {
            // A recipient without devices (or whose list the component refuses) costs this
            // message only; a broken connection ends the run.
            std::optional<Plan> p;
            try {
              p = co_await plan_recipients(users, true);
            } catch (const ClientError& e) {
              if (e.kind() == ErrorKind::connection) throw;
              unplannable.emplace(key, e.what());
            }
            if (p) plans.emplace(key, std::move(*p));
          }
          if (options_.pep && plans.count(key)) {
            auto it = pep_plans.find(key);
            if (it == pep_plans.end() || Clock::now() - it->second.first >= kPepPlanFor) {
              const auto listed = archive_listed(users);  // named: no temporaries in co_await
              PepPlan pep = co_await plan_pep(users, listed);
              pep_plans.insert_or_assign(key, std::make_pair(Clock::now(), std::move(pep)));
            }
          }
          std::optional<std::string> why;
          if (auto it = unplannable.find(key); it != unplannable.end())
            why = it->second;
          else
            why = unreachable(recipients, plans.at(key), pep_of(key));
          if (why) {
            ++progress.refused;
            report_outcome(refusal(m.ref, recipients, *why));
            if (options.stop_on_refusal) stop = ClientError(ErrorKind::refused, *why);
            continue;
          }
          InFlight f;
          f.ref = std::move(m.ref);
          f.to = std::move(recipients);
          f.body = std::move(m.body);
          f.origin_id = new_id();
          f.created = options_.clock();
          ready.push_back(std::move(f));
        }
        {
          auto tx = device_.store().begin();
          for (auto& f : ready) {
            const std::string key = users_key(users_of(f.to));
            seal(f, plans.at(key), pep_of(key));
          }
          tx.commit();
        }
        detail::failpoint("before-send");
        // The batch's chat messages leave with it, in order (not with each receipt: receipts
        // come in any order, and a chat has no other order than its arrival).
        std::vector<std::string> chats_now;
        for (auto& f : ready) {
          if (!f.refused.empty()) {
            ++progress.refused;
            report_outcome(refusal(f.ref, f.to, f.refused));
            if (options.stop_on_refusal) stop = ClientError(ErrorKind::refused, f.refused);
            continue;
          }
          for (const auto& k : f.chat_keys) chats_now.push_back(k);
          if (!f.pep_only) {
            launch(std::move(f));
            continue;
          }
          ++progress.receipted;
          report_outcome(outcome_of(f));
        }
        if (!chats_now.empty()) co_await deliver_chats(&chats_now);
      }
      if (flight.empty() && (input_ended || stop)) break;

      // 2. What is due: sent again after silence or a `wait`; past its deadline, left in the
      //    outbox for the next command.
      const auto now = Clock::now();
      if (!waiting.empty() && now >= hold_until) {
        for (const auto& [seq, id] : waiting) {
          auto it = flight.find(id);
          if (it == flight.end()) continue;
          conn_.send(it->second.stanza);
          it->second.resend_at = now + it->second.quiet;
        }
        waiting.clear();
      }
      auto wake = now + (flight.empty() && options.live ? kIdlePing : std::chrono::seconds(1));
      if (!waiting.empty()) wake = std::min(wake, hold_until);
      for (auto it = flight.begin(); it != flight.end();) {
        InFlight& f = it->second;
        // Not while answers wait unread: a receipt may be among them.
        if (now >= f.deadline && conn_.queued_stanzas() == 0) {
          stop = ClientError(ErrorKind::connection,
                             "no receipt from " + options_.component + " within " +
                                 std::to_string(options_.timeout.count()) +
                                 " s; unreceipted messages are kept in the outbox and sent by the next command");
          it = flight.erase(it);
          continue;
        }
        if (now >= f.resend_at && !waiting.count({f.seq, it->first})) {
          conn_.send(f.stanza);
          f.quiet = std::min(f.quiet * 2, std::chrono::milliseconds(16000));
          f.resend_at = now + f.quiet;
        }
        wake = std::min({wake, f.resend_at, f.deadline});
        ++it;
      }
      if (flight.empty() && (input_ended || stop)) break;
      if (!input_ended && !stop && flight.size() < window) wake = std::min(wake, now + kInputPoll);
      if (flight.empty() && submitting_) {
        submitting_ = false;  // nothing awaits a receipt: fan-out is shown as it comes
        try {
          co_await drain_deferred(incoming);
        } catch (const ClientError& e) {
          if (e.kind() == ErrorKind::connection) throw;
          spdlog::warn("reading what arrived meanwhile: {}", e.what());  // read next time
        }
        submitting_ = true;
      }

      // 3. Answers: everything already read, up to a batch, under one commit.
      std::vector<xml::Element> got;
      try {
        got.push_back(co_await conn_.next_stanza(std::max(wake - Clock::now(), Clock::duration::zero())));
        while (got.size() < kReceiptBatch && conn_.queued_stanzas() > 0)
          got.push_back(co_await conn_.next_stanza(Clock::duration::zero()));
      } catch (const C2sError& e) {
        if (e.code() != ConnectError::timeout) throw;
      }
      if (got.empty()) {
        if (options.live && flight.empty() && Clock::now() - last_heard >= kIdlePing) {
          co_await conn_.ping(options_.timeout);  // a dead link throws here
          last_heard = Clock::now();
        }
        continue;
      }
      last_heard = Clock::now();
      std::vector<InFlight> again;  // bounced for missing devices: planned afresh
      std::vector<SendOutcome> finished;
      std::vector<xml::Element> other;
      {
        auto tx = device_.store().begin();
        for (auto& st : got) {
          if (auto r = component::parse_receipt(st, options_.component)) {
            auto it = flight.find(r->id);
            if (it == flight.end()) continue;  // a second receipt for a resent message
            InFlight& f = it->second;
            detail::failpoint("before-receipt");
            f.report.stanza_id = r->stanza_id;
            device_.store().outbox().remove(f.origin_id);
            device_.store().history().append(detail::sent_entry(device_, r->stanza_id, f.body, f.to, f.created));
            finished.push_back(outcome_of(f));
            ++progress.receipted;
            waiting.erase({f.seq, it->first});
            hold_backoff = std::chrono::milliseconds(250);
            flight.erase(it);
          } else if (auto b = component::parse_bounce(st, options_.component)) {
            auto it = flight.find(b->id);
            if (it == flight.end()) continue;
            InFlight& f = it->second;
            if (b->error.type == xmpp::ErrorType::wait) {
              if (waiting.empty() || Clock::now() >= hold_until) {
                spdlog::info("the component says wait ({}); holding the window for {} ms", b->error.condition,
                             hold_backoff.count());
                hold_until = Clock::now() + hold_backoff;
                hold_backoff = std::min(hold_backoff * 2, std::chrono::milliseconds(4000));
              }
              waiting.emplace(f.seq, it->first);
              continue;
            }
            if (!b->missing.empty() && !f.replanned) {
              spdlog::info("the component says devices were missing ({}); resending",
                           detail::list_devices(b->missing));
              f.replanned = true;
              again.push_back(std::move(f));
              flight.erase(it);
              continue;
            }
            device_.store().outbox().remove(f.origin_id);
            std::string why = "the component refused the message: " +
                              std::string(xmpp::error_type_name(b->error.type)) + "/" + b->error.condition;
            if (!b->missing.empty()) why += " (still missing: " + detail::list_devices(b->missing) + ")";
            drop_chats_of(f.origin_id);  // left over if they could not be sent with the batch
            finished.push_back(refusal(f.ref, f.to, why));
            ++progress.refused;
            if (options.stop_on_refusal) stop = ClientError(ErrorKind::refused, why);
            flight.erase(it);
          } else {
            other.push_back(std::move(st));
          }
        }
        tx.commit();
      }
      for (const auto& o : finished) report_outcome(o);
      progress.in_flight = flight.size();
      if (options.progress && !finished.empty()) options.progress(progress);
      for (const auto& st : other) co_await handle_unsolicited(st, incoming);
      for (auto& f : again) {
        const std::vector<std::string> users = users_of(f.to);  // named: no temporaries in co_await
        std::optional<Plan> plan;
        std::optional<std::string> why;
        try {
          plan = co_await plan_recipients(users, false);
        } catch (const ClientError& e) {
          if (e.kind() == ErrorKind::connection) throw;
          why = e.what();
        }
        const std::string key = users_key(users);
        if (!why) why = unreachable(f.to, *plan, pep_of(key));
        if (why) {
          device_.store().outbox().remove(f.origin_id);
          ++progress.refused;
          report_outcome(refusal(f.ref, f.to, *why));
          if (options.stop_on_refusal) stop = ClientError(ErrorKind::refused, *why);
          continue;
        }
        {
          auto tx = device_.store().begin();
          seal(f, *plan, pep_of(key));
          tx.commit();
        }
        if (!f.refused.empty()) {
          ++progress.refused;
          report_outcome(refusal(f.ref, f.to, f.refused));
          if (options.stop_on_refusal) stop = ClientError(ErrorKind::refused, f.refused);
          continue;
        }
        f.report.resent = true;
        if (f.pep_only) {  // its chat messages left with its batch
          ++progress.receipted;
          report_outcome(outcome_of(f));
          continue;
        }
        f.quiet = std::chrono::milliseconds(3000);
        launch(std::move(f));
      }
    }
  } catch (...) {
    submitting_ = false;
    throw;
  }
  submitting_ = false;
  try {
    co_await drain_deferred(incoming);
  } catch (const std::exception& e) {
    spdlog::warn("after sending: {}", e.what());  // stored and receipted; the rest is read next time
  }
  progress.in_flight = 0;
  if (stop) throw *stop;  // also set for every message left stuck in the outbox
  co_return progress;
}

}  // namespace multiend::client
