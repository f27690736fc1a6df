#include "client/app/server_page.hpp"

#include "client/app/client.hpp"
#include "client/app/errors.hpp"

namespace multiend::client {

ServerPage::ServerPage(std::string own_bare, std::string query_id, std::size_t max_bytes)
    : own_bare_(std::move(own_bare)), query_id_(std::move(query_id)), max_bytes_(max_bytes) {}

bool ServerPage::add(const xml::Element& stanza) {
  auto r = pep::parse_server_result(stanza, own_bare_, query_id_);
  if (!r) return false;
  bytes_ += approx_bytes(r->message);
  if (results_.size() >= pep::kServerMamPage || bytes_ > max_bytes_)
    throw ClientError(ErrorKind::refused, "server archive query: more results than asked for");
  results_.push_back(std::move(*r));
  return true;
}

void ServerProgress::advance(const std::optional<std::string>& after, const std::string& last) {
  if ((after && last == *after) || !seen_.insert(last).second)
    throw ClientError(ErrorKind::refused, "server archive query made no progress (the same page again)");
}

}  // namespace multiend::client
