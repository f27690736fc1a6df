#include "protocol/crypto/base64.hpp"

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

}  // namespace multiend::crypto
