// Pieces of sending shared by one-shot `send` (send.cpp) and the windowed bulk sender
// (bulk_send.cpp). Internal to client/app.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/app/device.hpp"
#include "client/store/outbox_store.hpp"

namespace multiend::client::detail {

omemo::DeviceAddress address(const std::string& jid, std::uint32_t device);
// Encrypts once for every planned device; the caller holds the store's transaction.
omemo::EncryptOutcome encrypt_for(Device& device, const std::vector<omemo::DeviceAddress>& devices,
                                  const std::map<omemo::DeviceAddress, omemo::Bundle>& bundles,
                                  const std::optional<std::string>& body, std::int64_t now);
std::string failure_reason(const boost::system::error_code& ec);
HistoryEntry sent_entry(const Device& device, const std::string& stanza_id, const std::string& body,
                        const std::vector<std::string>& to, std::int64_t now);
OutboxEntry outbox_entry(const std::string& origin_id, const xml::Element& stanza, const std::string& body,
                         const std::vector<std::string>& to, std::int64_t now);
// MULTIEND_TEST_FAILPOINT: dies as SIGKILL would at `where` (the exactly-once tests).
void failpoint(std::string_view where);
std::string list_devices(const std::vector<omemo::DeviceAddress>& v);
// A device first met through its bundle (either generation): pins `ik` (refused when another key
// is pinned for it) and asks whether it may get keys; a refusal goes to `skipped` with the reason.
// A known device of a plan: distrusted or (with a session) not usable goes to `skipped`, usable
// with a session to `devices`; true when it has no session yet and needs its bundle.
bool sort_known(TrustStore& trust, const omemo::DeviceAddress& a, bool has_session,
                std::vector<omemo::DeviceAddress>& devices,
                std::vector<std::pair<omemo::DeviceAddress, std::string>>& skipped);
bool admit_from_bundle(TrustStore& trust, const omemo::DeviceAddress& a, const crypto::Ed25519Public& ik,
                       std::vector<std::pair<omemo::DeviceAddress, std::string>>& skipped);

}  // namespace multiend::client::detail
