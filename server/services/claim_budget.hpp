// How many fresh one-time prekeys one requester account has taken from one target account in
// the current hour. Past the budget the requester gets a prekey it was already given (the last
// resort) instead of a fresh one, so no account can drain another's prekeys. Pure
// bookkeeping with the time passed in; bounded: expired windows are dropped, and past
// kMaxPairs (requester, target) pairs a new pair gets no fresh prekeys until some expire.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <utility>

namespace multiend::server {

class ClaimBudget {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::size_t kMaxPairs = 100000;

  ClaimBudget(std::size_t per_hour, Clock::duration window = std::chrono::hours(1))
      : per_hour_(per_hour), window_(window) {}

  // Whether `requester` (a bare JID) may still take fresh prekeys of `target` now.
  bool allows(const std::string& requester, const std::string& target, Clock::time_point now);
  // Records `fresh` prekeys taken.
  void spend(const std::string& requester, const std::string& target, std::size_t fresh, Clock::time_point now);
  std::size_t tracked_pairs() const noexcept { return used_.size(); }

 private:
  struct Window {
    Clock::time_point start;
    std::size_t used = 0;
  };
  void prune(Clock::time_point now);

  std::size_t per_hour_;
  Clock::duration window_;
  std::map<std::pair<std::string, std::string>, Window> used_;
};

}  // namespace multiend::server
