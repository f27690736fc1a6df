// The process's own figures in Prometheus text, read from /proc at each scrape: the standard
// process_* metrics (resident and virtual memory, CPU seconds, open and maximum file
// descriptors, start time) and multiend_build_info. Operators alert on them; the benches read
// the component's memory from here. Linux only; knows nothing about XMPP or the database.
#pragma once

#include <string>

namespace multiend::server {

// Appends the exposition text (with HELP and TYPE lines) to `out`.
void render_process_metrics(std::string& out);

}  // namespace multiend::server
