// XMPP addresses (RFC 7622): parsing, validation, normalization and comparison.
// Owns what a valid JID is and its canonical form; knows nothing about routing or rosters.
//
// Without a PRECIS/IDNA library the rules are an ASCII approximation of RFC 7622:
//  * every part is valid UTF-8 of 1 … 1023 bytes; empty parts ("@d", "d/", "l@") are errors;
//    no part may contain control characters (C0, DEL, C1) or U+FFFE/U+FFFF;
//  * localpart: no space and none of  " & ' / : < > @ ; ASCII letters are lowercased,
//    non-ASCII is compared byte-wise as given (no Unicode case folding or normalization);
//  * domainpart: ASCII letters, digits, '-', '_' and '.' (no empty labels) plus any non-ASCII
//    UTF-8 (IDNs are not converted), or an IPv6 literal "[…]"; ASCII is lowercased and a
//    single trailing dot is removed;
//  * resourcepart: anything printable, case-sensitive, spaces allowed.
// Every failure is Errc::bad_jid.
#pragma once

#include <compare>
#include <string>
#include <string_view>

#include "protocol/error.hpp"

namespace multiend {

class Jid {
 public:
  static Result<Jid> parse(std::string_view text);

  const std::string& local() const noexcept { return local_; }        // "" if none
  const std::string& domain() const noexcept { return domain_; }
  const std::string& resource() const noexcept { return resource_; }  // "" if bare

  bool is_bare() const noexcept { return resource_.empty(); }
  Jid bare() const;
  Result<Jid> with_resource(std::string resource) const;

  std::string to_string() const;    // local@domain/resource, the canonical form
  std::string bare_string() const;  // local@domain

  friend bool operator==(const Jid&, const Jid&) = default;
  friend std::strong_ordering operator<=>(const Jid&, const Jid&) = default;

 private:
  Jid() = default;
  std::string local_;
  std::string domain_;
  std::string resource_;
};

}  // namespace multiend
