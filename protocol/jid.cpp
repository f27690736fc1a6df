#include "protocol/jid.hpp"

#include "protocol/utf8.hpp"

#include <arpa/inet.h>  // inet_pton only: a pure text parser, no socket use

#include <algorithm>

namespace multiend {
namespace {

constexpr std::size_t kMaxPart = 1023;

bool is_control_or_nonchar(char32_t c) {
  return c < 0x20 || (c >= 0x7F && c <= 0x9F) || c == 0xFFFE || c == 0xFFFF;
}

// Checks UTF-8 and size, and that no code point fails `bad`.
template <class Bad>
bool valid_part(std::string_view s, Bad bad) {
  if (s.empty() || s.size() > kMaxPart) return false;
  for (std::size_t i = 0; i < s.size();) {
    char32_t cp = 0;
    const std::size_t len = utf8::decode(s, i, cp);
    if (len == 0 || is_control_or_nonchar(cp) || bad(cp)) return false;
    i += len;
  }
  return true;
}

void lower_ascii(std::string& s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
}

bool valid_local(std::string_view s) {
  return valid_part(s, [](char32_t c) {
    return c == ' ' || c == '"' || c == '&' || c == '\'' || c == '/' || c == ':' || c == '<' ||
           c == '>' || c == '@';
  });
}

bool valid_resource(std::string_view s) {
  return valid_part(s, [](char32_t) { return false; });
}

bool valid_domain(std::string_view s) {
  if (s.empty() || s.size() > kMaxPart) return false;
  if (s.front() == '[') {
    if (s.size() < 3 || s.back() != ']') return false;
    const std::string inner(s.substr(1, s.size() - 2));
    unsigned char buf[16];
    return inner.find('\0') == std::string::npos && inet_pton(AF_INET6, inner.c_str(), buf) == 1;
  }
  if (s.front() == '.' || s.back() == '.' || s.find("..") != std::string_view::npos) return false;
  return valid_part(s, [](char32_t c) {
    if (c >= 0x80) return false;  // IDN label characters are not checked further
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    return !ok;
  });
}

}  // namespace

Result<Jid> Jid::parse(std::string_view text) {
  // 1023 per part plus '@' and '/', plus a trailing dot that is stripped.
  if (text.empty() || text.size() > 3 * kMaxPart + 3) return Errc::bad_jid;
  Jid jid;
  std::string_view rest = text;
  // RFC 7622 §3.2: the resource starts at the first '/', the localpart ends at the first '@'
  // before it; a resource may itself contain '/' and '@'.
  if (const std::size_t slash = rest.find('/'); slash != std::string_view::npos) {
    const std::string_view resource = rest.substr(slash + 1);
    if (!valid_resource(resource)) return Errc::bad_jid;
    jid.resource_ = resource;
    rest = rest.substr(0, slash);
  }
  if (const std::size_t at = rest.find('@'); at != std::string_view::npos) {
    const std::string_view local = rest.substr(0, at);
    if (!valid_local(local)) return Errc::bad_jid;
    jid.local_ = local;
    lower_ascii(jid.local_);
    rest = rest.substr(at + 1);
  }
  if (!rest.empty() && rest.back() == '.') rest.remove_suffix(1);
  if (!valid_domain(rest)) return Errc::bad_jid;
  jid.domain_ = rest;
  lower_ascii(jid.domain_);
  return jid;
}

Jid Jid::bare() const {
  Jid j = *this;
  j.resource_.clear();
  return j;
}

Result<Jid> Jid::with_resource(std::string resource) const {
  if (!valid_resource(resource)) return Errc::bad_jid;
  Jid j = *this;
  j.resource_ = std::move(resource);
  return j;
}

std::string Jid::bare_string() const {
  if (local_.empty()) return domain_;
  std::string out;
  out.reserve(local_.size() + 1 + domain_.size());
  out += local_;
  out += '@';
  out += domain_;
  return out;
}

std::string Jid::to_string() const {
  std::string out = bare_string();
  if (!resource_.empty()) {
    out += '/';
    out += resource_;
  }
  return out;
}

}  // namespace multiend
