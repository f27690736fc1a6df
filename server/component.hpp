// The component as a whole: wires configuration, metrics, the database, the XMPP stream, the
// services and the HTTP endpoint together, runs the background tasks (retention, pruning,
// pending fan-out, readiness probe) and shuts down cleanly on SIGTERM/SIGINT: stop taking
// stanzas, let in-flight ones finish (bounded by shutdown_grace_seconds), close the stream.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>

#include "server/config.hpp"

namespace multiend::server {

// Runs until a signal stops it; returns the process exit code.
int run_component(const Config& config);
// Applies migrations and exits; returns the process exit code.
int run_migrations(const Config& config);

}  // namespace multiend::server
