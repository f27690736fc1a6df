// Running a device online for one task: connect, run a coroutine with a Client, close the
// stream politely, on a private io_context. What a command-line program needs; long-running
// programs drive C2sConnection and Client on their own executor instead.
#pragma once

#include <functional>

#include "client/app/client.hpp"

namespace multiend::client {

// Connects with `options`, runs `body`, closes; rethrows what failed (C2sError, ClientError…).
void run_online(Device& device, const ConnectOptions& options, ClientOptions client_options,
                const std::function<asio::awaitable<void>(Client&)>& body);

}  // namespace multiend::client
