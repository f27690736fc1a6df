#include "protocol/jid.hpp"

#include "protocol/utf8.hpp"

#include <arpa/inet.h>  // inet_pton only: a pure text parser, no socket use
#include <idna.h>
#include <stringprep.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <optional>

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

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

struct FreeC {
  void operator()(char* p) const noexcept { std::free(p); }
};
using CString = std::unique_ptr<char, FreeC>;

// One stringprep profile ("Nodeprep", "Nameprep", "Resourceprep") over UTF-8; nullopt when the
// input is refused (prohibited or unassigned code points, bad bidi, bad UTF-8).
std::optional<std::string> prep(std::string_view in, const char* profile) {
  const std::string z(in);
  if (z.find('\0') != std::string::npos) return std::nullopt;
  char* out = nullptr;
  if (stringprep_profile(z.c_str(), &out, profile, STRINGPREP_NO_UNASSIGNED) != STRINGPREP_OK) {
    std::free(out);
    return std::nullopt;
  }
  CString owned(out);
  return std::string(owned.get());
}

// A domain in IDNA's canonical Unicode form: to ASCII (Nameprep, then Punycode) and back, so
// an A-label and its U-label give the same string.
std::optional<std::string> idna_canonical(std::string_view in) {
  const std::string z(in);
  if (z.find('\0') != std::string::npos) return std::nullopt;
  char* ascii = nullptr;
  if (idna_to_ascii_8z(z.c_str(), &ascii, 0 /* unassigned code points refused */) != IDNA_SUCCESS) {
    std::free(ascii);
    return std::nullopt;
  }
  CString a(ascii);
  char* uni = nullptr;
  if (idna_to_unicode_8z8z(a.get(), &uni, 0) != IDNA_SUCCESS) {
    std::free(uni);
    return std::nullopt;
  }
  CString u(uni);
  return std::string(u.get());
}

bool has_ace_label(std::string_view s) {
  for (std::size_t start = 0; start <= s.size();) {
    const std::size_t dot = std::min(s.find('.', start), s.size());
    const std::string_view label = s.substr(start, dot - start);
    if (label.size() >= 4 && (label[0] | 0x20) == 'x' && (label[1] | 0x20) == 'n' && label[2] == '-' && label[3] == '-')
      return true;
    start = dot + 1;
  }
  return false;
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
    if (is_ascii(resource)) {
      jid.resource_ = resource;
    } else {
      auto r = prep(resource, "Resourceprep");
      if (!r || !valid_resource(*r)) return Errc::bad_jid;
      jid.resource_ = std::move(*r);
    }
    rest = rest.substr(0, slash);
  }
  if (const std::size_t at = rest.find('@'); at != std::string_view::npos) {
    const std::string_view local = rest.substr(0, at);
    if (!valid_local(local)) return Errc::bad_jid;
    if (is_ascii(local)) {
      jid.local_ = local;
      lower_ascii(jid.local_);
    } else {
      auto l = prep(local, "Nodeprep");
      if (!l || !valid_local(*l)) return Errc::bad_jid;
      jid.local_ = std::move(*l);
    }
    rest = rest.substr(at + 1);
  }
  if (!rest.empty() && rest.back() == '.') rest.remove_suffix(1);
  if (!valid_domain(rest)) return Errc::bad_jid;
  if (rest.front() != '[' && (!is_ascii(rest) || has_ace_label(rest))) {
    auto d = idna_canonical(rest);
    if (!d || !valid_domain(*d)) return Errc::bad_jid;
    jid.domain_ = std::move(*d);
    lower_ascii(jid.domain_);  // IDNA leaves all-ASCII labels as written
  } else {
    jid.domain_ = rest;
    lower_ascii(jid.domain_);
  }
  return jid;
}

Jid Jid::bare() const {
  Jid j = *this;
  j.resource_.clear();
  return j;
}

Result<Jid> Jid::with_resource(std::string resource) const {
  if (!valid_resource(resource)) return Errc::bad_jid;
  if (!is_ascii(resource)) {
    auto r = prep(resource, "Resourceprep");
    if (!r || !valid_resource(*r)) return Errc::bad_jid;
    resource = std::move(*r);
  }
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
