// MAM (XEP-0313 v2 and #extended) over the archive: the requester sees its own account's
// archive only. Results go to the requesting full JID, then the IQ result with <fin/>.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "protocol/xml/element.hpp"
#include "server/services/context.hpp"

namespace multiend::server {

class MamService {
 public:
  explicit MamService(ServiceContext ctx) : ctx_(ctx) {}
  asio::awaitable<void> handle_query(xml::Element iq);

 private:
  ServiceContext ctx_;
};

}  // namespace multiend::server
