#include "server/services/group_commit.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

namespace multiend::server {

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

asio::awaitable<void> GroupCommit::flush_loop() {
  while (!queue_.empty()) {
    std::vector<Pending*> batch;
    while (!queue_.empty() && batch.size() < batch_max_) {
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
      results = co_await db_.run([&rows](pqxx::connection& c) { return archive_store::insert_batch(c, rows); });
    } catch (...) {
      error = std::current_exception();
    }
    metrics_.archive_write_seconds.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    metrics_.archive_batch_size.Observe(static_cast<double>(batch.size()));
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (error) batch[i]->error = error;
      else batch[i]->result = results[i];
      batch[i]->done = true;
      batch[i]->wake->cancel();
    }
  }
  flushing_ = false;
}

}  // namespace multiend::server
