#include "server/process_metrics.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <vector>

#include "multiend/version.hpp"

namespace multiend::server {
namespace {

std::string read_small(const char* path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void metric(std::string& out, const char* name, const char* type, const char* help, double value) {
  char num[64];
  std::snprintf(num, sizeof num, "%.17g", value);
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " + num + "\n";
}

// Boot time from /proc/stat's btime: start times in /proc/self/stat count from boot.
double boot_time() {
  std::istringstream in(read_small("/proc/stat"));
  std::string key;
  double v = 0;
  while (in >> key) {
    if (key == "btime" && (in >> v)) return v;
    in.ignore(1 << 16, '\n');
  }
  return 0;
}

}  // namespace

void render_process_metrics(std::string& out) {
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  // /proc/self/stat: fields after the ")" that closes the command name (which may hold spaces).
  const std::string stat = read_small("/proc/self/stat");
  const auto close = stat.rfind(')');
  if (close != std::string::npos && tick > 0) {
    std::istringstream in(stat.substr(close + 2));
    std::vector<std::string> f;
    for (std::string x; in >> x;) f.push_back(x);
    // f[0] is field 3 (state): utime = 14, stime = 15, starttime = 22, vsize = 23, rss = 24.
    if (f.size() > 21) {
      const double utime = std::stod(f[11]), stime = std::stod(f[12]);
      metric(out, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
             (utime + stime) / tick);
      metric(out, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
             boot_time() + std::stod(f[19]) / tick);
      metric(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", std::stod(f[20]));
      metric(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", std::stod(f[21]) * page);
    }
  }
  std::error_code ec;
  std::size_t fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec))
    ++fds;
  metric(out, "process_open_fds", "gauge", "Number of open file descriptors.", static_cast<double>(fds));
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0)
    metric(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.", static_cast<double>(lim.rlim_cur));
  out += std::string("# HELP multiend_build_info The component's version and git revision.\n"
                     "# TYPE multiend_build_info gauge\nmultiend_build_info{version=\"") +
         kVersion + "\",revision=\"" + kRevision + "\"} 1\n";
}

}  // namespace multiend::server
