// What the interop tools share: error names as the Python scripts expect them, and the
// JSON-lines loop (one response line per request line; "quit" ends it). Test code only.
#pragma once

#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "protocol/error.hpp"
#include "protocol/jid.hpp"

namespace multiend::interop {

using json = nlohmann::json;

inline std::string error_name(const boost::system::error_code& ec) {
  static const char* names[] = {"ok", "xml_malformed", "xml_restricted", "xml_too_large", "xml_too_deep",
                                "xml_bad_stream", "bad_jid", "bad_base64", "bad_protobuf", "bad_element",
                                "bad_key", "bad_signature", "mac_mismatch", "bad_padding",
                                "duplicate_message", "too_many_skipped", "no_session", "unknown_prekey",
                                "unknown_signed_prekey", "not_for_this_device", "identity_mismatch",
                                "repair_throttled", "no_prekeys", "limit_exceeded", "unsupported", "bad_request"};
  if (ec.category() == protocol_category() && ec.value() >= 0 &&
      static_cast<std::size_t>(ec.value()) < std::size(names))
    return names[ec.value()];
  return ec.category().name() + std::string(":") + std::to_string(ec.value());
}

inline json fail(const boost::system::error_code& ec) {
  return {{"ok", false}, {"error", error_name(ec)}, {"message", ec.message()}};
}

struct ToolArgs {
  std::string jid;  // bare
  std::uint32_t device = 0;
  std::optional<std::uint64_t> seed;
};

// --jid BARE_JID --device ID [--seed N]; nullopt (usage printed) when incomplete.
inline std::optional<ToolArgs> parse_tool_args(int argc, char** argv, const char* name) {
  ToolArgs a;
  std::string jid;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--jid") jid = argv[i + 1];
    else if (k == "--device") a.device = static_cast<std::uint32_t>(std::stoul(argv[i + 1]));
    else if (k == "--seed") a.seed = std::stoull(argv[i + 1]);
  }
  auto parsed = Jid::parse(jid);
  if (!parsed || a.device == 0) {
    std::cerr << "usage: " << name << " --jid BARE_JID --device ID [--seed N]\n";
    return std::nullopt;
  }
  a.jid = parsed->bare_string();
  return a;
}

inline int run_json_lines(const std::function<json(const json&)>& handle) {
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    json resp;
    try {
      json req = json::parse(line);
      if (req.value("op", "") == "quit") break;
      resp = handle(req);
    } catch (const std::exception& e) {
      resp = {{"ok", false}, {"error", "bad_request"}, {"message", e.what()}};
    }
    std::cout << resp.dump() << '\n' << std::flush;
  }
  return 0;
}

}  // namespace multiend::interop
