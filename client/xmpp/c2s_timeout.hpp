// Internal to client/xmpp (not part of the C2sConnection API): a deadline for one awaitable
// operation, as the c2s connection needs it. with_timeout() runs the operation against a timer
// and says whether it finished in time; on expiry it calls a hook that must make an operation
// which ignores cancellation finish (close or cancel its socket). It knows nothing of sockets
// or of what the operation does. Templates, hence a header.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <chrono>
#include <exception>
#include <functional>
#include <optional>
#include <utility>
#include <variant>

namespace multiend::client {
namespace asio = boost::asio;  // as in c2s_connection.hpp
}  // namespace multiend::client

namespace multiend::client::c2s_detail {

using Clock = std::chrono::steady_clock;

inline asio::awaitable<void> sleep_for(Clock::duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  boost::system::error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (ec) throw boost::system::system_error(ec);  // cancelled: the other branch won
}

inline asio::awaitable<void> sleep_then(Clock::duration d, std::function<void()>* on_expire) {
  co_await sleep_for(d);
  if (on_expire && *on_expire) (*on_expire)();
}

// `||` waits for the first branch to *succeed*: an operation that throws would otherwise be
// reported only when the deadline expires. These wrappers turn its exception into a value.
template <class T>
asio::awaitable<std::optional<T>> capture(asio::awaitable<T> op, std::exception_ptr& error) {
  try {
    co_return co_await std::move(op);
  } catch (...) {
    error = std::current_exception();
  }
  co_return std::nullopt;
}

inline asio::awaitable<bool> capture_void(asio::awaitable<void> op, std::exception_ptr& error) {
  try {
    co_await std::move(op);
  } catch (...) {
    error = std::current_exception();
  }
  co_return true;
}

// Runs `op` until `d` elapses. nullopt on timeout (after calling *on_expire, if given, which
// must make a non-cancellable `op` finish); the operation's own exception is rethrown at once.
template <class T>
asio::awaitable<std::optional<T>> with_timeout(asio::awaitable<T> op, Clock::duration d,
                                               std::function<void()>* on_expire = nullptr) {
  using namespace asio::experimental::awaitable_operators;
  std::exception_ptr error;
  auto r = co_await (capture(std::move(op), error) || sleep_then(d, on_expire));
  if (r.index() == 1) co_return std::nullopt;
  if (error) std::rethrow_exception(error);
  co_return std::move(std::get<0>(r));
}

// The same for an operation without a value: false on timeout.
inline asio::awaitable<bool> with_timeout_void(asio::awaitable<void> op, Clock::duration d,
                                               std::function<void()>* on_expire = nullptr) {
  using namespace asio::experimental::awaitable_operators;
  std::exception_ptr error;
  auto r = co_await (capture_void(std::move(op), error) || sleep_then(d, on_expire));
  if (r.index() == 1) co_return false;
  if (error) std::rethrow_exception(error);
  co_return true;
}

}  // namespace multiend::client::c2s_detail
