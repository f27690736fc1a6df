#include "server/services/account_limits.hpp"

#include <algorithm>

namespace multiend::server {
namespace {
// Past this many tracked accounts, idle ones with full buckets are dropped on the next admit.
constexpr std::size_t kPruneAbove = 10000;
}  // namespace

void AccountLimits::refill(Account& a, Clock::time_point now) const {
  const double burst = static_cast<double>(s_.message_burst_per_account);
  if (now > a.refilled) {
    const double secs = std::chrono::duration<double>(now - a.refilled).count();
    a.tokens = std::min(burst, a.tokens + secs * static_cast<double>(s_.message_rate_per_account));
  }
  a.refilled = now;
}

bool AccountLimits::idle_and_full(const Account& a, Clock::time_point now) const {
  if (a.inflight != 0) return false;
  Account copy = a;
  refill(copy, now);
  return copy.tokens >= static_cast<double>(s_.message_burst_per_account);
}

void AccountLimits::prune(Clock::time_point now) {
  std::erase_if(accounts_, [&](const auto& kv) { return idle_and_full(kv.second, now); });
}

const char* AccountLimits::admit(const std::string& account, std::size_t bytes, Kind kind, Clock::time_point now) {
  if (inflight_ >= s_.max_inflight) return "max_inflight";
  if (bytes_ + bytes > s_.max_inflight_bytes) return "max_inflight_bytes";
  if (accounts_.size() > kPruneAbove) prune(now);
  auto [it, fresh] = accounts_.try_emplace(account);
  Account& a = it->second;
  if (fresh) {
    a.tokens = static_cast<double>(s_.message_burst_per_account);
    a.refilled = now;
  }
  const char* refused = nullptr;
  if (a.inflight >= s_.max_inflight_per_account) refused = "max_inflight_per_account";
  else if (a.bytes + bytes > s_.max_inflight_bytes_per_account) refused = "max_inflight_bytes_per_account";
  else if (kind == Kind::mam_query && a.mam >= s_.max_mam_queries_per_account) refused = "max_mam_queries_per_account";
  else if (kind == Kind::message) {
    refill(a, now);
    if (a.tokens < 1.0) refused = "message_rate_per_account";
    else a.tokens -= 1.0;
  }
  if (refused) {
    if (fresh) accounts_.erase(it);
    return refused;
  }
  ++a.inflight;
  a.bytes += bytes;
  if (kind == Kind::mam_query) ++a.mam;
  ++inflight_;
  bytes_ += bytes;
  return nullptr;
}

void AccountLimits::release(const std::string& account, std::size_t bytes, Kind kind, Clock::time_point now) {
  --inflight_;
  bytes_ -= bytes;
  auto it = accounts_.find(account);
  if (it == accounts_.end()) return;  // cannot happen: admitted accounts stay while in flight
  Account& a = it->second;
  --a.inflight;
  a.bytes -= bytes;
  if (kind == Kind::mam_query) --a.mam;
  if (idle_and_full(a, now)) accounts_.erase(it);
}

}  // namespace multiend::server
