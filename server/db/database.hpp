// Blocking libpqxx work, run on a thread pool of its own and awaited from the component's
// single-threaded io_context, so a slow query never stalls the XMPP stream. Owns the
// connection pool; knows nothing of XMPP. Broken connections are dropped and reopened on the
// next use; every statement runs under statement_timeout so no wait is unbounded.
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

class Database {
 public:
  Database(std::string url, int pool_size, std::int64_t statement_timeout_seconds, Metrics& metrics);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs f(pqxx::connection&) on a database thread; resumes the caller on its own executor.
  // Exceptions from f (pqxx::broken_connection, sql errors) are rethrown in the caller.
  template <class F, class R = std::invoke_result_t<F, pqxx::connection&>>
  asio::awaitable<R> run(F f) {
    static_assert(std::is_default_constructible_v<R> || std::is_void_v<R>);
    using Sig = typename detail::RunSignature<R>::type;
    return asio::async_initiate<decltype(asio::use_awaitable), Sig>(
        [this, f = std::move(f)](auto handler) mutable {
          asio::post(pool_, [this, f = std::move(f), handler = std::move(handler)]() mutable {
            std::exception_ptr ep;
            if constexpr (std::is_void_v<R>) {
              try {
                with_connection(f);
              } catch (...) {
                ep = std::current_exception();
              }
              auto ex = asio::get_associated_executor(handler);
              asio::dispatch(ex, [handler = std::move(handler), ep]() mutable { handler(ep); });
            } else {
              R r{};
              try {
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

  // True when the last use of a connection succeeded (for /readyz).
  bool healthy() const noexcept { return healthy_.load(); }
  // Blocking check from any thread: opens or reuses a connection and runs SELECT 1.
  bool ping();
  void stop();

 private:
  std::unique_ptr<pqxx::connection> acquire();
  void release(std::unique_ptr<pqxx::connection> c);

  template <class F>
  auto with_connection(F& f) {
    std::unique_ptr<pqxx::connection> c = acquire();
    try {
      if constexpr (std::is_void_v<std::invoke_result_t<F, pqxx::connection&>>) {
        f(*c);
        release(std::move(c));
      } else {
        auto r = f(*c);
        release(std::move(c));
        return r;
      }
    } catch (const pqxx::broken_connection&) {
      healthy_ = false;
      metrics_.db_pool_in_use.Decrement();
      throw;  // c is dropped: the next acquire opens a fresh one
    } catch (...) {
      release(std::move(c));
      throw;
    }
  }

  std::string url_;
  std::int64_t statement_timeout_seconds_;
  Metrics& metrics_;
  asio::thread_pool pool_;
  std::mutex mu_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  std::atomic<bool> healthy_{false};
};

}  // namespace multiend::server
