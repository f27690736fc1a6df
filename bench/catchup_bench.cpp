// Catch-up benchmark: how fast does a device read the archive it missed (MAM fetch, decrypt,
// store)? Drives the client library through a real XMPP server and the component.
//
//   catchup_bench setup   --dir D --server H:P --ca-file F --component C [--sender alice] [--receiver bob]
//   catchup_bench fill    --dir D … --messages N     (the sender sends N messages to the receiver)
//   catchup_bench catchup --dir D …                  (the receiver catches up; prints the rate)
//   catchup_bench sender-catchup --dir D …           (the sender reads answers to its key exchanges)
//
// Passwords are <user>pw (deploy/testbed). Split in steps so a script can add other devices
// (the twomemo peer) between setup and fill and time them on the same archive. One JSON line
// per step on stdout.
#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "client/app/online.hpp"

using namespace multiend;
using namespace multiend::client;

namespace {

struct Options {
  std::string step, dir, server, ca_file, component, domain = "localhost", sender = "alice", receiver = "bob";
  std::size_t messages = 10000;
};

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void online(Device& device, const Options& o, const std::string& user,
            const std::function<asio::awaitable<void>(Client&)>& body) {
  ConnectOptions co;
  co.jid = user + "@" + o.domain;
  co.password = password_from(user + "pw");
  co.host = o.server.substr(0, o.server.rfind(':'));
  co.port = static_cast<std::uint16_t>(std::stoi(o.server.substr(o.server.rfind(':') + 1)));
  co.ca_file = o.ca_file;
  co.resource = "bench-" + std::to_string(device.device_id());
  co.max_stanza_bytes = 2 * 1024 * 1024;
  ClientOptions copts;
  copts.component = o.component;
  copts.timeout = std::chrono::seconds(60);
  copts.clock = unix_now;
  run_online(device, co, std::move(copts), body);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Multiend catch-up benchmark"};
  app.add_option("step", o.step, "setup, fill or catchup")->required()->check(CLI::IsMember({"setup", "fill", "catchup", "sender-catchup"}));
  app.add_option("--dir", o.dir, "folder for the state files")->required();
  app.add_option("--server", o.server, "host:port of the XMPP server")->required();
  app.add_option("--ca-file", o.ca_file, "CA certificates")->required();
  app.add_option("--component", o.component, "the archive component")->required();
  app.add_option("--domain", o.domain, "the users' domain");
  app.add_option("--sender", o.sender);
  app.add_option("--receiver", o.receiver);
  app.add_option("--messages", o.messages, "how many messages fill sends");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);
  try {
    crypto::SodiumRng rng;
    const std::string sender_db = o.dir + "/sender.db", receiver_db = o.dir + "/receiver.db";
    if (o.step == "setup") {
      for (auto [path, user] : {std::pair{sender_db, o.sender}, std::pair{receiver_db, o.receiver}}) {
        auto d = Device::create(path, user + "@" + o.domain, rng, unix_now());
        online(*d, o, user, [](Client& c) -> asio::awaitable<void> { co_await c.register_and_maintain(); });
      }
      std::cout << nlohmann::json{{"step", "setup"}}.dump() << std::endl;
    } else if (o.step == "fill") {
      auto d = Device::open(sender_db, rng, unix_now());
      const std::vector<std::string> to(1, o.receiver + "@" + o.domain);  // not brace-built: GCC 12 coroutines
      const auto t0 = std::chrono::steady_clock::now();
      online(*d, o, o.sender, [&](Client& c) -> asio::awaitable<void> {
        for (std::size_t i = 0; i < o.messages; ++i)
          co_await c.send(to, "benchmark message " + std::to_string(i) + " with some ordinary text in it", {});
      });
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::cout << nlohmann::json{{"step", "fill"}, {"messages", o.messages}, {"seconds", s}}.dump() << std::endl;
    } else {
      const bool sender = o.step == "sender-catchup";
      auto d = Device::open(sender ? sender_db : receiver_db, rng, unix_now());
      CatchUpReport report;
      const auto t0 = std::chrono::steady_clock::now();
      online(*d, o, sender ? o.sender : o.receiver, [&](Client& c) -> asio::awaitable<void> {
        report = co_await c.catch_up({}, {});
      });
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::cout << nlohmann::json{{"step", "catchup"},
                                  {"implementation", "multiend"},
                                  {"fetched", report.fetched},
                                  {"stored", report.stored},
                                  {"seconds", s},
                                  {"messages_per_second", static_cast<double>(report.fetched) / s}}
                       .dump()
                << std::endl;
    }
  } catch (const std::exception& e) {
    std::cerr << "catchup_bench: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
