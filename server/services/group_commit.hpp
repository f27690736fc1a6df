// Group commit for the archive: messages submitted while a write is in flight are written
// together in the next transaction, so one message alone commits at once when traffic is
// quiet and hundreds share a commit when it is busy. A submitter resumes only after its
// message is durably committed (or the write failed: then it gets the exception).
// A batch is bounded in messages and in bytes (one SQL statement holds all of it). When
// PostgreSQL refuses a batch's data (SQLSTATE 22xxx/23xxx), each of its messages is retried
// alone, so one bad row fails one sender. When the commit's outcome is unknown (the
// connection broke during COMMIT), the messages are looked up: those stored are treated as
// stored (duplicates with their fanned_out mark, so the caller fans out what nobody did).
// Runs on the component's single io thread; the write itself runs on a database thread.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <exception>

#include "server/db/archive_store.hpp"
#include "server/db/database.hpp"
#include "server/metrics.hpp"

namespace multiend::server {

// Memory a NewMessage holds (for batch and in-flight bounds).
std::size_t approx_bytes(const NewMessage& m);

class GroupCommit {
 public:
  GroupCommit(Database& db, Metrics& metrics, std::size_t batch_max, std::size_t batch_max_bytes);

  // `m` must live until the returned awaitable completes (callers co_await it at once).
  asio::awaitable<StoredMessage> submit(const NewMessage& m);
  std::size_t queued() const noexcept { return queue_.size(); }

 private:
  struct Pending {
    const NewMessage* message = nullptr;
    StoredMessage result;
    std::exception_ptr error;
    bool done = false;
    asio::steady_timer* wake = nullptr;
  };

  asio::awaitable<void> flush_loop();
  // Writes `rows`; results or the exception that failed them all.
  asio::awaitable<std::vector<StoredMessage>> write(const std::vector<const NewMessage*>& rows);

  Database& db_;
  Metrics& metrics_;
  std::size_t batch_max_;
  std::size_t batch_max_bytes_;
  std::deque<Pending*> queue_;
  bool flushing_ = false;
  // Test failpoints (MULTIEND_TEST_FAILPOINT=in-doubt-commit): a commit that stores a message
  // whose origin-id starts with "failpoint-in-doubt-" reports an unknown outcome after
  // committing; with "failpoint-in-doubt-unresolved-" the lookup that follows fails as well;
  // a write of a batch holding a "failpoint-bad-row-" message fails as PostgreSQL refusing data.
  bool failpoint_in_doubt_ = false;
};

}  // namespace multiend::server
