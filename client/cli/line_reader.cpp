#include "client/cli/line_reader.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace multiend::client::cli {

LineReader::LineReader(int fd, std::size_t max_line, std::size_t max_buffered_bytes)
    : fd_(fd), max_line_(max_line), max_bytes_(std::max(max_buffered_bytes, max_line + 1)), thread_([this] { run(); }) {}

LineReader::~LineReader() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  room_.notify_all();
  thread_.join();  // the thread polls with a timeout, so it sees stopping_ soon
}

LineReader::Got LineReader::poll(InputLine& out) {
  std::lock_guard lock(mu_);
  if (lines_.empty()) return ended_ ? Got::ended : Got::nothing_yet;
  out = std::move(lines_.front());
  lines_.pop_front();
  bytes_ -= out.text.size() + 64;
  room_.notify_all();
  return Got::line;
}

std::size_t LineReader::buffered_bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

std::string LineReader::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

void LineReader::push(InputLine line) {
  std::unique_lock lock(mu_);
  const std::size_t cost = line.text.size() + 64;
  room_.wait(lock, [&] { return stopping_ || bytes_ + cost <= max_bytes_ || lines_.empty(); });
  if (stopping_) return;
  bytes_ += cost;
  lines_.push_back(std::move(line));
}

void LineReader::run() {
  InputLine cur;
  cur.number = 1;
  bool any = false;  // bytes of the current line seen
  char buf[65536];
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    pollfd p{fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, 100);
    if (r == 0) continue;
    if (r < 0 && errno == EINTR) continue;
    ssize_t n = r < 0 ? -1 : ::read(fd_, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      std::lock_guard lock(mu_);
      if (n < 0) error_ = std::string("reading stdin: ") + std::strerror(errno);
      break;
    }
    for (ssize_t i = 0; i < n; ++i) {
      const char ch = buf[i];
      if (ch == '\n') {
        if (!cur.text.empty() && cur.text.back() == '\r') cur.text.pop_back();
        const std::size_t number = cur.number;
        push(std::move(cur));
        cur = InputLine{};
        cur.number = number + 1;
        any = false;
        continue;
      }
      any = true;
      if (cur.too_long) continue;
      if (cur.text.size() >= max_line_) {
        cur.too_long = true;
        cur.text.clear();
        cur.text.shrink_to_fit();
        continue;
      }
      cur.text.push_back(ch);
    }
  }
  if (any) {
    if (!cur.text.empty() && cur.text.back() == '\r') cur.text.pop_back();
    push(std::move(cur));
  }
  std::lock_guard lock(mu_);
  ended_ = true;
}

}  // namespace multiend::client::cli
