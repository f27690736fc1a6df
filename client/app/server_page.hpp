// One page of the account's own server archive as its results arrive (server_catch_up.cpp),
// and whether the pages move on. The server is not trusted to keep to what was asked: a page
// with more results than asked for, or more bytes than max_page_bytes, is refused rather than
// held, and a server sending the same page again (or going round in a cycle) is caught. Knows
// no connection; the caller feeds it stanzas.
#pragma once

#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "client/pep/server_mam.hpp"

namespace multiend::client {

class ServerPage {
 public:
  ServerPage(std::string own_bare, std::string query_id, std::size_t max_bytes);

  // True when `stanza` is a result of our query (kept); false for anything else, which the
  // caller handles as any stanza. ClientError(refused) past the page's bounds.
  bool add(const xml::Element& stanza);
  // Has the result the <fin/> names as last arrived?
  bool ends_at(const std::string& last) const { return !results_.empty() && results_.back().id == last; }
  std::vector<pep::ServerResult>& results() { return results_; }

 private:
  std::string own_bare_, query_id_;
  std::size_t max_bytes_, bytes_ = 0;
  std::vector<pep::ServerResult> results_;
};

// The positions a catch-up has been at. ClientError(refused) when a page ends where the query
// started or where an earlier page ended.
class ServerProgress {
 public:
  void advance(const std::optional<std::string>& after, const std::string& last);

 private:
  std::set<std::string> seen_;
};

}  // namespace multiend::client
