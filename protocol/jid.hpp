// XMPP addresses (RFC 7622): parsing, validation, normalization and comparison.
// Owns what a valid JID is and its canonical form; knows nothing about routing or rosters.
//
// Parts are prepared as Prosody and ejabberd prepare them (RFC 3920 stringprep, through GNU
// libidn, the library those servers' own stringprep comes from): Nodeprep for the localpart,
// Nameprep (after IDNA: an A-label "xn--…" and its U-label are one domain) for the
// domainpart, Resourceprep for the resourcepart. So `Élodie@example.org` and
// `élodie@example.org` are one account, as they are to the XMPP server that stamps `from`.
// ASCII parts take a fast path with the same result (letters lowercased, resource as is).
//  * every part is valid UTF-8 of 1 … 1023 bytes (after preparation); empty parts ("@d",
//    "d/", "l@") are errors; no part may contain control characters or U+FFFE/U+FFFF;
//  * localpart: no space and none of  " & ' / : < > @  (Nodeprep prohibits them too);
//  * domainpart: ASCII letters, digits, '-', '_' and '.' (no empty labels) or an IDN that
//    IDNA accepts, or an IPv6 literal "[…]"; a single trailing dot is removed;
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
