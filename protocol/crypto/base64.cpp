#include "protocol/crypto/base64.hpp"

#include <openssl/evp.h>

#include <algorithm>

namespace multiend::crypto {

std::string base64_encode(ByteView data) {
  const std::size_t n = sodium_base64_encoded_len(data.size(), sodium_base64_VARIANT_ORIGINAL);
  std::string out(n, '\0');
  sodium_bin2base64(out.data(), n, data.data(), data.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(n - 1);  // drop the terminating NUL
  return out;
}

Result<Bytes> base64_decode(std::string_view text, std::size_t max_decoded) {
  // Base64 grows data by 4/3; allow generous whitespace before refusing without decoding.
  if (text.size() > max_decoded * 2 + 64) return Errc::limit_exceeded;
  Bytes out(text.size() / 4 * 3 + 3);
  std::size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), " \t\r\n", &len, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size())
    return Errc::bad_base64;
  if (len > max_decoded) return Errc::limit_exceeded;
  out.resize(len);
  return out;
}

Result<Bytes> base64_decode_public(std::string_view text, std::size_t max_decoded) {
  if (text.size() > max_decoded * 2 + 64) return Errc::limit_exceeded;
  std::string compact;
  std::string_view t = text;
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  if (std::any_of(t.begin(), t.end(), space)) {  // (find_first_of calls memchr per byte)
    compact.reserve(t.size());
    for (char c : t)
      if (!space(c)) compact.push_back(c);
    t = compact;
  }
  if (t.size() % 4 != 0) return Errc::bad_base64;
  std::size_t pad = 0;
  if (!t.empty() && t.back() == '=') pad = t[t.size() - 2] == '=' ? 2 : 1;
  if (t.substr(0, t.size() - pad).find('=') != std::string_view::npos) return Errc::bad_base64;
  if (t.size() / 4 * 3 - pad > max_decoded) return Errc::limit_exceeded;
  Bytes out(t.size() / 4 * 3);
  if (!t.empty()) {
    const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(t.data()), static_cast<int>(t.size()));
    if (n < 0 || static_cast<std::size_t>(n) != out.size()) return Errc::bad_base64;
  }
  // Padding decodes to zero bytes; a non-zero one means unused bits were set (non-canonical),
  // which libsodium refuses too.
  for (std::size_t i = out.size() - pad; i < out.size(); ++i)
    if (out[i] != 0) return Errc::bad_base64;
  out.resize(out.size() - pad);
  return out;
}

}  // namespace multiend::crypto
