#include "server/services/archive_service.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "protocol/omemo/bundle.hpp"
#include "protocol/omemo/constants.hpp"
#include "protocol/omemo/encrypted_element.hpp"
#include "protocol/xml/serializer.hpp"
#include "protocol/xml/splice.hpp"
#include "protocol/xmpp/datetime.hpp"
#include "protocol/xmpp/namespaces.hpp"
#include "protocol/xmpp/stanza.hpp"
#include "server/services/addressing.hpp"

namespace multiend::server {
namespace {

constexpr std::size_t kMaxOriginId = 128;

xml::Element stanza_id(const Config& c, std::int64_t id) {
  xml::Element sid("stanza-id", std::string(xmpp::kSidNs));
  sid.set_attr("by", c.component_domain);
  sid.set_attr("id", std::to_string(id));
  return sid;
}

// Built in plain functions, not braced inside coroutines (GCC 12, see GroupCommit::submit).
xmpp::StanzaError error(xmpp::ErrorType type, std::string condition, std::string text) {
  return {type, std::move(condition), std::move(text), std::nullopt};
}
xmpp::StanzaError error_with(xmpp::ErrorType type, std::string condition, std::string text, xml::Element app) {
  return {type, std::move(condition), std::move(text), std::move(app)};
}

}  // namespace

ArchiveService::ArchiveService(ServiceContext ctx)
    : ctx_(ctx), commit_(ctx.db, ctx.metrics, ctx.config.batch_max, ctx.config.batch_max_bytes) {}

bool ArchiveService::in_delivery(std::int64_t id) const {
  return std::any_of(delivering_.begin(), delivering_.end(), [id](const Delivery& d) { return d.id == id; }) ||
         std::find(fanned_out_.begin(), fanned_out_.end(), id) != fanned_out_.end();
}

asio::awaitable<void> ArchiveService::handle_message(xml::Element stanza) {
  const Config& cfg = ctx_.config;
  auto reject = [&](const xmpp::StanzaError& e) {
    ctx_.metrics.error(e.condition);
    ctx_.stream.send(xmpp::make_error_reply(stanza, e), "error");
  };
  const std::string type(stanza.attr("type").value_or("normal"));
  if (type != "normal" && type != "chat") co_return;  // errors, headlines, groupchat: nothing to archive

  auto sender = user_sender(cfg, stanza);
  if (!sender || sender->is_bare()) {
    reject(error(xmpp::ErrorType::auth, "forbidden", "only users of " + cfg.user_domain + " may archive"));
    co_return;
  }
  // The stored and forwarded copy is the stanza as a client would see it.
  std::string stored = xml::serialize_renamed(stanza, xmpp::kComponentNs, xmpp::kClientNs);
  if (stored.size() > cfg.max_stanza_bytes) {
    reject(error(xmpp::ErrorType::modify, "not-acceptable", "stanza exceeds " + std::to_string(cfg.max_stanza_bytes) + " bytes"));
    co_return;
  }
  const xml::Element* enc_elem = stanza.child("encrypted", omemo::kNs);
  if (!enc_elem) {
    reject(error(xmpp::ErrorType::modify, "bad-request", "no <encrypted xmlns='urn:xmpp:omemo:2'/>: only OMEMO 2 is archived"));
    co_return;
  }
  auto enc = omemo::encrypted_from_xml(*enc_elem);
  if (!enc) {
    reject(error(xmpp::ErrorType::modify, "bad-request", "malformed OMEMO element: " + enc.error().message()));
    co_return;
  }
  std::string origin_id;
  if (const xml::Element* o = stanza.child("origin-id", xmpp::kSidNs)) origin_id = std::string(o->attr("id").value_or(""));
  if (origin_id.empty()) origin_id = std::string(stanza.attr("id").value_or(""));
  if (origin_id.empty() || origin_id.size() > kMaxOriginId) {
    reject(error(xmpp::ErrorType::modify, "bad-request", "an <origin-id/> (or id) of 1..128 characters is required"));
    co_return;
  }

  // Recipients: header JIDs, XEP-0033 to/cc, the sender. Empty messages: header JIDs only.
  const std::string sender_bare = sender->bare_string();
  const bool empty_message = !enc->payload.has_value();
  std::set<std::string> recipients;
  for (const auto& g : enc->groups) recipients.insert(g.jid);
  if (!empty_message) {
    recipients.insert(sender_bare);
    if (const xml::Element* addrs = stanza.child("addresses", xmpp::kAddressNs)) {
      for (const xml::Element* a : addrs->children("address", xmpp::kAddressNs)) {
        const auto t = a->attr("type").value_or("");
        if (t != "to" && t != "cc") continue;
        auto j = Jid::parse(a->attr("jid").value_or(""));
        if (!j) {
          reject(error(xmpp::ErrorType::modify, "bad-request", "invalid address jid"));
          co_return;
        }
        recipients.insert(j->bare_string());
        if (recipients.size() > cfg.max_recipients) break;
      }
    }
  }
  if (recipients.size() > cfg.max_recipients) {
    reject(error(xmpp::ErrorType::modify, "policy-violation",
                 "more than " + std::to_string(cfg.max_recipients) + " recipients"));
    co_return;
  }
  // Devices the sender left out on purpose (distrusted, or unverified once the user verified
  // others) count as covered: the check exists to catch devices the sender did not know of,
  // not to overrule its trust decisions.
  std::vector<std::pair<std::string, std::uint32_t>> excluded;
  if (const xml::Element* ex = stanza.child("excluded", xmpp::kMultiendNs)) {
    for (const xml::Element* d : ex->children("device", xmpp::kMultiendNs)) {
      auto j = Jid::parse(d->attr("jid").value_or(""));
      auto id = omemo::parse_id(d->attr("id").value_or(""));
      if (!j || !id || excluded.size() >= omemo::kMaxKeysPerMessage) {
        reject(error(xmpp::ErrorType::modify, "bad-request", "invalid <excluded/> device"));
        co_return;
      }
      excluded.emplace_back(j->bare_string(), *id);
    }
  }
  // Built synchronously, before any suspension, so messages reach the group commit in the
  // order they arrived and one sender's messages keep their order in the archive. Members are
  // assigned one by one, not brace-initialised: see GroupCommit::submit on GCC 12.
  NewMessage record;
  record.sender_bare = sender_bare;
  record.sender_full = sender->to_string();
  record.origin_id = origin_id;
  record.stanza = std::move(stored);
  record.recipients.assign(recipients.begin(), recipients.end());
  record.check_coverage = !empty_message;  // empty messages are per-device ratchet upkeep
  record.sender_device = enc->sid;
  for (const auto& g : enc->groups)
    for (const auto& k : g.keys) record.keyed_devices.emplace_back(g.jid, k.rid);
  for (auto& e : excluded) record.keyed_devices.push_back(std::move(e));
  std::sort(record.keyed_devices.begin(), record.keyed_devices.end());

  // GCC 12 frees coroutine frames wrongly when co_return sits inside a try block that
  // co_awaits: the fallible part is a coroutine of its own.
  bool ok = true;
  try {
    co_await store_and_fan_out(stanza, record);
  } catch (const std::exception& e) {
    spdlog::warn("archive: message from {} not stored: {}", sender_bare, e.what());
    ok = false;
  }
  if (!ok) reject(error(xmpp::ErrorType::wait, "internal-server-error", "archive unavailable, retry later"));
}

asio::awaitable<void> ArchiveService::store_and_fan_out(const xml::Element& stanza, const NewMessage& record) {
  const Config& cfg = ctx_.config;
  StoredMessage s = co_await commit_.submit(record);
  if (!s.missing.empty()) {
    xml::Element missing("missing-devices", std::string(xmpp::kMultiendNs));
    // Bounded, so the answer stays far below the output limit (100 recipients of 64 devices
    // each would list 6,400): the sender learns the rest when it sends again.
    std::size_t listed = 0;
    for (const auto& [owner, device] : s.missing) {
      if (listed++ == cfg.max_missing_devices_listed) {
        missing.set_attr("truncated", "true");
        break;
      }
      missing.add_child(xml::Element("device", std::string(xmpp::kMultiendNs)))
          .set_attr("jid", owner)
          .set_attr("id", std::to_string(device));
    }
    ctx_.metrics.coverage_rejections.Increment();
    ctx_.metrics.error("not-acceptable");
    ctx_.stream.send(xmpp::make_error_reply(stanza, error_with(xmpp::ErrorType::modify, "not-acceptable",
                                                               "message not encrypted for every device",
                                                               std::move(missing))),
                     "error");
    co_return;
  }
  {
    // Receipt only after the commit: the sender may resend until it sees one.
    xml::Element receipt("message", std::string(xmpp::kComponentNs));
    receipt.set_attr("from", cfg.component_domain);
    receipt.set_attr("to", record.sender_full);
    receipt.set_attr("type", "headline");
    receipt.add_child(xml::Element("received", std::string(xmpp::kReceiptsNs)))
        .set_attr("id", std::string(stanza.attr("id").value_or(record.origin_id)));
    receipt.add_child(stanza_id(cfg, s.id));
    ctx_.stream.send(receipt, "receipt");
    if (s.duplicate) {
      ctx_.metrics.messages_duplicate.Increment();
      // Stored before but never delivered (its commit ended in doubt, or the component
      // stopped before fanning it out): this resend is the moment to deliver it.
      if (!s.fanned_out && !in_delivery(s.id)) co_await fan_out(s.id, s.stored_at_us, record.stanza, record.recipients);
      co_return;
    }
    ctx_.metrics.messages_archived.Increment();
    co_await fan_out(s.id, s.stored_at_us, record.stanza, record.recipients);
  }
}

asio::awaitable<void> ArchiveService::fan_out(std::int64_t id, std::int64_t stored_at_us, std::string_view stored,
                                              const std::vector<std::string>& recipients) {
  // What one headline takes in the output buffer: the stored message plus the wrapper.
  const std::size_t each = stored.size() + 512;
  if (each > ctx_.config.max_output_stanza_bytes) {
    // Stored when max_stanza_bytes was larger: no headline can carry it. Not retried forever.
    spdlog::error("archive: stored message {} ({} bytes) exceeds max_output_stanza_bytes; not fanned out", id,
                  stored.size());
    fanned_out_.push_back(id);
    co_return;
  }
  const std::string stamp = xmpp::format_datetime(stored_at_us);
  std::optional<ComponentStream::Ticket> last;
  bool all_queued = true;
  for (const auto& r : recipients) {
    // Each headline waits its turn (first come first served: a message that started its
    // fan-out earlier stays ahead of a later one at every recipient, so order holds), and the
    // buffer never holds more than its size plus one stanza. Stream gone: the rest stays
    // pending (not marked) and resume_fanout delivers the message again.
    if (!co_await ctx_.stream.wait_for_room(each)) co_return;
    xml::Element m("message", std::string(xmpp::kComponentNs));
    m.set_attr("from", ctx_.config.component_domain);
    m.set_attr("to", r);
    m.set_attr("type", "headline");
    auto& fwd = m.add_child(xml::Element("forwarded", std::string(xmpp::kForwardNs)));
    fwd.add_child(xml::Element("delay", std::string(xmpp::kDelayNs))).set_attr("stamp", stamp);
    fwd.add_child(xml::splice_point());  // the stored bytes, as stored: serialised once, at write time
    m.add_child(stanza_id(ctx_.config, id));
    std::string bytes;
    bytes.reserve(each);
    xml::serialize_spliced(m, stored, bytes, xmpp::kComponentNs);
    auto t = ctx_.stream.send_serialized(std::move(bytes), "fanout");
    all_queued &= t.has_value();
    if (t) last = t;
  }
  // Marked delivered only once the stream has written it; what a dropped connection lost
  // stays pending and is delivered by resume_fanout after the reconnect.
  if (all_queued && last) delivering_.push_back({id, *last});
}

asio::awaitable<void> ArchiveService::flush_fanout_marks() {
  const auto gen = ctx_.stream.generation();
  const auto written = ctx_.stream.written_through();
  std::erase_if(delivering_, [&](const Delivery& d) {
    if (d.last.generation != gen) return true;  // that connection is gone: resume_fanout resends
    if (d.last.seq > written) return false;     // still queued
    fanned_out_.push_back(d.id);
    return true;
  });
  if (fanned_out_.empty()) co_return;
  std::vector<std::int64_t> ids = std::exchange(fanned_out_, {});
  try {
    co_await ctx_.db.run([&ids](pqxx::connection& c) { archive_store::mark_fanned_out(c, ids); });
  } catch (const std::exception& e) {
    spdlog::warn("archive: could not mark {} messages delivered: {}", ids.size(), e.what());
    fanned_out_.insert(fanned_out_.end(), ids.begin(), ids.end());
  }
}

asio::awaitable<void> ArchiveService::resume_fanout() {
  if (resuming_) co_return;
  resuming_ = true;
  try {
    co_await flush_fanout_marks();
    std::int64_t resumed = 0, after = 0;
    for (;;) {
      if (!ctx_.stream.authenticated()) break;
      auto pending =
          co_await ctx_.db.run([after](pqxx::connection& c) { return archive_store::pending_fanout(c, after, 500); });
      if (pending.empty()) break;
      for (const auto& p : pending) {
        after = p.id;
        if (in_delivery(p.id)) continue;  // fanned out moments ago, its mark not yet written
        co_await fan_out(p.id, p.stored_at_us, p.stanza, p.recipients);
        ++resumed;
      }
      co_await flush_fanout_marks();
      if (pending.size() < 500) break;
    }
    if (resumed) spdlog::info("archive: delivered {} messages left pending", resumed);
  } catch (const std::exception& e) {
    spdlog::warn("archive: resuming fan-out failed: {}", e.what());
  }
  resuming_ = false;
}

}  // namespace multiend::server
