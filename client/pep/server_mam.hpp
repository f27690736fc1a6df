// The account's own archive at its server (XEP-0313 v2 on our bare JID; Prosody's and ejabberd's
// mod_mam): where plain chat messages wait while a device is offline. Its ids are the server's
// (opaque strings, not the component's decimal ids). Pure functions; knows no connection.
// A result is believed only when it answers our query id and comes from our own account
// (no `from`, or our bare JID): anyone can send us a message that looks like a MAM result.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "protocol/error.hpp"
#include "protocol/xml/element.hpp"

namespace multiend::client::pep {

inline constexpr std::uint32_t kServerMamPage = 50;
inline constexpr std::size_t kMaxServerIdBytes = 256;

// One page after `after` (from the start without); `last_only`: the newest message only (RSM
// <before/>), to learn where the archive ends.
xml::Element server_mam_query(const std::string& query_id, const std::optional<std::string>& after, bool last_only);

struct ServerFin {
  bool complete = false;
  std::optional<std::string> last;
};
// Errc::bad_element for anything but a <fin/> result with sane ids.
Result<ServerFin> parse_server_fin(const xml::Element& reply);

struct ServerResult {
  std::string id;
  std::int64_t stamp_us = 0;  // 0 when the delay stamp is missing
  xml::Element message{"message"};
};
std::optional<ServerResult> parse_server_result(const xml::Element& stanza, const std::string& own_bare,
                                                const std::string& query_id);

}  // namespace multiend::client::pep
