#include "client/cli/commands.hpp"

#include <unistd.h>

#include <cctype>
#include <fstream>
#include <iostream>
#include <iterator>
#include <set>

#include "client/app/errors.hpp"
#include "client/cli/online.hpp"
#include "client/cli/output.hpp"
#include "client/cli/steps.hpp"

namespace multiend::client::cli {

std::unique_ptr<Opened> open_state(const Common& c) {
  auto o = std::make_unique<Opened>();
  o->device = Device::open(c.state, o->rng, unix_now());
  o->settings = settings_of(o->device->store());
  if (c.password_file) o->settings.password_file = *c.password_file;
  return o;
}

void print_message(const HistoryEntry& e) { emit(message_json(e)); }

asio::awaitable<void> start(Client& client) {
  if (!co_await client.register_and_maintain())
    std::cerr << "multiend: warning: this device is no longer in the account's device list (removed)\n";
  co_await client.flush_outbox([](const HistoryEntry& e) {
    emit({{"type", "sent"}, {"id", e.stanza_id}, {"to", e.to}, {"resent", true}});
  });
}

void cmd_init(const Common& c, const InitArgs& a) {
  auto jid = Jid::parse(a.jid);
  if (!jid || jid->local().empty() || !jid->is_bare())
    throw ClientError(ErrorKind::usage, "--jid must be a bare JID like alice@example.org");
  ConnectionSettings s;
  s.jid = jid->bare_string();
  s.server = a.server;
  s.component = a.component.empty() ? "archive." + jid->domain() : a.component;
  s.ca_file = a.ca_file;
  s.insecure = a.insecure;
  s.pep = !a.no_pep;
  s.password_file = std::filesystem::absolute(a.password_file).string();
  crypto::SodiumRng rng;
  auto device = Device::create(c.state, s.jid, rng, unix_now());
  try {
    save_settings(device->store(), s);
    if (!a.label.empty()) device->store().settings().set(setting::label, a.label);
    run_online(*device, s, std::chrono::seconds(c.timeout_seconds), [](Client& client) -> asio::awaitable<void> {
      co_await client.register_and_maintain();
    });
  } catch (...) {
    // A device that never reached the component is no device: leave nothing behind.
    const std::string path = device->store().path();
    device.reset();
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
    throw;
  }
  emit({{"type", "device"},
        {"jid", device->jid()},
        {"device", device->device_id()},
        {"fingerprint", device->manager().fingerprint()},
        {"component", s.component}});
}

nlohmann::json sent_json(const std::vector<std::string>& to, const SendReport& report) {
  nlohmann::json devices = nlohmann::json::array(), skipped = nlohmann::json::array();
  for (const auto& a : report.devices) {
    auto j = address_json(a);
    j["protocol"] = "omemo2";
    j["via"] = "archive";
    devices.push_back(j);
  }
  for (const auto& a : report.pep_omemo2_devices) {
    auto j = address_json(a);
    j["protocol"] = "omemo2";
    j["via"] = "pep";
    devices.push_back(j);
  }
  for (const auto& a : report.pep_devices) {
    auto j = address_json(a);
    j["protocol"] = "oldmemo";
    j["via"] = "pep";
    devices.push_back(j);
  }
  for (const auto& [a, why] : report.skipped) {
    auto j = address_json(a);
    j["reason"] = why;
    skipped.push_back(j);
  }
  std::vector<std::string> recipients;
  for (const auto& t : to) recipients.push_back(user_bare_jid(t));
  return {{"type", "sent"}, {"id", report.stanza_id}, {"to", recipients}, {"devices", devices}, {"skipped", skipped},
          {"resent", report.resent}};
}

void cmd_send(const Common& c, const SendArgs& a) {
  const auto& to = a.to;
  if (a.body && a.body_file) throw ClientError(ErrorKind::usage, "give --body or --body-file, not both");
  if (a.lines) {
    if (a.body || a.body_file) throw ClientError(ErrorKind::usage, "--lines reads stdin: no --body or --body-file");
    cmd_send_lines(c, a);
    return;
  }
  std::string body;
  if (a.body) {
    body = *a.body;
  } else {
    std::ifstream file;
    if (a.body_file) {
      file.open(*a.body_file, std::ios::binary);
      if (!file) throw ClientError(ErrorKind::usage, "cannot read the body file '" + *a.body_file + "'");
    }
    std::istream& from = a.body_file ? static_cast<std::istream&>(file) : std::cin;
    std::string in(kMaxBody + 1, '\0');
    from.read(in.data(), static_cast<std::streamsize>(in.size()));
    in.resize(static_cast<std::size_t>(from.gcount()));
    body = std::move(in);
    if (!body.empty() && body.back() == '\n') body.pop_back();
  }
  if (body.size() > kMaxBody) throw ClientError(ErrorKind::usage, "the message is longer than 64 KiB");
  if (body.empty()) throw ClientError(ErrorKind::usage, "empty message (give --body, --body-file or text on stdin)");
  auto o = open_state(c);
  SendReport report;
  run_online(*o->device, o->settings, std::chrono::seconds(c.timeout_seconds),
             [&](Client& client) -> asio::awaitable<void> {
               co_await start(client);
               // Read what arrived first: a pending key exchange from a recipient is then
               // answered in its session instead of crossing it with a new one.
               co_await client.catch_up({}, {});
               co_await client.catch_up_server({});
               report = co_await client.send(to, body, {});
             });
  emit(sent_json(to, report));
}

void cmd_sync(const Common& c) {
  auto o = open_state(c);
  const bool bar = isatty(STDERR_FILENO);
  CatchUpReport report;
  std::size_t from_server = 0;
  run_online(*o->device, o->settings, std::chrono::seconds(c.timeout_seconds),
             [&](Client& client) -> asio::awaitable<void> {
               co_await start(client);
               report = co_await client.catch_up(print_message, [bar](std::size_t n) {
                 if (bar) std::cerr << "\rmultiend: " << n << " archived messages read" << std::flush;
               });
               from_server = co_await client.catch_up_server(print_message);
             });
  if (bar && report.fetched) std::cerr << '\n';
  emit({{"type", "synced"}, {"fetched", report.fetched}, {"new", report.stored}, {"from_server", from_server}});
}

void cmd_listen(const Common& c, std::optional<double> seconds, std::optional<std::size_t> count) {
  auto o = open_state(c);
  const auto until = seconds ? std::chrono::steady_clock::now() +
                                   std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                       std::chrono::duration<double>(*seconds))
                             : std::chrono::steady_clock::time_point::max();
  run_online(*o->device, o->settings, std::chrono::seconds(c.timeout_seconds),
             [&](Client& client) -> asio::awaitable<void> {
               co_await start(client);
               co_await client.listen(until, count, print_message, [](const std::string& jid) {
                 emit({{"type", "listening"}, {"jid", jid}});
               });
             });
}

void cmd_history(const Common& c, const std::optional<std::string>& with, std::optional<std::size_t> limit) {
  auto o = open_state(c);
  std::optional<std::string> w;
  if (with) w = user_bare_jid(*with);
  for (const auto& e : o->device->store().history().list(w, limit)) print_message(e);
}

void cmd_devices(const Common& c, const std::optional<std::string>& of) {
  auto o = open_state(c);
  Device& device = *o->device;
  const std::string jid = of ? user_bare_jid(*of) : device.jid();
  std::set<std::uint32_t> in_archive, in_pep, in_pep2;
  std::optional<std::string> pep_refused;
  std::vector<std::string> pep_unreadable;
  run_online(device, o->settings, std::chrono::seconds(c.timeout_seconds), [&](Client& client) -> asio::awaitable<void> {
    // Both places a device can be: the archive's list (OMEMO 2) and the user's PEP (legacy).
    Client::PepDevices pep = co_await client.legacy_devices(jid);
    pep_refused = pep.refused;
    pep_unreadable = pep.unreadable;
    in_pep.insert(pep.ids.begin(), pep.ids.end());
    in_pep2.insert(pep.omemo2_ids.begin(), pep.omemo2_ids.end());
    std::optional<omemo::DeviceList> list;
    try {
      list = co_await client.fetch_device_list(jid);
    } catch (const ClientError& e) {
      // no archive for that domain: fine when its PEP has devices
      if (e.kind() != ErrorKind::refused || !client.pep_enabled() || (in_pep.empty() && in_pep2.empty())) throw;
      co_return;
    }
    for (const auto& d : list->devices) in_archive.insert(d.id);
    auto identities = co_await client.fetch_identities(jid);
    auto tx = device.store().begin();
    for (const auto& [id, ik] : identities) {
      if (jid == device.jid() && id == device.device_id()) continue;
      auto recorded = device.store().trust().record_device_identity(jid, id, ik);
      if (!recorded)
        std::cerr << "multiend: warning: device " << id << " of " << jid
                  << " presents another identity key than before; keeping the old one\n";
    }
    tx.commit();
  });
  const auto devices = device.store().trust().list_devices(jid);
  bool own_listed = false;
  for (const auto& d : devices) {
    const bool own = jid == device.jid() && d.device == device.device_id();
    own_listed = own_listed || own;
    const bool archive = in_archive.count(d.device) > 0, pep2 = in_pep2.count(d.device) > 0,
               pep = in_pep.count(d.device) > 0;
    nlohmann::json j{{"type", "device"}, {"jid", jid}, {"device", d.device}, {"active", d.listed || pep || pep2},
                     {"own", own}};
    // one device on several lists is one device, reached the first way: archive, OMEMO 2, legacy
    j["protocol"] = archive || pep2 || !pep ? "omemo2" : "oldmemo";
    j["via"] = archive || (!pep2 && !pep) ? "archive" : "pep";
    // The Curve25519 form of the identity: what Conversations shows for legacy, XEP-0384 for OMEMO 2.
    j["fingerprint"] = own ? device.manager().fingerprint() : d.fingerprint;
    j["trust"] = own ? "own" : d.trust ? std::string(to_string(*d.trust)) : "unknown";
    if (d.label) j["label"] = *d.label;
    emit(j);
  }
  if (pep_refused)
    emit({{"type", "skipped"}, {"jid", jid}, {"reason", "device list in PEP: " + *pep_refused}});
  for (const auto& which : pep_unreadable)
    emit({{"type", "skipped"},
          {"jid", jid},
          {"reason", which + " device list in PEP: not readable to us (never created, or open to contacts only)"}});
  if (jid == device.jid()) {
    if (!own_listed)
      emit({{"type", "device"}, {"jid", jid}, {"device", device.device_id()}, {"active", false}, {"own", true},
            {"fingerprint", device.manager().fingerprint()}, {"trust", "own"}});
  }
}

void cmd_fingerprint(const Common& c) {
  auto o = open_state(c);
  nlohmann::json j{{"type", "fingerprint"},
                   {"jid", o->device->jid()},
                   {"device", o->device->device_id()},
                   {"fingerprint", o->device->manager().fingerprint()}};
  if (auto label = o->device->store().settings().get(setting::label)) j["label"] = *label;
  emit(j);
}

namespace {

// "a1b2c3d4 …" as printed, or without spaces, any case.
std::string normalise_fingerprint(const std::string& in) {
  std::string hex;
  for (char ch : in) {
    if (ch == ' ' || ch == ':' || ch == '-') continue;
    if (!std::isxdigit(static_cast<unsigned char>(ch)))
      throw ClientError(ErrorKind::usage, "--fingerprint must be hex, as 'multiend devices' prints it");
    hex += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  return hex;
}

}  // namespace

void cmd_trust(const Common& c, const TrustArgs& a, bool trust) {
  if (trust && !a.fingerprint && !a.blindly)
    throw ClientError(ErrorKind::usage,
                      "give --fingerprint HEX (compared out of band, as 'multiend devices' prints it), or --blindly");
  if (trust && a.fingerprint && a.blindly) throw ClientError(ErrorKind::usage, "give --fingerprint or --blindly, not both");
  auto o = open_state(c);
  Device& device = *o->device;
  const std::string jid = user_bare_jid(a.jid);
  const std::uint32_t device_id = a.device;
  if (jid == device.jid() && device_id == device.device_id())
    throw ClientError(ErrorKind::usage, "that is this device");
  auto key = device.store().trust().identity_of(jid, device_id);
  if (!key) {
    // Never seen its key: read it from the component (no prekey is claimed for that). It is
    // pinned only below, once it matched the fingerprint given.
    run_online(device, o->settings, std::chrono::seconds(c.timeout_seconds), [&](Client& client) -> asio::awaitable<void> {
      auto ids = co_await client.fetch_identities(jid);
      auto it = ids.find(device_id);
      if (it != ids.end()) key = it->second;
    });
  }
  if (!key) throw ClientError(ErrorKind::refused, "device " + std::to_string(device_id) + " of " + jid + " is unknown");
  const std::string fingerprint = omemo::SessionManager::fingerprint_of(*key);
  if (trust && a.fingerprint) {
    const std::string want = normalise_fingerprint(*a.fingerprint), have = normalise_fingerprint(fingerprint);
    if (!crypto::ct_equal(crypto::ByteView(reinterpret_cast<const std::uint8_t*>(want.data()), want.size()),
                          crypto::ByteView(reinterpret_cast<const std::uint8_t*>(have.data()), have.size())))
      throw ClientError(ErrorKind::refused, "the fingerprint does not match device " + std::to_string(device_id) + " of " +
                                                jid + " (its key is " + fingerprint + "); not trusted");
  }
  {
    auto tx = device.store().begin();
    if (!device.store().trust().record_device_identity(jid, device_id, *key))
      throw ClientError(ErrorKind::refused, "device " + std::to_string(device_id) + " of " + jid +
                                                " presents another identity key than the one pinned; not changed");
    if (!device.store().trust().set_trust(jid, device_id, trust ? Trust::verified : Trust::distrusted))
      throw ClientError(ErrorKind::refused, "device " + std::to_string(device_id) + " of " + jid + " is unknown");
    tx.commit();
  }
  emit({{"type", "trust"},
        {"jid", jid},
        {"device", device_id},
        {"trust", trust ? "verified" : "distrusted"},
        {"fingerprint", fingerprint}});
}

void cmd_reset_session(const Common& c, const std::string& jid_arg, std::uint32_t device_id) {
  auto o = open_state(c);
  const std::string jid = user_bare_jid(jid_arg);
  std::string fingerprint;
  run_online(*o->device, o->settings, std::chrono::seconds(c.timeout_seconds),
             [&](Client& client) -> asio::awaitable<void> {
               co_await start(client);
               fingerprint = co_await client.reset_session(jid, device_id);
             });
  emit({{"type", "reset"}, {"jid", jid}, {"device", device_id}, {"fingerprint", fingerprint}});
}

void cmd_remove_device(const Common& c, std::uint32_t device_id) {
  auto o = open_state(c);
  bool removed = false;
  run_online(*o->device, o->settings, std::chrono::seconds(c.timeout_seconds),
             [&](Client& client) -> asio::awaitable<void> { removed = co_await client.remove_device(device_id); });
  if (!removed)
    throw ClientError(ErrorKind::refused, "device " + std::to_string(device_id) + " is not in the account's device list");
  emit({{"type", "removed"}, {"jid", o->device->jid()}, {"device", device_id}});
}

}  // namespace multiend::client::cli
