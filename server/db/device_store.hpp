// SQL for device lists, bundles, one-time prekeys and node subscriptions. Blocking calls on a
// pqxx::connection (run them through Database::run); every function is one transaction.
// Knows nothing of XMPP beyond the bare JIDs and ids it stores.
#pragma once

#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "protocol/omemo/bundle.hpp"

namespace multiend::server {

struct PublishBundleResult {
  bool list_changed = false;  // the device was not on the list before
  bool over_limit = false;    // a new device beyond max_devices: nothing was stored
};

struct ClaimedBundle {
  std::uint32_t device_id = 0;
  omemo::Bundle bundle;   // with exactly one prekey (none if the device has none at all)
  bool reused = false;    // no unclaimed prekey was left
  std::int64_t remaining = 0;
  bool notify_low = false;  // remaining fell below the threshold and the owner was not told this hour
};

struct PrekeyCount {
  std::uint32_t device_id = 0;
  std::int64_t remaining = 0;
  std::int64_t total = 0;
};

namespace device_store {

// A new device is refused (over_limit) when the owner already has `max_devices`; the owner's
// row lock (ensure_owner) serialises concurrent publishes of one account, so the cap holds.
PublishBundleResult publish_bundle(pqxx::connection& c, const std::string& owner, std::uint32_t device,
                                   const omemo::Bundle& b, std::size_t max_devices);
// Replaces the list; returns true when it changed.
bool publish_device_list(pqxx::connection& c, const std::string& owner, const std::vector<std::uint32_t>& ids);
// Removes a device; returns true when it was on the list.
bool retract_device(pqxx::connection& c, const std::string& owner, std::uint32_t device);
std::vector<std::uint32_t> device_list(pqxx::connection& c, const std::string& owner);
// Device lists of several owners at once (for the coverage check): (owner, device) pairs.
std::vector<std::pair<std::string, std::uint32_t>> device_lists(pqxx::connection& c,
                                                                 const std::vector<std::string>& owners);
// Claims one prekey per requested device (all devices with a bundle when `devices` is empty)
// for `requester` (a full JID), in one round trip. `fresh` false: the requester's account is
// past its hourly budget; it gets an already claimed prekey (the last resort), not a new one.
std::vector<ClaimedBundle> claim_bundles(pqxx::connection& c, const std::string& owner,
                                         const std::vector<std::uint32_t>& devices, const std::string& requester,
                                         std::int64_t retry_seconds, std::int64_t low_threshold, bool fresh = true);
std::vector<PrekeyCount> prekey_counts(pqxx::connection& c, const std::string& owner);
std::vector<std::pair<std::uint32_t, crypto::Ed25519Public>> identity_keys(pqxx::connection& c,
                                                                           const std::string& owner,
                                                                           std::optional<std::uint32_t> device);
enum class SubscribeResult { subscribed, owner_full, subscriber_full };
// Idempotent; a new subscription is refused when the owner already has `max_per_owner`
// subscribers, or the subscriber's account (its bare JID, any resource) `max_per_subscriber`
// subscriptions. The owner's row lock serialises concurrent subscriptions to one account.
SubscribeResult subscribe(pqxx::connection& c, const std::string& owner, const std::string& node,
                          const std::string& subscriber, std::size_t max_per_owner, std::size_t max_per_subscriber);
void unsubscribe(pqxx::connection& c, const std::string& owner, const std::string& node,
                 const std::string& subscriber);
std::vector<std::string> subscribers(pqxx::connection& c, const std::string& owner, const std::string& node);
// Marks the owner active (archive query) unless that was recorded within `resolution_seconds`.
void touch_owner(pqxx::connection& c, const std::string& owner, std::int64_t resolution_seconds);
// Deletes device lists of owners inactive for longer than `inactive_seconds`; returns how many.
std::int64_t prune_inactive(pqxx::connection& c, std::int64_t inactive_seconds);

}  // namespace device_store
}  // namespace multiend::server
