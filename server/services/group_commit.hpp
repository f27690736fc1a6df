// Group commit for the archive: messages submitted while a write is in flight are written
// together in the next transaction, so one message alone commits at once when traffic is
// quiet and hundreds share a commit when it is busy. A submitter resumes only after its
// message is durably committed (or the write failed: then it gets the exception).
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

class GroupCommit {
 public:
  GroupCommit(Database& db, Metrics& metrics, std::size_t batch_max) : db_(db), metrics_(metrics), batch_max_(batch_max) {}

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

  Database& db_;
  Metrics& metrics_;
  std::size_t batch_max_;
  std::deque<Pending*> queue_;
  bool flushing_ = false;
};

}  // namespace multiend::server
