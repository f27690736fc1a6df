// Archive and fan-out: one encrypted multi-recipient <message/> in, checked for coverage
// (every device of every recipient has a key), committed once (group commit), acknowledged
// with a receipt, then delivered as one headline per recipient bare JID. A message committed
// but not yet delivered (the component stopped) is delivered after the next connect.
// Only ciphertext passes through here: the component never sees a plaintext.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <vector>

#include "protocol/jid.hpp"
#include "protocol/omemo/encrypted_element.hpp"
#include "protocol/xml/element.hpp"
#include "server/services/context.hpp"
#include "server/services/group_commit.hpp"

namespace multiend::server {

class ArchiveService {
 public:
  explicit ArchiveService(ServiceContext ctx);

  asio::awaitable<void> handle_message(xml::Element stanza);
  // Delivers every committed message whose fan-out did not happen (after a restart/reconnect).
  asio::awaitable<void> resume_fanout();
  // Writes the "fanned out" marks collected since the last call (one UPDATE).
  asio::awaitable<void> flush_fanout_marks();

 private:
  asio::awaitable<void> store_and_fan_out(const xml::Element& stanza, const NewMessage& record);
  // Queues one headline per recipient, each once the stream has room for it; stops (the
  // message stays pending, resume_fanout delivers it) when the stream went down meanwhile.
  // `stored` is the message as archived (serialised once, at write time): it is spliced into
  // each headline as it is, never parsed again.
  asio::awaitable<void> fan_out(std::int64_t id, std::int64_t stored_at_us, std::string_view stored,
                                const std::vector<std::string>& recipients);

  // Queued or written but not yet marked fanned out in the database.
  bool in_delivery(std::int64_t id) const;

  ServiceContext ctx_;
  GroupCommit commit_;
  struct Delivery {
    std::int64_t id;
    ComponentStream::Ticket last;  // the message's last fan-out stanza
  };
  std::vector<Delivery> delivering_;  // queued on the stream, not yet known to be written
  std::vector<std::int64_t> fanned_out_;  // written: to be marked in the database
  bool resuming_ = false;
};

}  // namespace multiend::server
