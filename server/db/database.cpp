#include "server/db/database.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include "server/db/conninfo.hpp"

namespace multiend::server {
namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string connection_string(const DatabaseOptions& o) {
  ConnTimeouts t;
  t.connect_timeout_seconds = o.connect_timeout_seconds;
  // Unacknowledged data for longer than a statement may run means the peer is gone.
  t.tcp_user_timeout_ms = (o.statement_timeout_seconds + 5) * 1000;
  std::string error;
  auto ci = conninfo_with_timeouts(o.url, t, &error);
  if (!ci) throw std::invalid_argument("database_url: " + error);
  return *ci;
}

Database::Database(DatabaseOptions options, Metrics& metrics)
    : options_(std::move(options)),
      conninfo_(connection_string(options_)),
      metrics_(metrics),
      pool_(static_cast<std::size_t>(options_.pool_size)),
      running_(static_cast<std::size_t>(options_.pool_size) + 1) {
  metrics_.db_pool_size.Set(options_.pool_size);
  watchdog_ = std::thread([this] { watchdog(); });
}

Database::~Database() { stop(); }

void Database::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
  pool_.stop();
  pool_.join();
}

void Database::check_queue_wait(std::chrono::steady_clock::time_point queued_at) const {
  // The caller has long been told nothing useful; running it now only lengthens the queue.
  if (std::chrono::steady_clock::now() - queued_at > std::chrono::seconds(options_.statement_timeout_seconds))
    throw DatabaseUnavailable("database busy: the request waited longer than the statement timeout");
}

std::unique_ptr<pqxx::connection> Database::acquire() {
  if (now_ms() < down_until_ms_.load()) throw DatabaseUnavailable("database unreachable (retrying shortly)");
  {
    std::lock_guard lock(mu_);
    while (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      if (c->is_open()) {
        metrics_.db_pool_in_use.Increment();
        return c;
      }
    }
  }
  try {
    auto c = std::make_unique<pqxx::connection>(conninfo_);
    c->set_variable("statement_timeout", std::to_string(options_.statement_timeout_seconds * 1000));
    c->set_variable("lock_timeout", std::to_string(options_.statement_timeout_seconds * 1000));
    metrics_.db_pool_in_use.Increment();
    return c;
  } catch (const std::exception&) {
    healthy_ = false;
    down_until_ms_ = now_ms() + options_.down_retry.count();
    throw;
  }
}

void Database::release(std::unique_ptr<pqxx::connection> c) {
  metrics_.db_pool_in_use.Decrement();
  if (!c->is_open()) {
    healthy_ = false;
    return;
  }
  healthy_ = true;
  down_until_ms_ = 0;  // it answered: whatever failed meanwhile (a connect that timed out) is past
  std::lock_guard lock(mu_);
  idle_.push_back(std::move(c));
}

void Database::drop(std::unique_ptr<pqxx::connection> c) {
  metrics_.db_pool_in_use.Decrement();
  c.reset();
  std::vector<std::unique_ptr<pqxx::connection>> idle;
  {
    std::lock_guard lock(mu_);
    idle.swap(idle_);
  }
}

std::size_t Database::start_running(int fd) {
  std::lock_guard lock(mu_);
  for (std::size_t i = 0; i < running_.size(); ++i)
    if (running_[i].fd < 0) {
      running_[i] = {fd, std::chrono::steady_clock::now(), false};
      return i;
    }
  running_.push_back({fd, std::chrono::steady_clock::now(), false});
  return running_.size() - 1;
}

void Database::stop_running(std::size_t slot) {
  std::lock_guard lock(mu_);
  running_[slot].fd = -1;
}

void Database::watchdog() {
  const auto limit = std::chrono::seconds(options_.statement_timeout_seconds) + options_.watchdog_grace;
  std::unique_lock lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, std::chrono::milliseconds(200));
    const auto now = std::chrono::steady_clock::now();
    bool stalled = false;
    for (auto& r : running_) {
      if (r.fd < 0) continue;
      const auto age = now - r.started;
      stalled |= age > options_.stall_report;
      if (age > limit && !r.cut) {
        // The server enforces statement_timeout itself; past it by this much it is not
        // answering at all. Cutting the socket makes libpq fail the statement now; the
        // connection is dropped by with_connection.
        spdlog::warn("database: a statement has run for {} ms; cutting its connection",
                     std::chrono::duration_cast<std::chrono::milliseconds>(age).count());
        ::shutdown(r.fd, SHUT_RDWR);
        r.cut = true;
        down_until_ms_ = now_ms() + options_.down_retry.count();
        metrics_.error("database-stalled");
      }
    }
    if (stalled != stalled_.load()) {
      if (stalled) spdlog::warn("database: a statement is taking over {} ms; reporting not ready", options_.stall_report.count());
      stalled_ = stalled;
    }
  }
}

}  // namespace multiend::server
