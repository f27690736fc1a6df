// The bulk commands: `send --lines` (one message per stdin line to the same recipients) and
// `run` (JSON commands on stdin, JSON lines out, live messages shown as they come). Both keep
// one connection and a window of messages awaiting receipts (Client::send_many).
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "client/app/errors.hpp"
#include "client/cli/commands.hpp"
#include "client/cli/line_reader.hpp"
#include "client/cli/output.hpp"
#include "client/cli/steps.hpp"

namespace multiend::client::cli {
namespace {

constexpr std::size_t kMaxCommandLine = 2 * kMaxBody;     // JSON escaping can double a body
constexpr std::size_t kInputBufferBytes = 4 * 1024 * 1024;  // stdin read ahead, at most
constexpr int kMaxSkippedPerPoll = 1000;

// "N sent, M awaiting receipts" on stderr, twice a second, when stderr is a terminal.
class ProgressLine {
 public:
  ProgressLine() : on_(isatty(STDERR_FILENO) != 0), start_(std::chrono::steady_clock::now()) {}
  void update(const BulkProgress& p) {
    if (!on_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(500)) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    std::cerr << "\rmultiend: " << p.receipted << " sent, " << p.in_flight << " awaiting receipts";
    if (p.refused) std::cerr << ", " << p.refused << " refused";
    if (secs > 0) std::cerr << ", " << static_cast<long>(p.receipted / secs) << " msg/s";
    std::cerr << "   " << std::flush;
    shown_ = true;
  }
  ~ProgressLine() {
    if (shown_) std::cerr << '\n';
  }

 private:
  bool on_, shown_ = false;
  std::chrono::steady_clock::time_point start_, last_{};
};

nlohmann::json outcome_json(const SendOutcome& o) {
  nlohmann::json j;
  if (o.refused.empty()) {
    j = sent_json(o.to, o.report);
  } else {
    j = {{"type", "refused"}, {"to", o.to}, {"error", o.refused}};
  }
  if (!o.ref.empty()) j["ref"] = nlohmann::json::parse(o.ref, nullptr, false);
  return j;
}

// {"send":{"to":["bob@example.org"] or "bob@example.org","body":"…","ref":…}} → a message.
std::optional<std::string> parse_command(const std::string& text, OutgoingMessage& m) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return "not a JSON object";
  if (j.size() != 1 || !j.contains("send")) return "unknown command (known: send)";
  const auto& s = j["send"];
  if (!s.is_object()) return "send: an object is needed";
  for (const auto& [k, v] : s.items())
    if (k != "to" && k != "body" && k != "ref") return "send: unknown field '" + k + "'";
  if (!s.contains("body") || !s["body"].is_string()) return "send: 'body' (a string) is needed";
  m.body = s["body"].get<std::string>();
  if (m.body.empty()) return "send: empty body";
  if (m.body.size() > kMaxBody) return "send: the body is longer than 64 KiB";
  m.to.clear();
  if (s.contains("to") && s["to"].is_string()) {
    m.to.push_back(s["to"].get<std::string>());
  } else if (s.contains("to") && s["to"].is_array() && !s["to"].empty() && s["to"].size() <= 100) {
    for (const auto& t : s["to"]) {
      if (!t.is_string()) return "send: 'to' holds JIDs (strings)";
      m.to.push_back(t.get<std::string>());
    }
  } else {
    return "send: 'to' (a JID or a list of 1 to 100 JIDs) is needed";
  }
  m.ref.clear();
  if (s.contains("ref")) {
    if (!s["ref"].is_string() && !s["ref"].is_number() && !s["ref"].is_boolean())
      return "send: 'ref' must be a string, a number or a boolean";
    m.ref = s["ref"].dump();
  }
  return std::nullopt;
}

}  // namespace

void cmd_send_lines(const Common& c, const SendArgs& a) {
  for (const auto& t : a.to) (void)user_bare_jid(t);  // a bad --to fails before anything is read
  auto o = open_state(c);
  LineReader reader(STDIN_FILENO, kMaxBody, kInputBufferBytes);
  std::optional<ClientError> input_error;
  ProgressLine bar;
  OutgoingSource source = [&](OutgoingMessage& m) {
    InputLine line;
    // Skipped lines are bounded per call, so a flood of them does not keep the connection unserved.
    for (int skipped = 0; skipped < kMaxSkippedPerPoll; ++skipped) {
      switch (reader.poll(line)) {
        case LineReader::Got::nothing_yet:
          return Poll::empty;
        case LineReader::Got::ended:
          if (!reader.error().empty()) input_error = ClientError(ErrorKind::usage, reader.error());
          return Poll::ended;
        case LineReader::Got::line:
          break;
      }
      if (line.too_long) {
        input_error = ClientError(ErrorKind::usage, "line " + std::to_string(line.number) + " is longer than 64 KiB");
        return Poll::ended;  // what came before is sent; nothing after it
      }
      if (line.text.empty()) continue;
      m.to = a.to;
      m.body = std::move(line.text);
      m.ref = std::to_string(line.number);
      return Poll::item;
    }
    return Poll::empty;
  };
  // Named, not temporaries in the co_await below (GCC 12 mis-destroys those).
  const OutcomeSink print_outcome = [](const SendOutcome& out) {
    auto j = outcome_json(out);
    if (j.contains("ref")) {  // send --lines names the input line
      j["line"] = j["ref"];
      j.erase("ref");
    }
    emit(j);
  };
  BulkOptions options;
  options.window = a.window;
  options.stop_on_refusal = true;
  options.progress = [&](const BulkProgress& p) { bar.update(p); };
  run_online(*o->device, o->settings, std::chrono::seconds(c.timeout_seconds),
             [&](Client& client) -> asio::awaitable<void> {
               co_await start(client);
               co_await client.catch_up({}, {});
               co_await client.send_many(source, print_outcome, {}, options);
             });
  if (input_error) throw *input_error;
}

void cmd_run(const Common& c, std::size_t window) {
  auto o = open_state(c);
  LineReader reader(STDIN_FILENO, kMaxCommandLine, kInputBufferBytes);
  ProgressLine bar;
  OutgoingSource source = [&](OutgoingMessage& m) {
    InputLine line;
    // Skipped lines are bounded per call, so a flood of them does not keep the connection unserved.
    for (int skipped = 0; skipped < kMaxSkippedPerPoll; ++skipped) {
      switch (reader.poll(line)) {
        case LineReader::Got::nothing_yet:
          return Poll::empty;
        case LineReader::Got::ended:
          if (!reader.error().empty()) emit({{"type", "error"}, {"error", reader.error()}});
          return Poll::ended;
        case LineReader::Got::line:
          break;
      }
      if (line.too_long) {
        emit({{"type", "error"}, {"line", line.number}, {"error", "longer than 128 KiB; ignored"}});
        continue;
      }
      if (line.text.find_first_not_of(" \t") == std::string::npos) continue;
      if (auto why = parse_command(line.text, m)) {
        emit({{"type", "error"}, {"line", line.number}, {"error", *why}});
        continue;
      }
      return Poll::item;
    }
    return Poll::empty;
  };
  const OutcomeSink print_outcome = [](const SendOutcome& out) { emit(outcome_json(out)); };
  const MessageSink incoming = print_message;
  BulkOptions options;
  options.window = window;
  options.stop_on_refusal = false;
  options.live = true;
  options.progress = [&](const BulkProgress& p) { bar.update(p); };
  run_online(*o->device, o->settings, std::chrono::seconds(c.timeout_seconds),
             [&](Client& client) -> asio::awaitable<void> {
               co_await start(client);
               co_await client.catch_up(incoming, {});
               client.announce();  // fan-out reaches this resource from here on
               emit({{"type", "ready"}, {"jid", o->device->jid()}, {"device", o->device->device_id()}});
               co_await client.send_many(source, print_outcome, incoming, options);
             });
}

}  // namespace multiend::client::cli
