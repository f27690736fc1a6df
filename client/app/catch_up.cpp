// Receiving: catching up from the archive (MAM pages after the last position) and live
// fan-out. Each page is decrypted and stored in one transaction together with the new
// position, so a crash mid-page replays the page and spends no message key twice.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "client/app/client.hpp"
#include "client/app/errors.hpp"

namespace multiend::client {
namespace {

// Senders whose device id is not on the device list stored here, for messages this device
// would decrypt, not yet refreshed for that device in this process.
std::vector<std::string> stale_lists(Device& device, const std::vector<component::Archived>& page,
                                     const std::set<omemo::DeviceAddress>& refreshed,
                                     std::vector<omemo::DeviceAddress>& senders) {
  std::vector<std::string> out;
  for (const auto& a : page) {
    auto env = component::open_archived(a);
    if (!env || !env->encrypted.find_key(device.jid(), device.device_id())) continue;
    omemo::DeviceAddress sender;
    sender.jid = env->sender_bare;
    sender.device = env->encrypted.sid;
    if (sender.jid == device.jid() && sender.device == device.device_id()) continue;
    if (refreshed.contains(sender) || device.listed(sender)) continue;
    senders.push_back(sender);
    if (std::find(out.begin(), out.end(), sender.jid) == out.end()) out.push_back(sender.jid);
  }
  return out;
}

}  // namespace

asio::awaitable<void> Client::refresh_device_lists(const std::vector<component::Archived>& page) {
  std::vector<omemo::DeviceAddress> senders;
  // A list that cannot be fetched fails the catch-up (fetch_device_list throws) rather than
  // marking the sender's messages unlisted for good: the page is read again next time.
  for (const std::string& jid : stale_lists(device_, page, refreshed_lists_, senders)) co_await fetch_device_list(jid);
  if (refreshed_lists_.size() + senders.size() > 4096) refreshed_lists_.clear();  // bounded
  refreshed_lists_.insert(senders.begin(), senders.end());
}

// One MAM page request running beside the caller, so the next page streams in while the
// current one is decrypted and committed (fsync). Shared with the coroutine that runs it: an
// exception that ends the catch-up early leaves it to finish on its own.
struct Client::PageFetch {
  explicit PageFetch(const asio::any_io_executor& ex) : done_signal(ex) {}
  std::string qid;  // of the attempt that was answered (a fresh one per attempt)
  std::optional<xml::Element> reply;
  std::exception_ptr error;
  bool done = false;
  asio::steady_timer done_signal;  // cancelled when done
};

asio::awaitable<void> Client::run_page_fetch(std::shared_ptr<PageFetch> fetch, std::optional<std::string> after) {
  // A named function, not a temporary in the co_await: GCC 12 destroys such a temporary's
  // captures twice (here a shared_ptr, which then freed the fetch under its owner).
  const std::function<xml::Element()> make = [this, fetch, after] {
    fetch->qid = new_id();  // results of an attempt that went unanswered are not this page's
    return component::mam_query(options_.component, fetch->qid, after, component::kMamPageMax);
  };
  xml::Element reply = co_await request(make);
  fetch->reply = std::move(reply);
}

std::shared_ptr<Client::PageFetch> Client::start_page_fetch(const asio::any_io_executor& ex,
                                                           const std::optional<std::string>& after) {
  auto fetch = std::make_shared<PageFetch>(ex);
  asio::co_spawn(ex, run_page_fetch(fetch, after), [fetch](std::exception_ptr e) {
    fetch->error = e;
    fetch->done = true;
    fetch->done_signal.cancel();
  });
  return fetch;
}

asio::awaitable<CatchUpReport> Client::catch_up(const MessageSink& sink, const ProgressSink& progress) {
  CatchUpReport report;
  std::optional<std::string> after = device_.store().history().last_stanza_id();
  std::vector<omemo::DeviceAddress> empty_to, repair;
  bool republish = false;
  catching_up_ = true;
  HistorySync sync(device_);
  std::set<std::string> seen_lasts;  // a server sending us round in a cycle is caught here
  bool restarted = false;
  try {
    const asio::any_io_executor ex = co_await asio::this_coro::executor;
    std::shared_ptr<PageFetch> fetch = start_page_fetch(ex, after);
    for (;;) {
      while (!fetch->done) {  // woken by cancel() when it is done
        boost::system::error_code ec;
        fetch->done_signal.expires_after(std::chrono::hours(1));
        co_await fetch->done_signal.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      if (fetch->error) std::rethrow_exception(fetch->error);
      xml::Element reply = std::move(*fetch->reply);
      const std::string qid = fetch->qid;
      if (auto err = component::iq_error(reply)) {
        if (err->condition == "item-not-found" && after && !restarted) {
          restarted = true;
          // Our position expired from the archive (retention): read what is left from the start.
          spdlog::info("archive position {} is gone; catching up from the oldest message", *after);
          after.reset();
          fetch = start_page_fetch(ex, after);
          continue;
        }
        throw ClientError(ErrorKind::refused, "archive query refused: " + err->condition);
      }
      auto fin = component::parse_mam_fin(reply);
      if (!fin) throw ClientError(ErrorKind::refused, "archive query: malformed answer");
      // A server that never says complete while making no progress (the same page, or a
      // cycle of pages) would keep us here forever.
      if (!fin->complete && fin->last && ((after && *fin->last == *after) || !seen_lasts.insert(*fin->last).second))
        throw ClientError(ErrorKind::refused, "archive query made no progress (the same page again)");
      std::vector<component::Archived> page;
      std::size_t page_bytes = 0;
      while (fin->last && (page.empty() || page.back().stanza_id != *fin->last)) {
        xml::Element st = co_await conn_.next_stanza(options_.timeout);
        if (auto a = component::parse_mam_result(st, options_.component, qid)) {
          // At most what we asked for, and at most max_page_bytes held at once.
          page_bytes += approx_bytes(a->message);
          if (page.size() >= component::kMamPageMax)
            throw ClientError(ErrorKind::refused, "archive query: more results than asked for");
          if (page_bytes > options_.max_page_bytes)
            throw ClientError(ErrorKind::refused, "archive query: a page larger than " +
                                                      std::to_string(options_.max_page_bytes >> 20) + " MiB");
          page.push_back(std::move(*a));
        } else {
          co_await handle_unsolicited(st, sink);
        }
      }
      if (!fin->complete && page.empty())
        throw ClientError(ErrorKind::refused, "archive query made no progress (an empty page, not complete)");
      // The next page is asked for now and streams in while this one is decrypted and stored.
      const bool last_page = fin->complete || !fin->last;
      if (!last_page) fetch = start_page_fetch(ex, fin->last);
      co_await refresh_device_lists(page);
      std::vector<HistoryEntry> shown;
      {
        auto tx = device_.store().begin();
        const std::int64_t now = options_.clock();
        for (const auto& a : page) {
          Received r = device_.receive(a, now, true);
          for (auto& d : r.empty_reply_to) empty_to.push_back(std::move(d));
          if (r.repair) repair.push_back(*r.repair);
          republish = republish || r.prekey_used;
          if (r.entry) shown.push_back(std::move(*r.entry));
        }
        if (!page.empty()) device_.store().history().set_last_stanza_id(page.back().stanza_id);
        tx.commit();
      }
      report.fetched += page.size();
      report.stored += shown.size();
      if (sink)
        for (const auto& e : shown) sink(e);
      if (progress) progress(report.fetched);
      if (last_page) break;
      after = fin->last;
    }
  } catch (...) {
    catching_up_ = false;
    throw;  // `sync` ends history sync on the way out
  }
  catching_up_ = false;
  for (auto& d : sync.finish()) empty_to.push_back(std::move(d));
  co_await after_receive(std::move(empty_to), std::move(repair), republish);
  co_await drain_deferred(sink);
  co_return report;
}

void Client::announce() {
  // Fan-out is a headline to the bare JID: the server delivers it to available resources.
  xml::Element presence("presence");
  conn_.send(presence);
}

asio::awaitable<std::size_t> Client::listen(std::chrono::steady_clock::time_point until,
                                            std::optional<std::size_t> count, const MessageSink& sink,
                                            const std::function<void(const std::string& full_jid)>& on_listening) {
  std::size_t shown = 0;
  MessageSink counting = [&](const HistoryEntry& e) {
    ++shown;
    if (sink) sink(e);
  };
  const ProgressSink no_progress;
  co_await catch_up(counting, no_progress);
  co_await catch_up_server(counting);
  announce();
  // From here on fan-out reaches this resource: scripts may start sending.
  if (on_listening && conn_.jid()) on_listening(conn_.jid()->to_string());
  while (!count || shown < *count) {
    const auto left = until - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) break;
    xml::Element st("message");
    try {
      st = co_await conn_.next_stanza(left);
    } catch (const C2sError& e) {
      if (e.code() == ConnectError::timeout) break;
      throw;
    }
    co_await handle_unsolicited(st, counting);
    co_await drain_deferred(counting);  // what an empty reply's submit held back
  }
  co_return shown;
}

}  // namespace multiend::client
