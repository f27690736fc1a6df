#include "server/component.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

#include "server/db/archive_store.hpp"
#include "server/db/database.hpp"
#include "server/db/device_store.hpp"
#include "server/db/migrations.hpp"
#include "server/http/health_server.hpp"
#include "server/services/router.hpp"

namespace multiend::server {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

asio::awaitable<bool> sleep_unless_stopped(std::chrono::steady_clock::duration d, const bool& stopping) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  boost::system::error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  co_return !stopping;
}

DatabaseOptions database_options(const Config& c) {
  DatabaseOptions o;
  o.url = c.database_url;
  o.pool_size = c.db_pool_size;
  o.statement_timeout_seconds = c.request_timeout_seconds;
  o.connect_timeout_seconds = c.connect_timeout_seconds;
  return o;
}

class Component {
 public:
  explicit Component(const Config& c)
      : config_(c),
        db_(database_options(c), metrics_),
        stream_(ioc_, c, metrics_),
        ctx_{config_, metrics_, db_, stream_, ioc_.get_executor()},
        archive_(ctx_),
        pubsub_(ctx_),
        mam_(ctx_),
        router_(ctx_, archive_, pubsub_, mam_),
        http_(ioc_.get_executor(), c.http_address, metrics_,
              [this] { return stream_.writable() && db_.healthy(); }, c.max_http_connections) {}

  int run() {
    spdlog::info("multiend-component: serving {} for users of {}, HTTP on {}", config_.component_domain,
                 config_.user_domain, config_.http_address);
    stream_.on_stanza([this](xml::Element s) { router_.dispatch(std::move(s)); });
    stream_.on_connected([this] { asio::co_spawn(ioc_, archive_.resume_fanout(), asio::detached); });
    asio::signal_set signals(ioc_, SIGINT, SIGTERM);
    signals.async_wait([this](boost::system::error_code ec, int sig) {
      if (!ec) asio::co_spawn(ioc_, shutdown(sig), asio::detached);
    });
    asio::co_spawn(ioc_, migrate_then_serve(), asio::detached);
    asio::co_spawn(ioc_, http_.run(), asio::detached);
    ioc_.run();
    db_.stop();
    spdlog::info("multiend-component: stopped");
    return 0;
  }

 private:
  // The database may come up after us: keep trying, reporting not-ready meanwhile.
  asio::awaitable<void> migrate_then_serve() {
    for (int attempt = 0; !stopping_; ++attempt) {
      try {
        auto r = co_await db_.run([](pqxx::connection& c) { return migrate(c); });
        spdlog::info("database schema at version {}", r.to_version);
        break;
      } catch (const std::exception& e) {
        spdlog::warn("database not usable yet: {}", e.what());
      }
      if (!co_await sleep_unless_stopped(seconds(std::min(1 << std::min(attempt, 4), 10)), stopping_)) co_return;
    }
    asio::co_spawn(ioc_, stream_.run(), asio::detached);
    asio::co_spawn(ioc_, periodic(milliseconds(200), [this]() -> asio::awaitable<void> { co_await archive_.flush_fanout_marks(); }), asio::detached);
    asio::co_spawn(ioc_, periodic(seconds(5), [this]() -> asio::awaitable<void> { co_await probe_database(); }), asio::detached);
    // Retention and pruning also run right away: a component restarted more often than the
    // interval (deployments, crashes) would otherwise never run them.
    asio::co_spawn(ioc_, periodic(seconds(config_.retention_interval_seconds), [this]() -> asio::awaitable<void> { co_await expire(); }, true), asio::detached);
    asio::co_spawn(ioc_, periodic(seconds(config_.prune_interval_seconds), [this]() -> asio::awaitable<void> { co_await prune(); }, true), asio::detached);
  }

  // Runs f every `every` (first at once if at_start) until stopping; a failed run is logged and
  // retried at the next tick. Kept to one plain loop with no helper coroutine and no enum
  // parameter: GCC 12 garbled this coroutine's parameters (and crashed) in those shapes.
  template <class F>
  asio::awaitable<void> periodic(std::chrono::steady_clock::duration every, F f, bool at_start = false) {
    bool due = at_start;
    for (;;) {
      if (!due) {
        const bool go_on = co_await sleep_unless_stopped(every, stopping_);
        if (!go_on) break;
      }
      due = false;
      if (stopping_) break;
      try {
        co_await f();
      } catch (const std::exception& e) {
        spdlog::warn("background task: {}", e.what());
      }
    }
  }

  asio::awaitable<void> probe_database() {
    const bool was = db_.healthy();
    try {
      co_await db_.run([](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        tx.exec("SELECT 1");
      });
    } catch (const std::exception& e) {
      if (was) spdlog::warn("database unreachable: {}", e.what());
      co_return;
    }
    if (!was) {
      spdlog::info("database reachable again");
      co_await archive_.resume_fanout();
    }
  }

  asio::awaitable<void> expire() {
    const std::int64_t age = config_.retention_seconds;
    for (;;) {
      auto n = co_await db_.run([age](pqxx::connection& c) { return archive_store::expire(c, age, 1000); });
      metrics_.messages_expired.Increment(static_cast<double>(n));
      if (n) spdlog::info("retention: deleted {} messages", n);
      if (n < 1000 || stopping_) break;
    }
  }

  asio::awaitable<void> prune() {
    const std::int64_t age = config_.device_inactivity_seconds;
    auto n = co_await db_.run([age](pqxx::connection& c) { return device_store::prune_inactive(c, age); });
    if (n) spdlog::info("pruned {} devices of inactive accounts", n);
  }

  asio::awaitable<void> shutdown(int sig) {
    spdlog::info("signal {}: draining", sig);
    stopping_ = true;
    router_.stop_accepting();
    const auto until = std::chrono::steady_clock::now() + seconds(config_.shutdown_grace_seconds);
    while (router_.inflight() > 0 && std::chrono::steady_clock::now() < until) {
      asio::steady_timer t(ioc_, milliseconds(20));
      co_await t.async_wait(asio::use_awaitable);
    }
    if (router_.inflight() > 0) spdlog::warn("{} stanzas still in flight at shutdown", router_.inflight());
    // Write what is queued and close the stream, then record which fan-outs were written:
    // the rest is delivered by the next start.
    stream_.stop();
    const auto write_until = std::chrono::steady_clock::now() + seconds(3);
    while (!stream_.idle() && std::chrono::steady_clock::now() < write_until) {
      asio::steady_timer t(ioc_, milliseconds(10));
      co_await t.async_wait(asio::use_awaitable);
    }
    try {
      co_await archive_.flush_fanout_marks();
    } catch (...) {
    }
    http_.stop();
    ioc_.stop();
  }

  const Config& config_;
  asio::io_context ioc_{1};
  Metrics metrics_;
  Database db_;
  ComponentStream stream_;
  ServiceContext ctx_;
  ArchiveService archive_;
  PubsubService pubsub_;
  MamService mam_;
  Router router_;
  HealthServer http_;
  bool stopping_ = false;
};

}  // namespace

int run_component(const Config& config) {
  Component c(config);
  return c.run();
}

int run_migrations(const Config& config) {
  pqxx::connection conn(connection_string(database_options(config)));
  auto r = migrate(conn);
  spdlog::info("schema migrated from version {} to {}", r.from_version, r.to_version);
  return 0;
}

}  // namespace multiend::server
