// Legacy OMEMO constants (XEP-0384 0.3, eu.siacs.conversations.axolotl; libsignal "v3"
// parameters as python3-oldmemo 1.0.3 and libsignal-protocol-c 2.3.3 use them; facts in
// shared/reference/oldmemo.md). Limits shared with OMEMO 2 live in omemo/constants.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace multiend::oldmemo {

inline constexpr std::string_view kNs = "eu.siacs.conversations.axolotl";
inline constexpr std::string_view kDeviceListNode = "eu.siacs.conversations.axolotl.devicelist";
inline constexpr std::string_view kBundleNodePrefix = "eu.siacs.conversations.axolotl.bundles:";

inline constexpr std::string_view kInfoX3dh = "WhisperText";
inline constexpr std::string_view kInfoRootChain = "WhisperRatchet";
inline constexpr std::string_view kInfoMessageKeys = "WhisperMessageKeys";

inline constexpr std::uint8_t kVersionByte = 0x33;  // message version 3 ‖ current version 3
inline constexpr std::uint8_t kDjbType = 0x05;      // libsignal's key type byte
inline constexpr std::size_t kKeySize = 33;         // 0x05 ‖ 32-byte Curve25519 u
inline constexpr std::size_t kMacSize = 8;          // truncated HMAC after the SignalMessage
inline constexpr std::size_t kAdSize = 2 * kKeySize;  // sender IK ‖ receiver IK, 0x05 each

inline constexpr std::size_t kPayloadKeySize = 16;    // AES-128-GCM key
inline constexpr std::size_t kKeyMaterialSize = 32;   // key ‖ GCM tag, the DR plaintext
inline constexpr std::size_t kEmptyMessageSize = 16;  // a transported key: no payload, no tag
inline constexpr std::size_t kIvSize = 12;

// What Conversations puts in <body> next to <encrypted> for clients without OMEMO.
inline constexpr std::string_view kFallbackBody =
    "I sent you an OMEMO encrypted message but your client doesn\u2019t seem to support that. "
    "Find more information on https://conversations.im/omemo";

}  // namespace multiend::oldmemo
