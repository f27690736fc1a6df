#include "server/services/mam_service.hpp"

#include <spdlog/spdlog.h>

#include <charconv>
#include <chrono>

#include "protocol/xml/splice.hpp"
#include "protocol/xmpp/mam_query.hpp"
#include "protocol/xmpp/namespaces.hpp"
#include "protocol/xmpp/stanza.hpp"
#include "server/db/archive_store.hpp"
#include "server/db/device_store.hpp"
#include "server/services/addressing.hpp"

namespace multiend::server {
namespace {

std::optional<std::int64_t> parse_message_id(std::string_view s) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v <= 0) return std::nullopt;
  return v;
}

std::optional<std::int64_t> tighter_min(std::optional<std::int64_t> a, std::optional<std::int64_t> b) {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}
std::optional<std::int64_t> tighter_max(std::optional<std::int64_t> a, std::optional<std::int64_t> b) {
  if (!a) return b;
  if (!b) return a;
  return std::max(*a, *b);
}

}  // namespace

asio::awaitable<void> MamService::handle_query(xml::Element iq) {
  const Config& cfg = ctx_.config;
  auto fail = [&](xmpp::ErrorType t, const char* cond, std::string text) {
    ctx_.metrics.error(cond);
    ctx_.stream.send(xmpp::make_error_reply(iq, {t, cond, std::move(text), std::nullopt}), "error");
  };
  auto requester = user_sender(cfg, iq);
  if (!requester) {
    fail(xmpp::ErrorType::auth, "forbidden", "only users of " + cfg.user_domain + " have an archive here");
    co_return;
  }
  const xml::Element* q = iq.child("query", xmpp::kMamNs);
  if (!q) {
    fail(xmpp::ErrorType::modify, "bad-request", "no MAM query");
    co_return;
  }
  auto parsed = xmpp::parse_mam_query(*q);
  if (!parsed) {
    fail(parsed.error() == Errc::unsupported ? xmpp::ErrorType::cancel : xmpp::ErrorType::modify,
         parsed.error() == Errc::unsupported ? "feature-not-implemented" : "bad-request", parsed.error().message());
    co_return;
  }
  const xmpp::MamQuery& query = *parsed;
  MamFilter f;
  f.owner = requester->bare_string();
  if (query.with) {
    auto w = Jid::parse(*query.with);
    if (!w) {
      fail(xmpp::ErrorType::modify, "bad-request", "bad 'with' JID");
      co_return;
    }
    f.with = w->bare_string();
  }
  f.start_us = query.start_us;
  f.end_us = query.end_us;
  // A write transaction runs a handful of statements, each under statement_timeout.
  f.write_slack_seconds = 5 * cfg.request_timeout_seconds + 60;
  std::optional<std::int64_t> rsm_after, rsm_before;
  if (query.rsm.after) {
    rsm_after = parse_message_id(*query.rsm.after);
    if (!rsm_after) {
      fail(xmpp::ErrorType::cancel, "item-not-found", "unknown RSM 'after' id");
      co_return;
    }
  }
  if (query.rsm.before && !query.rsm.before->empty()) {
    rsm_before = parse_message_id(*query.rsm.before);
    if (!rsm_before) {
      fail(xmpp::ErrorType::cancel, "item-not-found", "unknown RSM 'before' id");
      co_return;
    }
  }
  // Ids are our decimal stanza-ids: anything else is malformed (bad-request). after-id,
  // before-id and RSM ids must name a message of this archive (item-not-found); `ids` simply
  // returns those that still exist (retention may have removed some).
  std::vector<std::int64_t> named;
  std::optional<std::int64_t> form_after, form_before;
  if (query.after_id && !(form_after = parse_message_id(*query.after_id))) {
    fail(xmpp::ErrorType::modify, "bad-request", "after-id is not a message id");
    co_return;
  }
  if (query.before_id && !(form_before = parse_message_id(*query.before_id))) {
    fail(xmpp::ErrorType::modify, "bad-request", "before-id is not a message id");
    co_return;
  }
  for (const auto& id : query.ids) {
    auto v = parse_message_id(id);
    if (!v) {
      fail(xmpp::ErrorType::modify, "bad-request", "ids holds something that is not a message id");
      co_return;
    }
    f.ids.push_back(*v);
  }
  if (form_after) named.push_back(*form_after);
  if (form_before) named.push_back(*form_before);
  if (rsm_after) named.push_back(*rsm_after);
  if (rsm_before) named.push_back(*rsm_before);
  f.after_id = tighter_max(form_after, rsm_after);
  f.before_id = tighter_min(form_before, rsm_before);
  f.from_end = query.rsm.before.has_value();
  const bool want_count = query.rsm.max && *query.rsm.max == 0;
  f.max = std::min(query.rsm.max.value_or(cfg.mam_default_max), cfg.mam_max);

  const auto t0 = std::chrono::steady_clock::now();
  MamPage page;
  try {
    // Activity is kept to a tenth of the inactivity limit, at most a minute.
    const std::int64_t resolution = std::min<std::int64_t>(60, cfg.device_inactivity_seconds / 10);
    page = co_await ctx_.db.run([&f, want_count, &named, resolution](pqxx::connection& c) {
      if (!archive_store::owns_all(c, f.owner, named)) {
        MamPage unknown;
        unknown.count = -1;
        return unknown;
      }
      device_store::touch_owner(c, f.owner, resolution);
      return archive_store::query(c, f, want_count);
    });
  } catch (const std::exception& e) {
    spdlog::warn("mam: query for {} failed: {}", f.owner, e.what());
    fail(xmpp::ErrorType::wait, "internal-server-error", "archive unavailable, retry later");
    co_return;
  }
  if (page.count && *page.count == -1) {
    fail(xmpp::ErrorType::cancel, "item-not-found", "an id you named is not in your archive");
    co_return;
  }
  ctx_.metrics.mam_query_seconds.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());

  // A page is bounded in bytes too (mam_max_page_bytes): past it the page ends early,
  // marked incomplete, and the client pages on from its RSM <last/> (or <first/> when
  // paging backwards, so the messages kept are those nearest the end it pages from).
  std::size_t bytes = 0, keep = 0;
  const std::size_t n = page.messages.size();
  for (; keep < n; ++keep) {
    const auto& m = page.messages[f.from_end ? n - 1 - keep : keep];
    if (keep > 0 && bytes + m.stanza.size() > cfg.mam_max_page_bytes) break;
    bytes += m.stanza.size();
  }
  if (keep < n) {
    ctx_.metrics.limit("mam_max_page_bytes");
    if (f.from_end) page.messages.erase(page.messages.begin(), page.messages.begin() + static_cast<std::ptrdiff_t>(n - keep));
    else page.messages.resize(keep);
    page.complete = false;
  }
  const std::string to = requester->to_string();
  for (const auto& m : page.messages) {
    // Paced by the writer: a page never piles up in the output buffer. The stream went down:
    // the requester's session went with it; it asks again.
    if (!co_await ctx_.stream.wait_for_room(m.stanza.size() + 512)) co_return;
    // The stored bytes go out as they are (we serialised them at write time): a page costs
    // about its SQL, not a parse and a serialisation per message.
    std::string out;
    out.reserve(m.stanza.size() + 512);
    xml::serialize_spliced(xmpp::make_mam_result(to, cfg.component_domain, query.queryid, std::to_string(m.id),
                                                 m.stored_at_us, xml::splice_point(), xmpp::kComponentNs),
                           m.stanza, out, xmpp::kComponentNs);
    ctx_.stream.send_serialized(std::move(out), "mam-result");
  }
  xmpp::RsmResult rsm;
  if (!page.messages.empty()) {
    rsm.first = std::to_string(page.messages.front().id);
    rsm.last = std::to_string(page.messages.back().id);
  }
  if (page.count) rsm.count = static_cast<std::uint32_t>(std::min<std::int64_t>(*page.count, UINT32_MAX));
  ctx_.stream.send(xmpp::make_iq_result(iq, xmpp::make_mam_fin(rsm, page.complete)), "mam-fin");
}

}  // namespace multiend::server
