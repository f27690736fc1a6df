// Prometheus metrics of the component (prometheus-cpp core; served as text by http/).
// Every metric object is thread-safe, so database threads update them directly.
#pragma once

#include <memory>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace multiend::server {

class Metrics {
  // Declared first: every metric below registers in it during construction.
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();

 public:
  Metrics();

  void stanza_in(const std::string& kind) { stanzas_in_.Add({{"kind", kind}}).Increment(); }
  void stanza_out(const std::string& kind) { stanzas_out_.Add({{"kind", kind}}).Increment(); }
  void error(const std::string& condition) { errors_.Add({{"condition", condition}}).Increment(); }
  // A request refused by a per-account limit, labelled with the limit's config key.
  void limit(const std::string& name) { limits_.Add({{"limit", name}}).Increment(); }

  prometheus::Histogram& archive_write_seconds;
  prometheus::Histogram& archive_batch_size;
  prometheus::Histogram& mam_query_seconds;
  prometheus::Counter& messages_archived;
  prometheus::Counter& messages_duplicate;
  prometheus::Counter& coverage_rejections;
  prometheus::Counter& prekeys_claimed;
  prometheus::Counter& prekeys_reused;
  prometheus::Counter& prekeys_low_events;
  prometheus::Counter& messages_expired;
  prometheus::Gauge& db_pool_size;
  prometheus::Gauge& db_pool_in_use;
  prometheus::Gauge& xmpp_connected;
  prometheus::Gauge& inflight;
  prometheus::Gauge& inflight_limit;  // max_inflight: alerts compare inflight with it
  prometheus::Gauge& ready;           // what /readyz says, set at each scrape

  // The Prometheus text exposition of everything.
  std::string render() const;

 private:
  prometheus::Family<prometheus::Counter>& stanzas_in_;
  prometheus::Family<prometheus::Counter>& stanzas_out_;
  prometheus::Family<prometheus::Counter>& errors_;
  prometheus::Family<prometheus::Counter>& limits_;
};

}  // namespace multiend::server
