// What every service handler needs: configuration, metrics, the database and the stream.
#pragma once

#include "server/config.hpp"
#include "server/db/database.hpp"
#include "server/metrics.hpp"
#include "server/xmpp/component_stream.hpp"

namespace multiend::server {

struct ServiceContext {
  const Config& config;
  Metrics& metrics;
  Database& db;
  ComponentStream& stream;
  asio::any_io_executor executor;  // the component's single io thread

  const asio::any_io_executor& stream_executor() const { return executor; }
};

}  // namespace multiend::server
