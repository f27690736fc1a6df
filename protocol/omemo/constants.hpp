// OMEMO 2 constants (XEP-0384 0.9, twomemo 1.0.3): namespaces, KDF info strings, limits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace multiend::omemo {

inline constexpr std::string_view kNs = "urn:xmpp:omemo:2";
inline constexpr std::string_view kDevicesNode = "urn:xmpp:omemo:2:devices";
inline constexpr std::string_view kBundlesNode = "urn:xmpp:omemo:2:bundles";
inline constexpr std::string_view kSceNs = "urn:xmpp:sce:1";

inline constexpr std::string_view kInfoX3dh = "OMEMO X3DH";
inline constexpr std::string_view kInfoRootChain = "OMEMO Root Chain";
inline constexpr std::string_view kInfoMessageKeys = "OMEMO Message Key Material";
inline constexpr std::string_view kInfoPayload = "OMEMO Payload";

inline constexpr std::size_t kMacSize = 16;           // truncated HMAC, both DR and payload
inline constexpr std::size_t kKeyMaterialSize = 48;   // payload key (32) ‖ payload tag (16)
inline constexpr std::size_t kEmptyMessageSize = 32;  // DR plaintext of an empty OMEMO message
inline constexpr std::size_t kAdSize = 64;            // Ed25519 IK of initiator ‖ responder

inline constexpr std::size_t kMaxSkippedPerSession = 1000;
inline constexpr std::uint32_t kMaxSkippedPerMessage = 1000;  // keys one message may leave stored
// Authenticated jump: a message up to this many steps ahead in its chain is still tried (the
// chain is derived forward, only the newest kMaxSkippedPerMessage keys are kept, and nothing is
// committed unless its MAC verifies). It lets a device that missed more than the skip cap
// (the archive expired them) recover, at a bounded cost: 100,000 chain steps are ~2e5 HMACs,
// about 0.1 s, whatever counter a forged message claims.
inline constexpr std::uint32_t kMaxChainJump = 100000;
// Bounds on what one peer (a whole account) can make this device keep.
inline constexpr std::size_t kMaxSessionsPerPeerAccount = 128;
inline constexpr std::size_t kMaxSkippedPerPeerAccount = 4000;
inline constexpr std::size_t kMaxSkippedTotal = 50000;
// Every session may keep this many skipped keys even when the total is used up, so hostile
// accounts filling the total cannot take out-of-order delivery from everyone else.
inline constexpr std::size_t kMinSkippedPerSession = 100;
// Failed authenticated jumps (past kMaxSkippedPerMessage) tried per peer device and process:
// each costs up to kMaxChainJump chain steps, so forged ones are not tried without end.
inline constexpr int kMaxFailedJumpsPerPeer = 3;
// Key exchanges remembered after they built a session, to refuse replays of them.
inline constexpr std::size_t kMaxRememberedKeyExchanges = 20000;
inline constexpr std::uint32_t kHeartbeatThreshold = 53;  // send an empty message at n >= 53
inline constexpr std::size_t kPreKeyCount = 100;
inline constexpr std::size_t kPreKeyMinimum = 25;
inline constexpr std::uint32_t kMaxId = 0x7FFFFFFF;  // device, spk and pk ids are 1 … 2^31−1

// Bounds on untrusted input.
inline constexpr std::size_t kMaxKeyElementBytes = 1024;     // one <key>: ~200 B in practice
inline constexpr std::size_t kMaxPayloadBytes = 192 * 1024;  // bounded by the stanza limit anyway
inline constexpr std::size_t kMaxKeysPerMessage = 10000;
inline constexpr std::size_t kMaxPreKeysInBundle = 1000;
inline constexpr std::size_t kMaxDevicesInList = 1000;

}  // namespace multiend::omemo
