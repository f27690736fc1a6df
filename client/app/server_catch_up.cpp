// Catching up from the account's own server archive: the plain chat messages (legacy OMEMO
// contacts, the account's other apps, Carbons' originals) that arrived while this device was
// offline. Its own position, beside the component archive's; duplicates of what came live are
// dropped by their history id (the sender's origin-id), so one message shows once.
#include <spdlog/spdlog.h>

#include "client/app/client.hpp"
#include "client/app/errors.hpp"
#include "client/app/server_page.hpp"

namespace multiend::client {

asio::awaitable<void> Client::mark_server_archive_end() {
  if (!options_.pep) co_return;
  const std::string qid = new_id();
  auto reply = co_await conn_.iq(pep::server_mam_query(qid, std::nullopt, true), options_.timeout);
  std::optional<std::string> last;
  if (auto fin = pep::parse_server_fin(reply)) last = fin->last;
  else if (auto err = component::iq_error(reply)) spdlog::info("no server archive ({})", describe(*err));
  // The one result (if any) came before the answer; drop it, keep what else came meanwhile.
  // (Nothing else is shown before this device's first catch-up, so the queue is tiny.)
  device_.store().settings().set(setting::server_archive_after, last.value_or(""));
}

asio::awaitable<std::size_t> Client::catch_up_server(const MessageSink& sink) {
  if (!options_.pep || removed_) co_return 0;
  auto pos = device_.store().settings().get(setting::server_archive_after);
  if (!pos) {
    co_await mark_server_archive_end();
    co_return 0;
  }
  std::optional<std::string> after;
  if (!pos->empty()) after = *pos;
  std::size_t shown = 0;
  ServerProgress progress;
  bool restarted = false;
  for (;;) {
    const std::string qid = new_id();
    xml::Element reply = co_await conn_.iq(pep::server_mam_query(qid, after, false), options_.timeout);
    if (auto err = component::iq_error(reply)) {
      if (err->condition == "item-not-found" && after && !restarted) {
        restarted = true;  // our position expired from the server's archive: what is left
        after.reset();
        continue;
      }
      spdlog::warn("the server's archive refused the query ({}); chat messages missed while offline are not read",
                   describe(*err));
      co_return shown;
    }
    auto fin = pep::parse_server_fin(reply);
    if (!fin) throw ClientError(ErrorKind::refused, "server archive query: malformed answer");
    ServerPage collected(device_.jid(), qid, options_.max_page_bytes);
    while (fin->last && !collected.ends_at(*fin->last)) {
      xml::Element st = co_await conn_.next_stanza(options_.timeout);
      if (!collected.add(st)) co_await handle_unsolicited(st, sink);
    }
    auto& page = collected.results();
    // One transaction per page: its ratchet steps, history entries and the new position.
    std::vector<HistoryEntry> entries;
    bool prekey_used = false;
    std::vector<omemo::DeviceAddress> reply_to, omemo2_reply_to;
    {
      auto tx = device_.store().begin();
      for (auto& r : page) {
        auto chat = parse_chat(r.message, device_.jid());  // else not a chat message: only the position moves
        if (!chat) continue;
        chat->timestamp_us = r.stamp_us;
        Received rec = device_.receive_chat(*chat, options_.clock());
        prekey_used = prekey_used || rec.prekey_used;
        for (auto& a : rec.empty_reply_to) reply_to.push_back(std::move(a));
        for (auto& a : rec.omemo2_reply_to) omemo2_reply_to.push_back(std::move(a));
        if (rec.entry) entries.push_back(std::move(*rec.entry));
      }
      if (!page.empty()) device_.store().settings().set(setting::server_archive_after, page.back().id);
      tx.commit();
    }
    for (const auto& e : entries) {
      ++shown;
      if (sink) sink(e);
    }
    co_await after_chats(prekey_used, std::move(reply_to), std::move(omemo2_reply_to));
    if (fin->complete || !fin->last || page.empty()) break;
    progress.advance(after, *fin->last);
    after = fin->last;
  }
  co_return shown;
}

}  // namespace multiend::client
