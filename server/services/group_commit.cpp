#include "server/services/group_commit.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdlib>
#include <string_view>

namespace multiend::server {
namespace {

constexpr std::string_view kInDoubtPrefix = "failpoint-in-doubt-";
constexpr std::string_view kUnresolvedPrefix = "failpoint-in-doubt-unresolved-";
constexpr std::string_view kBadRowPrefix = "failpoint-bad-row-";

bool any_origin_with(const std::vector<const NewMessage*>& rows, std::string_view prefix) {
  for (const NewMessage* m : rows)
    if (m->origin_id.starts_with(prefix)) return true;
  return false;
}

// bad_row: PostgreSQL refused the data (SQLSTATE class 22 data exception, 23 integrity): one
// message of the batch may be at fault, so each is retried alone. Anything else (timeouts,
// the database away, a bug) fails the batch: retrying 256 messages one by one would only
// multiply the wait.
enum class Failure { none, in_doubt, bad_row, other };

Failure classify(const std::exception_ptr& ep) {
  if (!ep) return Failure::none;
  try {
    std::rethrow_exception(ep);
  } catch (const pqxx::in_doubt_error&) {
    return Failure::in_doubt;
  } catch (const pqxx::sql_error& e) {
    const std::string state = e.sqlstate();
    return state.starts_with("22") || state.starts_with("23") ? Failure::bad_row : Failure::other;
  } catch (...) {
    return Failure::other;
  }
}

}  // namespace

std::size_t approx_bytes(const NewMessage& m) {
  std::size_t n = sizeof(NewMessage) + m.sender_bare.size() + m.sender_full.size() + m.origin_id.size() + m.stanza.size();
  for (const auto& r : m.recipients) n += sizeof(std::string) + r.size();
  for (const auto& [jid, id] : m.keyed_devices) n += sizeof(std::pair<std::string, std::uint32_t>) + jid.size();
  return n;
}

GroupCommit::GroupCommit(Database& db, Metrics& metrics, std::size_t batch_max, std::size_t batch_max_bytes)
    : db_(db), metrics_(metrics), batch_max_(batch_max), batch_max_bytes_(batch_max_bytes) {
  const char* fp = std::getenv("MULTIEND_TEST_FAILPOINT");
  failpoint_in_doubt_ = fp && std::string_view(fp) == "in-doubt-commit";
  if (failpoint_in_doubt_) spdlog::warn("test failpoints in-doubt-commit and bad-row are armed");
}

asio::awaitable<StoredMessage> GroupCommit::submit(const NewMessage& m) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer wake(ex, std::chrono::steady_clock::time_point::max());
  // Members are assigned one by one: GCC 12 miscompiles aggregate initialisation of
  // coroutine locals that own memory (a moved std::string kept pointing into another frame).
  Pending p;
  p.message = &m;
  p.wake = &wake;
  queue_.push_back(&p);
  if (!flushing_) {
    flushing_ = true;
    asio::co_spawn(ex, flush_loop(), asio::detached);
  }
  while (!p.done) {
    boost::system::error_code ec;
    co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (p.error) std::rethrow_exception(p.error);
  co_return p.result;
}

asio::awaitable<std::vector<StoredMessage>> GroupCommit::write(const std::vector<const NewMessage*>& rows) {
  const bool fail_in_doubt = failpoint_in_doubt_ && any_origin_with(rows, kInDoubtPrefix);
  const bool fail_lookup = failpoint_in_doubt_ && any_origin_with(rows, kUnresolvedPrefix);
  const bool bad_row = failpoint_in_doubt_ && any_origin_with(rows, kBadRowPrefix);
  std::exception_ptr error;
  std::vector<StoredMessage> results;
  try {
    results = co_await db_.run([&rows, fail_in_doubt, bad_row](pqxx::connection& c) {
      if (bad_row) throw pqxx::data_exception("failpoint: a row PostgreSQL refuses", "", "22000");
      auto r = archive_store::insert_batch(c, rows);
      // Only a commit that stored such a message fresh (not its resend) is made doubtful.
      bool fresh = false;
      for (std::size_t i = 0; i < rows.size(); ++i)
        fresh |= rows[i]->origin_id.starts_with(kInDoubtPrefix) && !r[i].duplicate && r[i].missing.empty();
      if (fail_in_doubt && fresh) throw pqxx::in_doubt_error("failpoint: connection lost during COMMIT");
      return r;
    });
  } catch (...) {
    error = std::current_exception();
  }
  if (classify(error) != Failure::in_doubt) {
    if (error) std::rethrow_exception(error);
    co_return results;
  }
  // The COMMIT may or may not have happened: ask the database (on a fresh connection).
  spdlog::warn("archive: a commit of {} messages ended in doubt; looking them up", rows.size());
  metrics_.error("commit-in-doubt");
  auto found = co_await db_.run([&rows, fail_lookup](pqxx::connection& c) {
    if (fail_lookup) throw pqxx::broken_connection("failpoint: database still unreachable");
    return archive_store::lookup(c, rows);
  });
  for (std::size_t i = 0; i < rows.size(); ++i)
    if (!found[i]) std::rethrow_exception(error);  // not stored: all of it fails, senders resend
  results.clear();
  for (auto& f : found) results.push_back(std::move(*f));
  co_return results;
}

asio::awaitable<void> GroupCommit::flush_loop() {
  while (!queue_.empty()) {
    std::vector<Pending*> batch;
    std::size_t bytes = 0;
    while (!queue_.empty() && batch.size() < batch_max_) {
      const std::size_t b = approx_bytes(*queue_.front()->message);
      if (!batch.empty() && bytes + b > batch_max_bytes_) break;
      bytes += b;
      batch.push_back(queue_.front());
      queue_.pop_front();
    }
    std::vector<const NewMessage*> rows;
    rows.reserve(batch.size());
    for (Pending* p : batch) rows.push_back(p->message);
    const auto t0 = std::chrono::steady_clock::now();
    std::exception_ptr error;
    std::vector<StoredMessage> results;
    try {
      results = co_await write(rows);
    } catch (...) {
      error = std::current_exception();
    }
    if (error && batch.size() > 1 && classify(error) == Failure::bad_row) {
      // Something in the batch was refused: find it by writing each message alone.
      spdlog::warn("archive: a batch of {} failed; retrying its messages one by one", batch.size());
      for (Pending* p : batch) {
        const std::vector<const NewMessage*> alone{p->message};
        try {
          auto one = co_await write(alone);
          p->result = one.at(0);
        } catch (...) {
          p->error = std::current_exception();
        }
      }
    } else {
      for (std::size_t i = 0; i < batch.size(); ++i) {
        if (error) batch[i]->error = error;
        else batch[i]->result = results[i];
      }
    }
    metrics_.archive_write_seconds.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    metrics_.archive_batch_size.Observe(static_cast<double>(batch.size()));
    for (Pending* p : batch) {
      p->done = true;
      p->wake->cancel();
    }
  }
  flushing_ = false;
}

}  // namespace multiend::server
