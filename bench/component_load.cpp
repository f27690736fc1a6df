// component_load: a load generator that plays the XMPP server's side of XEP-0114, so the
// Multiend component is measured alone (no Prosody in the path).
//
//   component_load [--mode load] --port-file F [options]   archive + fan-out throughput, receipts
//   component_load --mode mam --ids-file F [options]       MAM page latency on a filled archive
//
// It listens on 127.0.0.1 (port 0 = any free one; the port goes to --port-file and stderr),
// accepts the component's connection, checks its handshake (SHA-1 hex of stream id ‖ secret,
// secret from MULTIEND_COMPONENT_SECRET) and then:
//   load: registers U users × 2 devices (PubSub bundle publishes from each user's own full JID,
//         real Ed25519-signed signed prekeys, 100 prekeys), waits for every iq result, then
//         sends OMEMO 2 messages (keys for 3 recipients × 2 devices + the sender's other device,
//         a random ~1 KB payload, a unique origin-id) keeping a window of messages in flight,
//         and reads the component's receipts (to the sender's full JID) and fan-out headlines
//         (one per recipient bare JID, the sender's included: 4 per message). Then one message
//         at a time (--light), and an open-loop sender at half the median round's rate for
//         --paced-seconds: the receipt latency a component at half load gives.
//   mam:  sends MAM queries (max 50) one at a time for random users of a filled archive: the
//         last page (<before/>), the page after a random id of that user's archive, the page
//         before a random id; measures the time until the iq result carrying <fin/>.
// Prints one JSON object on stdout. Progress and problems go to stderr.
#include <sodium.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "protocol/crypto/base64.hpp"
#include "protocol/crypto/ed25519.hpp"
#include "protocol/crypto/random.hpp"
#include "protocol/crypto/sha1_hex.hpp"
#include "protocol/crypto/x25519.hpp"
#include "protocol/omemo/bundle.hpp"
#include "protocol/xml/element.hpp"
#include "protocol/xml/serializer.hpp"
#include "protocol/xml/stream_parser.hpp"
#include "protocol/xmpp/stanza.hpp"

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using nlohmann::json;
using namespace multiend;

namespace {

constexpr std::string_view kComponentNs = "jabber:component:accept";
constexpr std::string_view kClientNs = "jabber:client";
constexpr std::string_view kOmemoNs = "urn:xmpp:omemo:2";
constexpr std::string_view kPubsubNs = "http://jabber.org/protocol/pubsub";
constexpr std::string_view kPubsubEventNs = "http://jabber.org/protocol/pubsub#event";
constexpr std::string_view kDataFormsNs = "jabber:x:data";
constexpr std::string_view kSidNs = "urn:xmpp:sid:0";
constexpr std::string_view kHintsNs = "urn:xmpp:hints";
constexpr std::string_view kReceiptsNs = "urn:xmpp:receipts";
constexpr std::string_view kForwardNs = "urn:xmpp:forward:0";
constexpr std::string_view kMamNs = "urn:xmpp:mam:2";
constexpr std::string_view kRsmNs = "http://jabber.org/protocol/rsm";
constexpr std::uint32_t kDevicesPerUser = 2;
constexpr std::uint32_t kRecipients = 3;
constexpr std::uint32_t kFanoutPerMessage = kRecipients + 1;  // recipients + the sender's own bare JID

void log(const std::string& s) { std::cerr << "component_load: " << s << std::endl; }

// ---------------------------------------------------------------------------------------------
// options: --key value pairs (a bare --flag is "1")

struct Options {
  std::map<std::string, std::string> kv;
  std::string get(const std::string& k, const std::string& def) const {
    auto it = kv.find(k);
    return it == kv.end() ? def : it->second;
  }
  long long num(const std::string& k, long long def) const {
    auto it = kv.find(k);
    if (it == kv.end()) return def;
    try {
      std::size_t pos = 0;
      long long v = std::stoll(it->second, &pos);
      if (pos != it->second.size()) throw std::invalid_argument(k);
      return v;
    } catch (const std::exception&) {
      throw std::invalid_argument("--" + k + " needs an integer, got '" + it->second + "'");
    }
  }
};

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::cout << "component_load --mode load|mam [--port N] [--port-file F] [--component-domain D] [--user-domain D]\n"
                   "  load: [--users 100] [--user-prefix load] [--messages 20000] [--rounds 3] [--warmup 1000]\n"
                   "        [--window 500] [--payload-bytes 1024] [--light 300] [--paced-seconds 5] [--prekeys 100]\n"
                   "        [--component-pid-file F]\n"
                   "        [--metrics-address HOST:PORT (the component's HTTP, for group-commit figures)]\n"
                   "  mam:  --ids-file F (lines: owner-localpart message-id) [--queries 1500] [--mam-warmup 100]\n"
                   "        [--mam-users 1000] [--mam-user-prefix user] [--page 50]\n"
                   "  [--timeout 300] (seconds for the whole run); secret: MULTIEND_COMPONENT_SECRET\n";
      std::exit(0);
    }
    if (a.rfind("--", 0) != 0) throw std::invalid_argument("unexpected argument " + a);
    a = a.substr(2);
    if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) o.kv[a] = argv[++i];
    else o.kv[a] = "1";
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// small helpers

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Nearest-rank percentile of a sorted vector.
double pct(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  std::size_t rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

double round3(double v) { return std::round(v * 1000.0) / 1000.0; }

json latency_summary(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  json j;
  j["n"] = v.size();
  j["p50_ms"] = round3(pct(v, 0.50));
  j["p90_ms"] = round3(pct(v, 0.90));
  j["p99_ms"] = round3(pct(v, 0.99));
  j["max_ms"] = round3(v.empty() ? 0 : v.back());
  return j;
}

std::string random_b64(std::size_t n) {
  std::vector<std::uint8_t> b(n);
  randombytes_buf(b.data(), b.size());
  return crypto::base64_encode(b);
}

std::string random_token(std::size_t bytes) {
  std::vector<std::uint8_t> b(bytes);
  randombytes_buf(b.data(), b.size());
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (auto c : b) {
    s += hex[c >> 4];
    s += hex[c & 15];
  }
  return s;
}

xml::Element el(std::string name, std::string_view ns) { return xml::Element(std::move(name), std::string(ns)); }

std::string wire(const xml::Element& stanza) {
  std::string s;
  xml::serialize_to(stanza, s, kComponentNs);
  return s;
}

// CPU seconds of this process, of another process (/proc/PID/stat), and of the whole machine.
double self_cpu_seconds() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

std::optional<double> proc_cpu_seconds(long pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!f || !std::getline(f, line)) return std::nullopt;
  auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream in(line.substr(close + 2));
  std::vector<std::string> fields;
  std::string x;
  while (in >> x) fields.push_back(x);
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  if (fields.size() < 13) return std::nullopt;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  return (std::stod(fields[11]) + std::stod(fields[12])) / tick;
}

// (busy, total) CPU seconds of all CPUs together since boot.
std::pair<double, double> machine_cpu_seconds() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  f >> cpu;
  std::vector<double> v;
  double x;
  for (int i = 0; i < 8 && f >> x; ++i) v.push_back(x);
  if (v.size() < 5) return {0, 0};
  double total = 0;
  for (double t : v) total += t;
  const double idle = v[3] + v[4];  // idle + iowait
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  return {(total - idle) / tick, total / tick};
}

// CPU seconds of every process named "postgres" (server, backends, WAL writer, checkpointer…).
// Backends that exit between two marks are missed; the component's pool keeps its connections.
double postgres_cpu_seconds() {
  double sum = 0;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream f(entry.path() / "stat");
    std::string line;
    if (!f || !std::getline(f, line)) continue;
    auto open = line.find('('), close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    if (line.substr(open + 1, close - open - 1) != "postgres") continue;
    std::istringstream in(line.substr(close + 2));
    std::vector<std::string> fields;
    std::string x;
    while (in >> x) fields.push_back(x);
    if (fields.size() >= 13) sum += (std::stod(fields[11]) + std::stod(fields[12])) / tick;
  }
  return sum;
}

struct CpuMark {
  double self = 0;
  std::optional<double> component;
  double postgres = 0;
  double machine_busy = 0;
  static CpuMark take(long component_pid) {
    CpuMark m;
    m.self = self_cpu_seconds();
    m.component = proc_cpu_seconds(component_pid);
    m.postgres = postgres_cpu_seconds();
    m.machine_busy = machine_cpu_seconds().first;
    return m;
  }
};

// GET http://ADDRESS/metrics (blocking: called only while nothing is in flight) → the values of
// the sample lines whose names start with "multiend_archive_" or "multiend_mam_".
std::map<std::string, double> scrape_metrics(const std::string& address) {
  std::map<std::string, double> out;
  if (address.empty()) return out;
  try {
    asio::io_context io;
    tcp::socket s(io);
    auto colon = address.rfind(':');
    s.connect(tcp::endpoint(asio::ip::make_address(address.substr(0, colon)),
                            static_cast<unsigned short>(std::stoi(address.substr(colon + 1)))));
    std::string req = "GET /metrics HTTP/1.0\r\nHost: " + address + "\r\n\r\n";
    asio::write(s, asio::buffer(req));
    std::string body;
    boost::system::error_code ec;
    char buf[16384];
    for (;;) {
      std::size_t n = s.read_some(asio::buffer(buf), ec);
      body.append(buf, n);
      if (ec) break;
    }
    std::istringstream in(body);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("multiend_archive_", 0) != 0 && line.rfind("multiend_mam_", 0) != 0) continue;
      auto sp = line.rfind(' ');
      if (sp == std::string::npos) continue;
      try {
        out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
      } catch (const std::exception&) {
      }
    }
  } catch (const std::exception& e) {
    log(std::string("metrics scrape failed: ") + e.what());
  }
  return out;
}

// Group-commit figures between two scrapes.
json commit_report(const std::map<std::string, double>& a, const std::map<std::string, double>& b) {
  auto d = [&](const std::string& k) {
    auto x = b.find(k), y = a.find(k);
    return (x == b.end() ? 0 : x->second) - (y == a.end() ? 0 : y->second);
  };
  json j;
  const double commits = d("multiend_archive_batch_size_count");
  if (commits <= 0) return j;
  j["commits"] = commits;
  j["mean_batch"] = round3(d("multiend_archive_batch_size_sum") / commits);
  j["mean_write_ms"] = round3(d("multiend_archive_write_seconds_sum") / commits * 1000);
  // Commits per batch-size bucket (the metric's buckets are cumulative): "<=N" → count.
  json hist = json::array();
  double prev = 0;
  for (const char* le : {"1", "2", "4", "8", "16", "32", "64", "128", "256", "512"}) {
    const double c = d(std::string("multiend_archive_batch_size_bucket{le=\"") + le + "\"}");
    hist.push_back(json::array({std::string("<=") + le, c - prev}));
    prev = c;
  }
  j["batch_size_histogram"] = hist;
  return j;
}

json cpu_report(const CpuMark& a, const CpuMark& b, double units, const char* per) {
  json j;
  auto us = [&](double s) { return std::round(s * 1e6 / std::max(units, 1.0) * 10) / 10; };
  j[std::string("generator_us_per_") + per] = us(b.self - a.self);
  if (a.component && b.component) j[std::string("component_us_per_") + per] = us(*b.component - *a.component);
  j[std::string("postgres_us_per_") + per] = us(b.postgres - a.postgres);
  j[std::string("machine_busy_us_per_") + per] = us(b.machine_busy - a.machine_busy);
  return j;
}

// ---------------------------------------------------------------------------------------------
// the server side of the component stream

class Peer {
 public:
  explicit Peer(tcp::socket s) : socket_(std::move(s)), signal_(socket_.get_executor()) {
    signal_.expires_at(Clock::time_point::max());
  }

  std::function<void(xml::Element&)> on_stanza;
  std::function<void()> on_closed;
  bool closed = false;
  std::string close_reason;
  std::size_t bytes_in = 0, bytes_out = 0;

  void send(std::string s) {
    out_.push_back(std::move(s));
    signal_.cancel();
  }
  void close_stream() {
    send("</stream:stream>");
    closing_ = true;
  }

  // XEP-0114 §3: stream header in, our header with an id out, <handshake>digest</handshake>
  // in, <handshake/> out.
  asio::awaitable<void> accept_component(std::string domain, std::string secret) {
    const std::string id = random_token(12);
    bool header_seen = false;
    for (;;) {
      while (auto ev = parser_.next()) {
        if (auto* o = std::get_if<xml::StreamOpened>(&*ev)) {
          std::string to;
          for (const auto& [k, v] : o->attrs)
            if (k == "to") to = v;
          if (o->default_ns != kComponentNs) throw std::runtime_error("stream namespace is '" + o->default_ns + "'");
          if (to != domain) throw std::runtime_error("stream to='" + to + "', expected " + domain);
          std::string hdr = "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
                            "xmlns='jabber:component:accept' from='" + domain + "' id='" + id + "'>";
          co_await asio::async_write(socket_, asio::buffer(hdr), asio::use_awaitable);
          header_seen = true;
        } else if (auto* st = std::get_if<xml::StanzaEvent>(&*ev)) {
          if (!header_seen || st->stanza.name() != "handshake") throw std::runtime_error("expected <handshake/>");
          const std::string want = crypto::component_handshake_digest(id, secret);
          if (st->stanza.text() != want) {
            std::string err = "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                              "</stream:error></stream:stream>";
            boost::system::error_code ec;
            asio::write(socket_, asio::buffer(err), ec);
            throw std::runtime_error("handshake digest does not match (wrong secret?)");
          }
          std::string ok = "<handshake/>";
          co_await asio::async_write(socket_, asio::buffer(ok), asio::use_awaitable);
          co_return;
        } else {
          throw std::runtime_error("stream closed during the handshake");
        }
      }
      co_await read_some();
    }
  }

  asio::awaitable<void> reader() {
    bool failed = false;
    try {
      for (;;) {
        while (auto ev = parser_.next()) {
          if (std::holds_alternative<xml::StreamClosed>(*ev)) throw std::runtime_error("component closed the stream");
          auto& st = std::get<xml::StanzaEvent>(*ev).stanza;
          if (st.ns() == xml::kStreamNs && st.name() == "error") throw std::runtime_error("stream error from the component");
          if (on_stanza) on_stanza(st);
        }
        co_await read_some();
      }
    } catch (const std::exception& e) {
      close_reason = e.what();
      failed = true;
    }
    if (failed) {
      closed = true;
      if (on_closed) on_closed();
    }
  }

  asio::awaitable<void> writer() {
    try {
      for (;;) {
        if (out_.empty()) {
          if (closing_) break;
          boost::system::error_code ec;
          signal_.expires_at(Clock::time_point::max());
          co_await signal_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
          if (closed) break;
          continue;
        }
        std::string batch;
        while (!out_.empty() && batch.size() < 256 * 1024) {
          batch += out_.front();
          out_.pop_front();
        }
        bytes_out += batch.size();
        co_await asio::async_write(socket_, asio::buffer(batch), asio::use_awaitable);
      }
    } catch (const std::exception& e) {
      if (close_reason.empty()) close_reason = std::string("write: ") + e.what();
    }
    writer_done = true;
  }
  bool writer_done = false;

  void shutdown() {
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    signal_.cancel();
  }

 private:
  asio::awaitable<void> read_some() {
    std::size_t n = co_await socket_.async_read_some(asio::buffer(buf_), asio::use_awaitable);
    bytes_in += n;
    auto r = parser_.feed(std::string_view(buf_.data(), n));
    if (!r) throw std::runtime_error("bad XML from the component: " + r.error().message());
  }

  tcp::socket socket_;
  asio::steady_timer signal_;
  std::deque<std::string> out_;
  bool closing_ = false;
  std::vector<char> buf_ = std::vector<char>(64 * 1024);
  xml::StreamParser parser_{xml::StreamLimits{.max_stanza_bytes = 4 << 20, .max_depth = 32}};
};

// Waits until pred() holds, woken by wake(); false at the deadline.
class Waiter {
 public:
  explicit Waiter(asio::any_io_executor ex) : t_(ex) {}
  void wake() { t_.cancel(); }
  template <class P>
  asio::awaitable<bool> until(P pred, Clock::time_point deadline) {
    while (!pred()) {
      if (Clock::now() >= deadline) co_return false;
      t_.expires_at(deadline);
      boost::system::error_code ec;
      co_await t_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    co_return true;
  }

 private:
  asio::steady_timer t_;
};

// Errors received, by "type/condition", with a few samples.
struct ErrorLog {
  std::map<std::string, std::size_t> counts;
  json samples = json::array();
  void add(const xml::Element& st) {
    std::string key = "unparsable", text;
    if (auto e = xmpp::parse_stanza_error(st)) {
      key = std::string(xmpp::error_type_name(e->type)) + "/" + e->condition;
      text = e->text;
      if (e->app_condition) key += "+" + e->app_condition->name();
    }
    ++counts[key];
    if (samples.size() < 5)
      samples.push_back({{"stanza", st.name()}, {"id", std::string(st.attr("id").value_or(""))}, {"error", key}, {"text", text}});
  }
  std::size_t total() const {
    std::size_t n = 0;
    for (const auto& [k, v] : counts) n += v;
    return n;
  }
  json to_json() const { return json{{"by_condition", counts}, {"samples", samples}}; }
};

std::optional<std::size_t> index_after(std::string_view s, std::string_view prefix) {
  if (s.substr(0, prefix.size()) != prefix) return std::nullopt;
  s.remove_prefix(prefix.size());
  if (s.empty() || s.size() > 12) return std::nullopt;
  std::size_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::size_t>(c - '0');
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// load mode

struct Device {
  std::uint32_t id = 0;
  std::string resource;
};

struct User {
  std::string local, bare;
  Device devices[kDevicesPerUser];
};

struct Msg {
  std::string wire;
  std::uint32_t sender = 0;
  std::uint32_t owners[kFanoutPerMessage] = {};  // recipients, then the sender
  Clock::time_point sent{}, receipt{};
  std::int64_t stanza_id = 0;
  std::uint8_t fanout_mask = 0;
  bool receipted = false, errored = false, in_round = false;
};

class LoadRun {
 public:
  static constexpr std::size_t kMaxPacedRate = 20000;  // messages/s, at most, in the paced phase

  LoadRun(asio::io_context& ioc, const Options& o)
      : ioc_(ioc),
        waiter_(ioc.get_executor()),
        domain_(o.get("component-domain", "archive.localhost")),
        user_domain_(o.get("user-domain", "localhost")),
        prefix_(o.get("user-prefix", "load")),
        users_n_(static_cast<std::uint32_t>(o.num("users", 100))),
        messages_(static_cast<std::size_t>(o.num("messages", 20000))),
        rounds_(static_cast<std::size_t>(o.num("rounds", 3))),
        warmup_(static_cast<std::size_t>(o.num("warmup", 1000))),
        window_(static_cast<std::size_t>(o.num("window", 500))),
        payload_bytes_(static_cast<std::size_t>(o.num("payload-bytes", 1024))),
        prekeys_(static_cast<std::size_t>(o.num("prekeys", 100))),
        light_(static_cast<std::size_t>(o.num("light", 300))),
        paced_seconds_(static_cast<std::size_t>(o.num("paced-seconds", 5))),
        metrics_address_(o.get("metrics-address", "")),
        pid_file_(o.get("component-pid-file", "")) {
    if (users_n_ < kRecipients + 1) throw std::invalid_argument("--users must be at least 4");
    if (window_ < 1 || messages_ < 1 || rounds_ < 1) throw std::invalid_argument("--window, --messages, --rounds >= 1");
  }

  asio::awaitable<json> run(Peer& peer, Clock::time_point deadline) {
    peer_ = &peer;
    peer.on_stanza = [this](xml::Element& s) { handle(s); };
    peer.on_closed = [this] { waiter_.wake(); };
    json out;
    out["mode"] = "load";
    out["users"] = users_n_;
    out["devices_per_user"] = kDevicesPerUser;
    out["recipients_per_message"] = kRecipients;
    out["fanout_expected_per_message"] = kFanoutPerMessage;
    out["window"] = window_;
    out["payload_bytes"] = payload_bytes_;

    // 1. devices
    make_users();
    const auto r0 = Clock::now();
    std::size_t next = 0;
    const std::size_t reg_total = regs_.size();
    auto pump_regs = [&] {
      while (next < regs_.size() && reg_sent_ - reg_done_ < 32) {
        peer_->send(std::move(regs_[next++]));
        ++reg_sent_;
      }
    };
    reg_pump_ = pump_regs;
    pump_regs();
    if (!co_await waiter_.until([&] { return reg_done_ == reg_total || peer_->closed; }, deadline))
      throw std::runtime_error("timeout while registering devices (" + std::to_string(reg_done_) + "/" +
                               std::to_string(reg_total) + ")");
    if (peer_->closed) throw std::runtime_error("component went away: " + peer_->close_reason);
    // device lists after every bundle is in
    regs_ = std::move(lists_);
    const std::size_t lists_total = regs_.size();
    next = 0;
    reg_sent_ = reg_done_ = 0;
    const std::size_t reg_errors_bundles = reg_errors_;
    pump_regs();
    if (!co_await waiter_.until([&] { return reg_done_ == lists_total || peer_->closed; }, deadline))
      throw std::runtime_error("timeout while publishing device lists");
    if (peer_->closed) throw std::runtime_error("component went away: " + peer_->close_reason);
    reg_pump_ = nullptr;
    out["registration"] = {{"devices", reg_total},
                           {"device_lists", lists_total},
                           {"bundle_errors", reg_errors_bundles},
                           {"prekeys_per_bundle", prekeys_},
                           {"seconds", round3(ms(Clock::now() - r0) / 1000)},
                           {"errors", reg_errors_}};
    log("registered " + std::to_string(reg_total) + " devices in " + std::to_string(ms(Clock::now() - r0)) + " ms (" +
        std::to_string(reg_errors_) + " errors)");
    if (reg_errors_) throw std::runtime_error("device registration failed: " + errors_.to_json().dump());

    // 2. messages: warm-up, then the measured rounds
    std::size_t total = warmup_ + messages_ * rounds_ + light_;
    make_messages(0, total);
    std::size_t bytes = 0;
    for (const auto& m : msgs_) bytes += m.wire.size();
    out["stanza_bytes_avg"] = bytes / std::max<std::size_t>(total, 1);
    long pid = 0;
    if (!pid_file_.empty()) {
      std::ifstream f(pid_file_);
      f >> pid;
    }
    if (warmup_) {
      co_await send_range(0, warmup_, deadline);
      log("warm-up of " + std::to_string(warmup_) + " messages done");
    }
    json rounds = json::array();
    std::vector<double> all_lat;
    std::vector<double> rates, fan_rates;
    for (std::size_t r = 0; r < rounds_; ++r) {
      const std::size_t b = warmup_ + r * messages_, e = b + messages_;
      const auto m0 = scrape_metrics(metrics_address_);
      const CpuMark c0 = CpuMark::take(pid);
      const auto t0 = Clock::now();
      const std::size_t fan0 = fanouts_;
      co_await send_range(b, e, deadline);
      const auto t1 = std::max(last_arrival_, t0 + std::chrono::microseconds(1));
      const CpuMark c1 = CpuMark::take(pid);
      const auto m1 = scrape_metrics(metrics_address_);
      const double secs = std::chrono::duration<double>(t1 - t0).count();
      std::vector<double> lat;
      std::vector<Clock::time_point> arrivals;
      std::size_t ok = 0;
      for (std::size_t i = b; i < e; ++i)
        if (msgs_[i].receipted) {
          lat.push_back(ms(msgs_[i].receipt - msgs_[i].sent));
          arrivals.push_back(msgs_[i].receipt);
          ++ok;
        }
      std::sort(arrivals.begin(), arrivals.end());
      double max_gap = 0;
      for (std::size_t i = 1; i < arrivals.size(); ++i) max_gap = std::max(max_gap, ms(arrivals[i] - arrivals[i - 1]));
      std::vector<std::size_t> per_second;
      for (auto a : arrivals) {
        auto s = static_cast<std::size_t>(std::chrono::duration<double>(a - t0).count());
        if (per_second.size() <= s) per_second.resize(s + 1, 0);
        ++per_second[s];
      }
      const std::size_t fan = fanouts_ - fan0;
      json jr = latency_summary(lat);
      jr.erase("n");
      jr["messages"] = messages_;
      jr["receipted"] = ok;
      jr["seconds"] = round3(secs);
      jr["archived_per_s"] = std::round(static_cast<double>(ok) / secs);
      jr["fanout_stanzas_per_s"] = std::round(static_cast<double>(fan) / secs);
      jr["fanout_stanzas"] = fan;
      jr["max_gap_between_receipts_ms"] = round3(max_gap);
      jr["receipts_per_second"] = per_second;
      jr["cpu"] = cpu_report(c0, c1, static_cast<double>(messages_), "message");
      if (!metrics_address_.empty()) jr["group_commit"] = commit_report(m0, m1);
      rates.push_back(jr["archived_per_s"]);
      fan_rates.push_back(jr["fanout_stanzas_per_s"]);
      all_lat.insert(all_lat.end(), lat.begin(), lat.end());
      log("round " + std::to_string(r + 1) + ": " + jr.dump());
      rounds.push_back(std::move(jr));
    }
    // Unloaded latency: one message in flight at a time, each its own group commit.
    if (light_) {
      const std::size_t b = warmup_ + messages_ * rounds_, saved = window_;
      window_ = 1;
      co_await send_range(b, b + light_, deadline);
      window_ = saved;
      std::vector<double> lat;
      for (std::size_t i = b; i < b + light_; ++i)
        if (msgs_[i].receipted) lat.push_back(ms(msgs_[i].receipt - msgs_[i].sent));
      out["light_load"] = latency_summary(lat);
      out["light_load"]["window"] = 1;
      log("light load (window 1): " + out["light_load"].dump());
    }
    std::sort(rates.begin(), rates.end());
    std::sort(fan_rates.begin(), fan_rates.end());
    // Receipt latency at half the peak rate (the median round's): an open-loop sender at that
    // rate, so the figure is the component's own delay, not queueing behind a full window.
    if (paced_seconds_) {
      const double rate = std::min(rates[rates.size() / 2] / 2, static_cast<double>(kMaxPacedRate));
      const std::size_t n = std::max<std::size_t>(1, static_cast<std::size_t>(rate * static_cast<double>(paced_seconds_)));
      const std::size_t b = total;
      total += n;
      make_messages(b, total);
      co_await send_paced(b, b + n, rate, deadline);
      std::vector<double> lat;
      for (std::size_t i = b; i < b + n; ++i)
        if (msgs_[i].receipted) lat.push_back(ms(msgs_[i].receipt - msgs_[i].sent));
      out["half_peak"] = latency_summary(lat);
      out["half_peak"]["rate_per_s"] = std::round(rate);
      // Where the slow ones are: the worst receipt latency of the messages sent in each 100 ms.
      std::vector<double> worst;
      for (std::size_t i = b; i < b + n; ++i) {
        if (!msgs_[i].receipted) continue;
        const auto slot = static_cast<std::size_t>(ms(msgs_[i].sent - msgs_[b].sent) / 100);
        if (worst.size() <= slot) worst.resize(slot + 1, 0);
        worst[slot] = std::max(worst[slot], std::round(ms(msgs_[i].receipt - msgs_[i].sent)));
      }
      out["half_peak"]["worst_ms_per_100ms_sent"] = worst;
      out["half_peak"]["messages"] = n;
      log("half the peak rate (" + std::to_string(static_cast<long>(rate)) + "/s): " + out["half_peak"].dump());
    }
    double secs_total = 0;
    for (const auto& jr : rounds) secs_total += jr["seconds"].get<double>();
    const json lat = latency_summary(all_lat);
    out["messages"] = messages_ * rounds_;
    out["seconds"] = round3(secs_total);
    out["archived_per_s"] = rates[rates.size() / 2];  // median round
    out["fanout_stanzas_per_s"] = fan_rates[fan_rates.size() / 2];
    out["receipt_p50_ms"] = lat["p50_ms"];
    out["receipt_p90_ms"] = lat["p90_ms"];
    out["receipt_p99_ms"] = lat["p99_ms"];
    out["receipt_max_ms"] = lat["max_ms"];
    out["rounds"] = rounds;
    out["checks"] = checks(total);
    out["ok"] = errors_.total() == 0 && out["checks"]["missing_receipts"] == 0 && out["checks"]["missing_fanouts"] == 0 &&
                out["checks"]["fanout_duplicates"] == 0 && out["checks"]["duplicate_receipts"] == 0 &&
                out["checks"]["fanout_to_unexpected_jid"] == 0 && !timed_out_;
    out["errors"] = errors_.to_json();
    out["other_stanzas"] = {{"pubsub_events", events_}, {"unexpected", unexpected_}};
    out["bytes"] = {{"from_component", peer.bytes_in}, {"to_component", peer.bytes_out}};
    co_return out;
  }

 private:
  void make_users() {
    crypto::SodiumRng rng;
    std::set<std::uint32_t> used;
    users_.resize(users_n_);
    std::size_t k = 0;
    for (std::uint32_t u = 0; u < users_n_; ++u) {
      User& usr = users_[u];
      usr.local = prefix_ + std::to_string(u + 1);
      usr.bare = usr.local + "@" + user_domain_;
      for (std::uint32_t d = 0; d < kDevicesPerUser; ++d) {
        std::uint32_t id;
        do id = randombytes_uniform(0x7FFFFFFE) + 1;
        while (!used.insert(id).second);
        usr.devices[d].id = id;
        usr.devices[d].resource = "dev" + std::to_string(d + 1);
        // A bundle as a client makes it: Ed25519 identity, X25519 signed prekey signed with it,
        // `prekeys_` one-time prekeys.
        omemo::Bundle b;
        auto ik = crypto::IdentityKeyPair::generate(rng);
        auto spk = crypto::X25519KeyPair::generate(rng);
        b.spk_id = 1;
        b.spk = spk.pub;
        b.spks = ik.sign(spk.pub.view());
        b.ik = ik.pub();
        for (std::size_t p = 0; p < prekeys_; ++p)
          b.prekeys.push_back({static_cast<std::uint32_t>(p + 1), crypto::X25519KeyPair::generate(rng).pub});
        xml::Element iq = el("iq", kComponentNs);
        iq.set_attr("type", "set");
        iq.set_attr("from", usr.bare + "/" + usr.devices[d].resource);
        iq.set_attr("to", usr.local + "@" + domain_);
        iq.set_attr("id", "reg" + std::to_string(k++));
        auto& ps = iq.add_child(el("pubsub", kPubsubNs));
        auto& pub = ps.add_child(el("publish", kPubsubNs));
        pub.set_attr("node", "urn:xmpp:omemo:2:bundles");
        pub.add_child(el("item", kPubsubNs)).set_attr("id", std::to_string(id)).add_child(omemo::bundle_to_xml(b));
        auto& x = ps.add_child(el("publish-options", kPubsubNs)).add_child(el("x", kDataFormsNs));
        x.set_attr("type", "submit");
        auto field = [&](const char* var, const char* value, bool hidden) {
          auto& f = x.add_child(el("field", kDataFormsNs));
          f.set_attr("var", var);
          if (hidden) f.set_attr("type", "hidden");
          f.add_child(el("value", kDataFormsNs)).add_text(value);
        };
        field("FORM_TYPE", "http://jabber.org/protocol/pubsub#publish-options", true);
        field("pubsub#access_model", "open", false);
        field("pubsub#max_items", "max", false);
        regs_.push_back(wire(iq));
      }
    }
    // Then each user's device list, replacing whatever an earlier run on this database left,
    // so the coverage check expects exactly these devices.
    for (std::uint32_t u = 0; u < users_n_; ++u) {
      const User& usr = users_[u];
      xml::Element iq = el("iq", kComponentNs);
      iq.set_attr("type", "set");
      iq.set_attr("from", usr.bare + "/" + usr.devices[0].resource);
      iq.set_attr("to", usr.local + "@" + domain_);
      iq.set_attr("id", "reg" + std::to_string(k++));
      auto& pub = iq.add_child(el("pubsub", kPubsubNs)).add_child(el("publish", kPubsubNs));
      pub.set_attr("node", "urn:xmpp:omemo:2:devices");
      auto& devs = pub.add_child(el("item", kPubsubNs)).set_attr("id", "current").add_child(el("devices", kOmemoNs));
      for (const auto& d : usr.devices) devs.add_child(el("device", kOmemoNs)).set_attr("id", std::to_string(d.id));
      lists_.push_back(wire(iq));
    }
  }

  // Messages [from, total): appended (nothing may be in flight while msgs_ grows).
  void make_messages(std::size_t from, std::size_t total) {
    const std::string run = random_token(6);  // origin-ids unique across runs on one database
    msgs_.resize(total);
    for (std::size_t i = from; i < total; ++i) {
      Msg& m = msgs_[i];
      m.sender = randombytes_uniform(users_n_);
      std::set<std::uint32_t> picked{m.sender};
      for (std::uint32_t r = 0; r < kRecipients; ++r) {
        std::uint32_t u;
        do u = randombytes_uniform(users_n_);
        while (!picked.insert(u).second);
        m.owners[r] = u;
      }
      m.owners[kRecipients] = m.sender;
      const User& s = users_[m.sender];
      const std::uint32_t dev = randombytes_uniform(kDevicesPerUser);
      xml::Element msg = el("message", kComponentNs);
      msg.set_attr("from", s.bare + "/" + s.devices[dev].resource);
      msg.set_attr("to", domain_);
      msg.set_attr("type", "normal");
      msg.set_attr("id", "m" + std::to_string(i));
      auto& enc = msg.add_child(el("encrypted", kOmemoNs));
      auto& header = enc.add_child(el("header", kOmemoNs));
      header.set_attr("sid", std::to_string(s.devices[dev].id));
      auto keys_for = [&](const User& u, std::optional<std::uint32_t> skip) {
        auto& keys = header.add_child(el("keys", kOmemoNs));
        keys.set_attr("jid", u.bare);
        for (std::uint32_t d = 0; d < kDevicesPerUser; ++d) {
          if (skip && d == *skip) continue;
          // An OMEMOAuthenticatedMessage on an established session is ~124 bytes.
          keys.add_child(el("key", kOmemoNs)).set_attr("rid", std::to_string(u.devices[d].id)).add_text(random_b64(124));
        }
      };
      for (std::uint32_t r = 0; r < kRecipients; ++r) keys_for(users_[m.owners[r]], std::nullopt);
      keys_for(s, dev);  // the sender's other device(s)
      enc.add_child(el("payload", kOmemoNs)).add_text(random_b64(payload_bytes_));
      msg.add_child(el("origin-id", kSidNs)).set_attr("id", run + "-" + std::to_string(i));
      msg.add_child(el("store", kHintsNs));
      m.wire = wire(msg);
    }
  }

  asio::awaitable<void> send_range(std::size_t b, std::size_t e, Clock::time_point deadline) {
    next_ = b;
    end_ = e;
    pending_ = e - b;  // messages still waiting for their receipt and all their fan-outs (or an error)
    for (std::size_t i = b; i < e; ++i) msgs_[i].in_round = true;
    pump();
    const bool ok = co_await waiter_.until([&] { return pending_ == 0 || peer_->closed; }, deadline);
    for (std::size_t i = b; i < e; ++i) msgs_[i].in_round = false;
    if (peer_->closed) throw std::runtime_error("component went away: " + peer_->close_reason);
    if (!ok) {
      log("timeout: " + std::to_string(pending_) + " of " + std::to_string(e - b) + " messages incomplete");
      timed_out_ = true;
    }
  }

  // Sends [b, e) at `rate` per second whatever comes back (open loop; ticks of 1 ms), then
  // waits for every receipt.
  asio::awaitable<void> send_paced(std::size_t b, std::size_t e, double rate, Clock::time_point deadline) {
    const std::size_t saved = window_;
    window_ = e - b + 1;  // the window never holds the sender back here
    next_ = b;
    end_ = b;
    pending_ = e - b;
    for (std::size_t i = b; i < e; ++i) msgs_[i].in_round = true;
    asio::steady_timer tick(co_await asio::this_coro::executor);
    const auto t0 = Clock::now();
    while (end_ < e && !peer_->closed && Clock::now() < deadline) {
      const double due = std::chrono::duration<double>(Clock::now() - t0).count() * rate;
      end_ = std::min(e, b + static_cast<std::size_t>(due) + 1);
      pump();
      tick.expires_after(std::chrono::milliseconds(1));
      boost::system::error_code ec;
      co_await tick.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    const bool ok = co_await waiter_.until([&] { return pending_ == 0 || peer_->closed; }, deadline);
    for (std::size_t i = b; i < e; ++i) msgs_[i].in_round = false;
    window_ = saved;
    if (peer_->closed) throw std::runtime_error("component went away: " + peer_->close_reason);
    if (!ok) timed_out_ = true;
  }

  void pump() {
    const auto now = Clock::now();
    while (next_ < end_ && inflight_ < window_) {
      Msg& m = msgs_[next_++];
      m.sent = now;
      ++inflight_;
      peer_->send(m.wire);  // copied: the wire text stays for the stanza-size figure
    }
  }

  void finish_if_complete(Msg& m) {
    if (!m.in_round) return;
    if (m.errored || (m.receipted && m.fanout_mask == (1u << kFanoutPerMessage) - 1)) {
      m.in_round = false;
      if (pending_ > 0 && --pending_ == 0) waiter_.wake();
    }
  }

  std::optional<std::uint32_t> user_of(std::string_view bare) const {
    auto at = bare.find('@');
    if (at == std::string_view::npos || bare.substr(at + 1) != user_domain_) return std::nullopt;
    auto i = index_after(bare.substr(0, at), prefix_);
    if (!i || *i < 1 || *i > users_n_) return std::nullopt;
    return static_cast<std::uint32_t>(*i - 1);
  }

  void handle(xml::Element& st) {
    const auto now = Clock::now();
    const std::string type(st.attr("type").value_or(""));
    const std::string id(st.attr("id").value_or(""));
    if (st.name() == "iq") {
      auto k = index_after(id, "reg");
      if (!k) {
        ++unexpected_;
        if (type == "error") errors_.add(st);
        return;
      }
      if (type == "error") {
        errors_.add(st);
        ++reg_errors_;
      }
      ++reg_done_;
      if (reg_pump_) reg_pump_();
      waiter_.wake();
      return;
    }
    if (st.name() != "message") {
      ++unexpected_;
      return;
    }
    if (type == "error") {
      errors_.add(st);
      if (auto i = index_after(id, "m"); i && *i < msgs_.size()) {
        Msg& m = msgs_[*i];
        if (!m.errored && !m.receipted) {
          m.errored = true;
          --inflight_;
          finish_if_complete(m);
          pump();
        }
      }
      return;
    }
    if (const xml::Element* rc = st.child("received", kReceiptsNs)) {
      auto i = index_after(rc->attr("id").value_or(""), "m");
      if (!i || *i >= msgs_.size()) {
        ++unexpected_;
        return;
      }
      Msg& m = msgs_[*i];
      if (m.receipted) {
        ++duplicate_receipts_;
        return;
      }
      if (st.attr("to").value_or("") != std::string_view(msg_from(m))) ++receipt_wrong_to_;
      m.receipted = true;
      m.receipt = now;
      last_arrival_ = now;
      if (const xml::Element* sid = st.child("stanza-id", kSidNs))
        m.stanza_id = std::strtoll(std::string(sid->attr("id").value_or("0")).c_str(), nullptr, 10);
      // Arrival order vs send order.
      if (*i < max_receipted_ && max_receipted_ != SIZE_MAX) ++receipts_out_of_order_;
      if (max_receipted_ == SIZE_MAX || *i > max_receipted_) max_receipted_ = *i;
      if (m.fanout_mask) ++fanout_before_receipt_;
      --inflight_;
      finish_if_complete(m);
      pump();
      return;
    }
    if (const xml::Element* fwd = st.child("forwarded", kForwardNs)) {
      const xml::Element* inner = fwd->child("message", kClientNs);
      auto i = inner ? index_after(inner->attr("id").value_or(""), "m") : std::nullopt;
      auto owner = user_of(st.attr("to").value_or(""));
      if (!i || *i >= msgs_.size() || !owner) {
        ++unexpected_;
        return;
      }
      Msg& m = msgs_[*i];
      int slot = -1;
      for (std::uint32_t k = 0; k < kFanoutPerMessage; ++k)
        if (m.owners[k] == *owner) slot = static_cast<int>(k);
      if (slot < 0) {
        ++fanout_unexpected_;
        return;
      }
      if (m.fanout_mask & (1u << slot)) {
        ++fanout_duplicates_;
        return;
      }
      if (const xml::Element* sid = st.child("stanza-id", kSidNs); sid && m.receipted &&
          std::to_string(m.stanza_id) != sid->attr("id").value_or(""))
        ++fanout_stanza_id_mismatch_;
      m.fanout_mask |= static_cast<std::uint8_t>(1u << slot);
      ++fanouts_;
      last_arrival_ = now;
      finish_if_complete(m);
      return;
    }
    if (st.child("event", kPubsubEventNs)) {
      ++events_;
      return;
    }
    ++unexpected_;
  }

  std::string msg_from(const Msg& m) const {
    // The sending full JID is the wire's from attribute; recompute from the stanza text.
    auto p = m.wire.find("from='");
    if (p == std::string::npos) return {};
    auto q = m.wire.find('\'', p + 6);
    return m.wire.substr(p + 6, q - p - 6);
  }

  json checks(std::size_t total) const {
    std::size_t missing_receipts = 0, missing_fanouts = 0, errored = 0, order_violations = 0;
    std::vector<std::int64_t> last_sid(users_n_, 0);
    for (std::size_t i = 0; i < total; ++i) {
      const Msg& m = msgs_[i];
      if (m.errored) {
        ++errored;
        continue;
      }
      if (!m.receipted) ++missing_receipts;
      for (std::uint32_t k = 0; k < kFanoutPerMessage; ++k)
        if (!(m.fanout_mask & (1u << k))) ++missing_fanouts;
      // One sender's messages keep their order in the archive: stanza-ids grow in send order.
      if (m.receipted) {
        if (m.stanza_id <= last_sid[m.sender]) ++order_violations;
        last_sid[m.sender] = m.stanza_id;
      }
    }
    return {{"messages_sent", total},
            {"errored", errored},
            {"missing_receipts", missing_receipts},
            {"missing_fanouts", missing_fanouts},
            {"duplicate_receipts", duplicate_receipts_},
            {"fanout_duplicates", fanout_duplicates_},
            {"fanout_to_unexpected_jid", fanout_unexpected_},
            {"fanout_stanza_id_mismatch", fanout_stanza_id_mismatch_},
            {"fanout_before_receipt", fanout_before_receipt_},
            {"receipt_to_wrong_jid", receipt_wrong_to_},
            {"receipts_out_of_send_order", receipts_out_of_order_},
            {"per_sender_stanza_id_order_violations", order_violations},
            {"timed_out", timed_out_}};
  }

  asio::io_context& ioc_;
  Waiter waiter_;
  Peer* peer_ = nullptr;
  std::string domain_, user_domain_, prefix_;
  std::uint32_t users_n_;
  std::size_t messages_, rounds_, warmup_, window_, payload_bytes_, prekeys_, light_, paced_seconds_;
  std::string metrics_address_;
  std::string pid_file_;
  std::vector<User> users_;
  std::vector<std::string> regs_, lists_;
  std::function<void()> reg_pump_;
  std::size_t reg_sent_ = 0, reg_done_ = 0, reg_errors_ = 0;
  std::vector<Msg> msgs_;
  std::size_t next_ = 0, end_ = 0, pending_ = 0, inflight_ = 0;
  std::size_t fanouts_ = 0, events_ = 0, unexpected_ = 0;
  std::size_t duplicate_receipts_ = 0, fanout_duplicates_ = 0, fanout_unexpected_ = 0, fanout_stanza_id_mismatch_ = 0;
  std::size_t fanout_before_receipt_ = 0, receipt_wrong_to_ = 0, receipts_out_of_order_ = 0;
  std::size_t max_receipted_ = SIZE_MAX;
  bool timed_out_ = false;
  Clock::time_point last_arrival_{};
  ErrorLog errors_;
};

// ---------------------------------------------------------------------------------------------
// mam mode

class MamRun {
 public:
  MamRun(asio::io_context& ioc, const Options& o)
      : waiter_(ioc.get_executor()),
        domain_(o.get("component-domain", "archive.localhost")),
        user_domain_(o.get("user-domain", "localhost")),
        prefix_(o.get("mam-user-prefix", "user")),
        users_n_(static_cast<std::uint32_t>(o.num("mam-users", 1000))),
        queries_(static_cast<std::size_t>(o.num("queries", 1500))),
        warmup_(static_cast<std::size_t>(o.num("mam-warmup", 100))),
        page_(static_cast<std::uint32_t>(o.num("page", 50))),
        pid_file_(o.get("component-pid-file", "")),
        metrics_address_(o.get("metrics-address", "")) {
    const std::string ids_file = o.get("ids-file", "");
    if (ids_file.empty()) throw std::invalid_argument("--mode mam needs --ids-file");
    std::ifstream f(ids_file);
    if (!f) throw std::invalid_argument("cannot read " + ids_file);
    std::string owner;
    std::int64_t id;
    while (f >> owner >> id) ids_.emplace_back(owner, id);
    if (ids_.empty()) throw std::invalid_argument(ids_file + " holds no (owner, id) lines");
  }

  asio::awaitable<json> run(Peer& peer, Clock::time_point deadline) {
    peer_ = &peer;
    peer.on_stanza = [this](xml::Element& s) { handle(s); };
    peer.on_closed = [this] { waiter_.wake(); };
    long pid = 0;
    if (!pid_file_.empty()) {
      std::ifstream f(pid_file_);
      f >> pid;
    }
    static const char* kinds[] = {"last_page", "after_random_id", "before_random_id"};
    std::map<std::string, std::vector<double>> by_kind;
    std::vector<double> all;
    std::size_t results = 0, short_pages = 0, complete_pages = 0;
    CpuMark c0{};
    std::map<std::string, double> m0;
    for (std::size_t q = 0; q < warmup_ + queries_; ++q) {
      if (q == warmup_) {
        m0 = scrape_metrics(metrics_address_);
        c0 = CpuMark::take(pid);
      }
      const int kind = static_cast<int>(q % 3);
      std::string local;
      xml::Element set = el("set", kRsmNs);
      set.add_child(el("max", kRsmNs)).add_text(std::to_string(page_));
      if (kind == 0) {
        local = prefix_ + std::to_string(randombytes_uniform(users_n_) + 1);
        set.add_child(el("before", kRsmNs));
      } else {
        const auto& [owner, id] = ids_[randombytes_uniform(static_cast<std::uint32_t>(ids_.size()))];
        local = owner;
        set.add_child(el(kind == 1 ? "after" : "before", kRsmNs)).add_text(std::to_string(id));
      }
      const std::string qid = "q" + std::to_string(q);
      xml::Element iq = el("iq", kComponentNs);
      iq.set_attr("type", "set");
      iq.set_attr("from", local + "@" + user_domain_ + "/dev1");
      iq.set_attr("to", domain_);
      iq.set_attr("id", qid);
      auto& query = iq.add_child(el("query", kMamNs));
      query.set_attr("queryid", qid);
      query.add_child(std::move(set));
      current_ = qid;
      got_results_ = 0;
      fin_ = false;
      failed_ = false;
      complete_ = false;
      const auto t0 = Clock::now();
      peer_->send(wire(iq));
      if (!co_await waiter_.until([&] { return fin_ || failed_ || peer_->closed; }, deadline))
        throw std::runtime_error("timeout waiting for MAM query " + qid);
      if (peer_->closed) throw std::runtime_error("component went away: " + peer_->close_reason);
      const double t = ms(fin_at_ - t0);
      if (q < warmup_ || failed_) continue;
      all.push_back(t);
      by_kind[kinds[kind]].push_back(t);
      results += got_results_;
      if (got_results_ < page_) ++short_pages;
      if (complete_) ++complete_pages;
    }
    const CpuMark c1 = CpuMark::take(pid);
    auto m1 = scrape_metrics(metrics_address_);
    json out;
    out["mode"] = "mam";
    // The component's own timing of the database part of a query (ownership check of named
    // ids, last_activity update and commit, the page SELECT), averaged over the measured queries.
    if (const double n = m1["multiend_mam_query_seconds_count"] - m0["multiend_mam_query_seconds_count"]; n > 0)
      out["component_db_ms_mean"] =
          round3((m1["multiend_mam_query_seconds_sum"] - m0["multiend_mam_query_seconds_sum"]) / n * 1000);
    out["queries"] = all.size();
    out["page_max"] = page_;
    out["users"] = users_n_;
    const json s = latency_summary(all);
    out["p50_ms"] = s["p50_ms"];
    out["p90_ms"] = s["p90_ms"];
    out["p99_ms"] = s["p99_ms"];
    out["max_ms"] = s["max_ms"];
    json k;
    for (auto& [name, v] : by_kind) k[name] = latency_summary(v);
    out["by_kind"] = k;
    out["results_per_page_avg"] = all.empty() ? 0.0 : round3(static_cast<double>(results) / static_cast<double>(all.size()));
    out["short_pages"] = short_pages;
    out["complete_pages"] = complete_pages;
    out["cpu"] = cpu_report(c0, c1, static_cast<double>(all.size()), "query");
    out["errors"] = errors_.to_json();
    out["unexpected_stanzas"] = unexpected_;
    co_return out;
  }

 private:
  void handle(xml::Element& st) {
    const std::string type(st.attr("type").value_or(""));
    if (st.name() == "message") {
      if (const xml::Element* r = st.child("result", kMamNs); r && r->attr("queryid").value_or("") == current_) {
        ++got_results_;
        return;
      }
      ++unexpected_;
      return;
    }
    if (st.name() == "iq" && st.attr("id").value_or("") == current_) {
      if (type == "result" && st.child("fin", kMamNs)) {
        fin_ = true;
        complete_ = st.child("fin", kMamNs)->attr("complete").value_or("") == "true";
      } else {
        if (type == "error") errors_.add(st);
        failed_ = true;
      }
      fin_at_ = Clock::now();
      waiter_.wake();
      return;
    }
    ++unexpected_;
  }

  Waiter waiter_;
  Peer* peer_ = nullptr;
  std::string domain_, user_domain_, prefix_;
  std::uint32_t users_n_;
  std::size_t queries_, warmup_;
  std::uint32_t page_;
  std::string pid_file_, metrics_address_;
  std::vector<std::pair<std::string, std::int64_t>> ids_;
  std::string current_;
  std::size_t got_results_ = 0, unexpected_ = 0;
  bool fin_ = false, failed_ = false, complete_ = false;
  Clock::time_point fin_at_{};
  ErrorLog errors_;
};

// ---------------------------------------------------------------------------------------------

asio::awaitable<void> main_task(asio::io_context& ioc, Options o, json& result, std::string& failure) {
  const std::string mode = o.get("mode", "load");
  const std::string secret = [] {
    const char* s = std::getenv("MULTIEND_COMPONENT_SECRET");
    return std::string(s ? s : "");
  }();
  const auto deadline = Clock::now() + std::chrono::seconds(o.num("timeout", 300));
  std::optional<LoadRun> load;
  std::optional<MamRun> mam;
  if (mode == "load") load.emplace(ioc, o);
  else if (mode == "mam") mam.emplace(ioc, o);
  else throw std::invalid_argument("--mode is load or mam");
  if (secret.empty()) throw std::invalid_argument("set MULTIEND_COMPONENT_SECRET");

  tcp::acceptor acceptor(ioc);
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(o.num("port", 0)));
  acceptor.open(ep.protocol());
  acceptor.set_option(tcp::acceptor::reuse_address(true));
  acceptor.bind(ep);
  acceptor.listen();
  const auto port = acceptor.local_endpoint().port();
  log("listening on 127.0.0.1:" + std::to_string(port));
  if (auto pf = o.get("port-file", ""); !pf.empty()) {
    std::ofstream(pf + ".tmp") << port << "\n";
    std::rename((pf + ".tmp").c_str(), pf.c_str());
  }
  // Accept with a deadline: cancel the acceptor if nobody comes.
  asio::steady_timer accept_timer(ioc, std::chrono::seconds(o.num("accept-timeout", 60)));
  accept_timer.async_wait([&](boost::system::error_code ec) {
    if (!ec) acceptor.cancel();
  });
  tcp::socket sock = co_await acceptor.async_accept(asio::use_awaitable);
  accept_timer.cancel();
  acceptor.close();
  sock.set_option(tcp::no_delay(true));
  Peer peer(std::move(sock));
  co_await peer.accept_component(o.get("component-domain", "archive.localhost"), secret);
  log("component authenticated");
  asio::co_spawn(ioc, peer.reader(), asio::detached);
  asio::co_spawn(ioc, peer.writer(), asio::detached);
  json r;
  bool ok = true;
  try {
    if (load) r = co_await load->run(peer, deadline);
    else r = co_await mam->run(peer, deadline);
  } catch (const std::exception& e) {
    failure = e.what();
    ok = false;
  }
  peer.on_stanza = nullptr;
  peer.close_stream();
  asio::steady_timer t(ioc, std::chrono::milliseconds(200));
  co_await t.async_wait(asio::use_awaitable);
  peer.shutdown();
  if (ok) result = std::move(r);
}

}  // namespace

int main(int argc, char** argv) {
  if (sodium_init() < 0) return 1;
  try {
    Options o = parse_args(argc, argv);
    asio::io_context ioc(1);
    json result;
    std::string failure;
    std::exception_ptr ep;
    asio::co_spawn(ioc, main_task(ioc, o, result, failure), [&](std::exception_ptr e) {
      ep = e;
      ioc.stop();
    });
    ioc.run();
    if (ep) std::rethrow_exception(ep);
    if (!failure.empty()) {
      log("failed: " + failure);
      std::cout << json{{"error", failure}}.dump() << std::endl;
      return 1;
    }
    std::cout << result.dump() << std::endl;
    return 0;
  } catch (const std::exception& e) {
    log(std::string("error: ") + e.what());
    std::cout << json{{"error", e.what()}}.dump() << std::endl;
    return 1;
  }
}
