// What one account may make the component hold or do at once: stanzas in flight (count and
// memory, per account and overall), a message rate (token bucket) and MAM queries in flight.
// Pure bookkeeping: the time is passed in, nothing here does I/O, so tests drive it exactly.
// Accounts are bare JIDs as the XMPP server stamped them; state for an idle account with a
// full bucket is dropped, so the table holds only accounts that are busy or were just now.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <unordered_map>

namespace multiend::server {

class AccountLimits {
 public:
  using Clock = std::chrono::steady_clock;
  struct Settings {
    std::size_t max_inflight = 2000;
    std::size_t max_inflight_bytes = 256 * 1024 * 1024;
    std::size_t max_inflight_per_account = 256;
    std::size_t max_inflight_bytes_per_account = 32 * 1024 * 1024;
    std::size_t message_rate_per_account = 100;  // per second
    std::size_t message_burst_per_account = 2000;
    std::size_t max_mam_queries_per_account = 4;
  };
  enum class Kind { other, message, mam_query };

  explicit AccountLimits(Settings s) : s_(s) {}

  // Admits one stanza, or returns the name of the limit (its config key) that refuses it.
  // An admitted stanza must be released with the same account, bytes and kind.
  const char* admit(const std::string& account, std::size_t bytes, Kind kind, Clock::time_point now);
  void release(const std::string& account, std::size_t bytes, Kind kind, Clock::time_point now);

  std::size_t inflight() const noexcept { return inflight_; }
  std::size_t inflight_bytes() const noexcept { return bytes_; }
  std::size_t tracked_accounts() const noexcept { return accounts_.size(); }

 private:
  struct Account {
    std::size_t inflight = 0;
    std::size_t bytes = 0;
    std::size_t mam = 0;
    double tokens = 0;
    Clock::time_point refilled{};
  };
  void refill(Account& a, Clock::time_point now) const;
  bool idle_and_full(const Account& a, Clock::time_point now) const;
  void prune(Clock::time_point now);

  Settings s_;
  std::unordered_map<std::string, Account> accounts_;
  std::size_t inflight_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace multiend::server
