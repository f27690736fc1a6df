#include "server/services/claim_budget.hpp"

namespace multiend::server {

void ClaimBudget::prune(Clock::time_point now) {
  std::erase_if(used_, [&](const auto& kv) { return now - kv.second.start >= window_; });
}

bool ClaimBudget::allows(const std::string& requester, const std::string& target, Clock::time_point now) {
  auto it = used_.find({requester, target});
  if (it == used_.end()) {
    if (used_.size() < kMaxPairs) return true;
    prune(now);
    return used_.size() < kMaxPairs;
  }
  if (now - it->second.start >= window_) return true;
  return it->second.used < per_hour_;
}

void ClaimBudget::spend(const std::string& requester, const std::string& target, std::size_t fresh,
                        Clock::time_point now) {
  if (fresh == 0) return;
  if (used_.size() >= kMaxPairs) prune(now);
  auto [it, added] = used_.try_emplace({requester, target}, Window{now, 0});
  if (added && used_.size() > kMaxPairs) {
    used_.erase(it);
    return;
  }
  if (now - it->second.start >= window_) it->second = Window{now, 0};
  it->second.used += fresh;
}

}  // namespace multiend::server
