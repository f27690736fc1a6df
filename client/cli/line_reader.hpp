// Reads stdin line by line on its own thread, so a coroutine that also serves the XMPP
// connection never blocks on a pipe that a script fills slowly. What it holds is bounded in
// bytes: when the consumer lags, the thread stops reading (the writer then blocks on its pipe).
// Knows nothing about messages or JSON.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

namespace multiend::client::cli {

struct InputLine {
  std::string text;         // without '\n' (and a '\r' before it); empty when too_long
  std::size_t number = 0;   // 1-based
  bool too_long = false;    // longer than max_line: its bytes were skipped, not kept
};

class LineReader {
 public:
  enum class Got { line, nothing_yet, ended };

  LineReader(int fd, std::size_t max_line, std::size_t max_buffered_bytes);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // Never blocks.
  Got poll(InputLine& out);
  // What it holds now, in its own accounting (text + 64 per line): at most the bound.
  std::size_t buffered_bytes() const;
  // A read error ends the input; this says which (empty if none).
  std::string error() const;

 private:
  void run();
  void push(InputLine line);

  int fd_;
  std::size_t max_line_, max_bytes_;
  mutable std::mutex mu_;
  std::condition_variable room_;
  std::deque<InputLine> lines_;
  std::size_t bytes_ = 0;
  bool ended_ = false, stopping_ = false;
  std::string error_;
  std::thread thread_;
};

}  // namespace multiend::client::cli
