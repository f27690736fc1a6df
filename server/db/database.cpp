#include "server/db/database.hpp"

#include <spdlog/spdlog.h>

namespace multiend::server {

Database::Database(std::string url, int pool_size, std::int64_t statement_timeout_seconds, Metrics& metrics)
    : url_(std::move(url)),
      statement_timeout_seconds_(statement_timeout_seconds),
      metrics_(metrics),
      pool_(static_cast<std::size_t>(pool_size)) {
  metrics_.db_pool_size.Set(pool_size);
}

Database::~Database() { stop(); }

void Database::stop() {
  pool_.stop();
  pool_.join();
}

std::unique_ptr<pqxx::connection> Database::acquire() {
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
    auto c = std::make_unique<pqxx::connection>(url_);
    c->set_variable("statement_timeout", std::to_string(statement_timeout_seconds_ * 1000));
    c->set_variable("lock_timeout", std::to_string(statement_timeout_seconds_ * 1000));
    metrics_.db_pool_in_use.Increment();
    return c;
  } catch (const std::exception&) {
    healthy_ = false;
    throw;
  }
}

void Database::release(std::unique_ptr<pqxx::connection> c) {
  metrics_.db_pool_in_use.Decrement();
  healthy_ = true;
  std::lock_guard lock(mu_);
  idle_.push_back(std::move(c));
}

bool Database::ping() {
  try {
    auto f = [](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      tx.exec("SELECT 1");
    };
    with_connection(f);
    return true;
  } catch (const std::exception& e) {
    spdlog::debug("database ping failed: {}", e.what());
    healthy_ = false;
    return false;
  }
}

}  // namespace multiend::server
