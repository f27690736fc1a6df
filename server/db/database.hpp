// Blocking libpqxx work, run on a thread pool of its own and awaited from the component's
// single-threaded io_context, so a slow query never stalls the XMPP stream. Owns the
// connection pool; knows nothing of XMPP. Every wait is bounded:
//  * statements run under statement_timeout and lock_timeout (the server enforces them);
//  * connections carry connect_timeout, TCP keepalives and tcp_user_timeout (conninfo.hpp);
//  * a watchdog shuts down the socket of a statement running well past statement_timeout (a
//    frozen or black-holed server enforces nothing), so the job fails with a broken
//    connection instead of waiting for the server to come back;
//  * a job that waited in the queue longer than the statement timeout is not run: it fails;
//  * after a failed connect the database counts as down for `down_retry`: jobs fail at once
//    (no connect attempt per queued job), then the next job tries again.
// A failed job throws in the caller; broken connections are dropped, the idle ones with them.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <stdexcept>
#include <thread>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <type_traits>
#include <vector>

#include "server/metrics.hpp"

namespace multiend::server {

namespace asio = boost::asio;

namespace detail {
template <class R>
struct RunSignature {
  using type = void(std::exception_ptr, R);
};
template <>
struct RunSignature<void> {
  using type = void(std::exception_ptr);
};
}  // namespace detail

// Thrown (in the caller) when a job was not run: the database is known to be down, or the job
// waited longer than the statement timeout for a connection.
class DatabaseUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct DatabaseOptions {
  std::string url;  // libpq URL or key=value string (conninfo.hpp adds the timeouts)
  int pool_size = 4;
  std::int64_t statement_timeout_seconds = 15;
  std::int64_t connect_timeout_seconds = 10;
  // How long past statement_timeout the watchdog lets a statement run before it cuts the
  // connection (the server's own timeout should always come first).
  std::chrono::milliseconds watchdog_grace{3000};
  // A job running longer than this makes healthy() false (the server is not answering).
  std::chrono::milliseconds stall_report{5000};
  std::chrono::milliseconds down_retry{2000};
};

// The libpq connection string for `o.url` with the timeouts of conninfo.hpp (connect_timeout,
// keepalives, tcp_user_timeout) added: every connection the component opens uses it. Throws
// std::invalid_argument when libpq cannot parse the URL.
std::string connection_string(const DatabaseOptions& o);

class Database {
 public:
  // Throws std::invalid_argument when libpq cannot parse the URL.
  Database(DatabaseOptions options, Metrics& metrics);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  Database(Database&&) = delete;

  // Runs f(pqxx::connection&) on a database thread; resumes the caller on its own executor.
  // Exceptions from f (pqxx::broken_connection, sql errors) are rethrown in the caller.
  template <class F, class R = std::invoke_result_t<F, pqxx::connection&>>
  asio::awaitable<R> run(F f) {
    static_assert(std::is_default_constructible_v<R> || std::is_void_v<R>);
    using Sig = typename detail::RunSignature<R>::type;
    return asio::async_initiate<decltype(asio::use_awaitable), Sig>(
        [this, f = std::move(f)](auto handler) mutable {
          const auto queued_at = std::chrono::steady_clock::now();
          asio::post(pool_, [this, f = std::move(f), handler = std::move(handler), queued_at]() mutable {
            std::exception_ptr ep;
            if constexpr (std::is_void_v<R>) {
              try {
                check_queue_wait(queued_at);
                with_connection(f);
              } catch (...) {
                ep = std::current_exception();
              }
              auto ex = asio::get_associated_executor(handler);
              asio::dispatch(ex, [handler = std::move(handler), ep]() mutable { handler(ep); });
            } else {
              R r{};
              try {
                check_queue_wait(queued_at);
                r = with_connection(f);
              } catch (...) {
                ep = std::current_exception();
              }
              auto ex = asio::get_associated_executor(handler);
              asio::dispatch(ex, [handler = std::move(handler), ep, r = std::move(r)]() mutable {
                handler(ep, std::move(r));
              });
            }
          });
        },
        asio::use_awaitable);
  }

  // True when the last use of a connection succeeded and no statement is stuck (for /readyz).
  bool healthy() const noexcept { return healthy_.load() && !stalled_.load(); }
  void stop();

 private:
  struct Running {
    int fd = -1;
    std::chrono::steady_clock::time_point started;
    bool cut = false;
  };

  std::unique_ptr<pqxx::connection> acquire();
  void release(std::unique_ptr<pqxx::connection> c);
  void drop(std::unique_ptr<pqxx::connection> c);
  void check_queue_wait(std::chrono::steady_clock::time_point queued_at) const;
  std::size_t start_running(int fd);
  void stop_running(std::size_t slot);
  void watchdog();

  template <class F>
  auto with_connection(F& f) {
    std::unique_ptr<pqxx::connection> c = acquire();
    const std::size_t slot = start_running(c->sock());
    try {
      if constexpr (std::is_void_v<std::invoke_result_t<F, pqxx::connection&>>) {
        f(*c);
        stop_running(slot);
        release(std::move(c));
      } else {
        auto r = f(*c);
        stop_running(slot);
        release(std::move(c));
        return r;
      }
    } catch (const pqxx::broken_connection&) {
      stop_running(slot);
      healthy_ = false;
      drop(std::move(c));  // and the idle ones: the next acquire opens fresh connections
      throw;
    } catch (...) {
      stop_running(slot);
      release(std::move(c));
      throw;
    }
  }

  DatabaseOptions options_;
  std::string conninfo_;
  Metrics& metrics_;
  asio::thread_pool pool_;
  std::mutex mu_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  std::vector<Running> running_;  // by slot; fd -1 = free
  std::atomic<bool> healthy_{false};
  std::atomic<bool> stalled_{false};
  std::atomic<std::int64_t> down_until_ms_{0};  // steady clock; connects refused before it
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread watchdog_;
};

}  // namespace multiend::server
