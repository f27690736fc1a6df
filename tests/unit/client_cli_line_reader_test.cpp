// LineReader: stdin lines on a thread, bounded, never blocking the consumer.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "client/cli/line_reader.hpp"

using multiend::client::cli::InputLine;
using multiend::client::cli::LineReader;

namespace {

struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    r = fds[0];
    w = fds[1];
  }
  ~Pipe() {
    if (r >= 0) ::close(r);
    close_write();
  }
  void write(const std::string& s) {
    std::size_t done = 0;
    while (done < s.size()) {
      const auto n = ::write(w, s.data() + done, s.size() - done);
      REQUIRE(n > 0);
      done += static_cast<std::size_t>(n);
    }
  }
  void close_write() {
    if (w >= 0) ::close(w);
    w = -1;
  }
};

// Polls until a line or the end comes (the reader thread needs a moment).
LineReader::Got wait_for(LineReader& reader, InputLine& line) {
  for (int i = 0; i < 500; ++i) {
    auto got = reader.poll(line);
    if (got != LineReader::Got::nothing_yet) return got;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return LineReader::Got::nothing_yet;
}

}  // namespace

TEST_CASE("lines are split, numbered, stripped of CR; a last line without newline counts") {
  Pipe p;
  LineReader reader(p.r, 100, 1 << 20);
  InputLine line;
  CHECK(reader.poll(line) == LineReader::Got::nothing_yet);  // never blocks
  p.write("one\r\ntwo\n\nthree");
  p.close_write();
  std::vector<std::string> texts;
  std::vector<std::size_t> numbers;
  while (wait_for(reader, line) == LineReader::Got::line) {
    texts.push_back(line.text);
    numbers.push_back(line.number);
  }
  CHECK(texts == std::vector<std::string>{"one", "two", "", "three"});
  CHECK(numbers == std::vector<std::size_t>{1, 2, 3, 4});
  CHECK(reader.poll(line) == LineReader::Got::ended);
  CHECK(reader.error().empty());
}

TEST_CASE("a line longer than the limit is flagged and its bytes are not kept") {
  Pipe p;
  LineReader reader(p.r, 10, 1 << 20);
  p.write(std::string(1000, 'x') + "\nok\n");
  p.close_write();
  InputLine line;
  REQUIRE(wait_for(reader, line) == LineReader::Got::line);
  CHECK(line.too_long);
  CHECK(line.text.empty());
  CHECK(line.number == 1);
  REQUIRE(wait_for(reader, line) == LineReader::Got::line);
  CHECK_FALSE(line.too_long);
  CHECK(line.text == "ok");
  CHECK(line.number == 2);
}

TEST_CASE("what it holds is bounded: a consumer that lags stops the reading") {
  Pipe p;
  LineReader reader(p.r, 100, 1000);  // ~1000 bytes held, at most
  // The writer would block once the reader holds its bound and the pipe (64 KiB) is full.
  std::thread writer([&] {
    for (int i = 0; i < 5000; ++i) p.write(std::string(99, 'a') + "\n");
    p.close_write();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // 500 KB were offered; the reader holds no more than its bound.
  CHECK(reader.buffered_bytes() > 0);
  CHECK(reader.buffered_bytes() <= 1000);
  InputLine line;
  std::size_t count = 0;
  while (wait_for(reader, line) == LineReader::Got::line) {
    CHECK(line.text.size() == 99);
    ++count;
  }
  writer.join();
  CHECK(count == 5000);
}

TEST_CASE("destroying it while input is still open does not hang") {
  Pipe p;
  const auto t0 = std::chrono::steady_clock::now();
  {
    LineReader reader(p.r, 100, 1000);
    p.write("half a line");
  }
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
}
