#include "client/app/online.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

namespace multiend::client {
namespace {

// A named coroutine, not a lambda: a lambda's captures die with the temporary lambda object.
asio::awaitable<void> session(C2sConnection& conn, const ConnectOptions& options, Client& client,
                              const std::function<asio::awaitable<void>(Client&)>& body) {
  co_await conn.connect(options);
  co_await body(client);
}

}  // namespace

void run_online(Device& device, const ConnectOptions& options, ClientOptions client_options,
                const std::function<asio::awaitable<void>(Client&)>& body) {
  asio::io_context ioc;
  C2sConnection conn(ioc.get_executor());
  Client client(conn, device, std::move(client_options));
  std::exception_ptr failure;
  asio::co_spawn(ioc, session(conn, options, client, body), [&](std::exception_ptr e) {
    failure = e;
    conn.close();
  });
  ioc.run();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace multiend::client
