#include "server/metrics.hpp"

#include <prometheus/text_serializer.h>

#include "server/process_metrics.hpp"

namespace multiend::server {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

prometheus::Counter& counter(prometheus::Registry& r, const std::string& name, const std::string& help) {
  return BuildCounter().Name(name).Help(help).Register(r).Add({});
}
prometheus::Gauge& gauge(prometheus::Registry& r, const std::string& name, const std::string& help) {
  return BuildGauge().Name(name).Help(help).Register(r).Add({});
}

}  // namespace

Metrics::Metrics()
    : archive_write_seconds(BuildHistogram()
                                .Name("multiend_archive_write_seconds")
                                .Help("Time to commit one group of archived messages")
                                .Register(*registry_)
                                .Add({}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.002, 0.005, 0.01,
                                                                                 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5})),
      archive_batch_size(BuildHistogram()
                             .Name("multiend_archive_batch_size")
                             .Help("Messages per group commit")
                             .Register(*registry_)
                             .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256, 512})),
      mam_query_seconds(BuildHistogram()
                            .Name("multiend_mam_query_seconds")
                            .Help("Time to answer one MAM page")
                            .Register(*registry_)
                            .Add({}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                                                             0.05, 0.1, 0.5})),
      messages_archived(counter(*registry_, "multiend_messages_archived_total", "Messages stored in the archive")),
      messages_duplicate(counter(*registry_, "multiend_messages_duplicate_total", "Resends recognised by origin-id")),
      coverage_rejections(counter(*registry_, "multiend_coverage_rejections_total",
                                  "Messages refused because a device had no key")),
      prekeys_claimed(counter(*registry_, "multiend_prekeys_claimed_total", "One-time prekeys handed out")),
      prekeys_reused(counter(*registry_, "multiend_prekeys_reused_total",
                             "Prekeys handed out again because none was unclaimed")),
      prekeys_low_events(counter(*registry_, "multiend_prekeys_low_events_total",
                                 "Times a device fell below the prekey threshold")),
      messages_expired(counter(*registry_, "multiend_messages_expired_total", "Messages deleted by retention")),
      db_pool_size(gauge(*registry_, "multiend_db_pool_size", "Database connections in the pool")),
      db_pool_in_use(gauge(*registry_, "multiend_db_pool_in_use", "Database connections in use")),
      xmpp_connected(gauge(*registry_, "multiend_xmpp_connected", "1 while the component stream is authenticated")),
      inflight(gauge(*registry_, "multiend_inflight_stanzas", "Stanzas being handled")),
      inflight_limit(gauge(*registry_, "multiend_inflight_stanzas_limit", "max_inflight: stanzas handled at once, at most")),
      ready(gauge(*registry_, "multiend_ready", "1 when /readyz answers 200 (stream up, database answering), else 0")),
      stanzas_in_(prometheus::BuildCounter()
                      .Name("multiend_stanzas_in_total")
                      .Help("Stanzas received, by kind")
                      .Register(*registry_)),
      stanzas_out_(prometheus::BuildCounter()
                       .Name("multiend_stanzas_out_total")
                       .Help("Stanzas sent, by kind")
                       .Register(*registry_)),
      errors_(prometheus::BuildCounter()
                  .Name("multiend_errors_total")
                  .Help("Error replies and internal errors, by condition")
                  .Register(*registry_)),
      limits_(prometheus::BuildCounter()
                  .Name("multiend_limit_refusals_total")
                  .Help("Requests refused by a per-account limit, by limit")
                  .Register(*registry_)) {}

std::string Metrics::render() const {
  prometheus::TextSerializer s;
  std::string out = s.Serialize(registry_->Collect());
  render_process_metrics(out);
  return out;
}

}  // namespace multiend::server
