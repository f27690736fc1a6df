// The one closed error enum of the protocol library.
// Expected failures (bad input from the network, MAC mismatch, duplicates) are returned as
// values: Result<T> = boost::system::result<T>. Exceptions are only for broken invariants.
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

namespace multiend {

enum class Errc {
  ok = 0,
  // XML / XMPP stream
  xml_malformed = 1,       // not well-formed XML
  xml_restricted,          // DTD, comment, processing instruction, entity declaration
  xml_too_large,           // a stanza exceeded the byte limit
  xml_too_deep,            // nesting exceeded the depth limit
  xml_bad_stream,          // depth-0 element is not <stream:stream>
  // addresses
  bad_jid,
  // encodings
  bad_base64,
  bad_protobuf,
  bad_element,             // an XML element does not match the expected format
  // keys and crypto
  bad_key,                 // a public key is invalid (small order, non-canonical, wrong size)
  bad_signature,           // signed prekey signature does not verify
  mac_mismatch,            // a MAC over received bytes does not match
  bad_padding,             // AES-CBC decryption or PKCS#7 unpadding failed
  // ratchet / sessions
  duplicate_message,       // already decrypted: callers stay silent
  too_many_skipped,        // message would skip more keys than allowed
  no_session,              // a non-key-exchange message from a device without a session
  unknown_prekey,          // key exchange names a one-time prekey we do not hold
  unknown_signed_prekey,   // key exchange names a signed prekey we do not hold
  not_for_this_device,     // the header has no key for our device
  identity_mismatch,       // the key exchange's identity key differs from the known one
  repair_throttled,        // a session repair for this device happened too recently
  no_prekeys,              // a bundle without one-time prekeys
  limit_exceeded,          // a size or count limit from outside was exceeded
  unsupported,             // a well-formed request for something we do not implement
  bad_request,             // a well-formed element with invalid values (forms, RSM, dates)
};

const boost::system::error_category& protocol_category() noexcept;

inline boost::system::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), protocol_category()};
}

template <class T>
using Result = boost::system::result<T>;

}  // namespace multiend

namespace boost::system {
template <>
struct is_error_code_enum<multiend::Errc> : std::true_type {};
}  // namespace boost::system
