// One OMEMO 2 device in memory, driven by JSON lines on stdin (one response line per request),
// so a python3-twomemo script can exchange bundles and messages with our implementation.
// Protocol: ops bundle, encrypt, encrypt_empty, decrypt, save, load, quit (tests/interop/twomemo_peer.py, CppDevice).
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "protocol/crypto/base64.hpp"
#include "protocol/jid.hpp"
#include "protocol/omemo/encrypted_element.hpp"
#include "protocol/omemo/memory_store.hpp"
#include "protocol/omemo/session_manager.hpp"
#include "protocol/xml/serializer.hpp"
#include "protocol/xml/stream_parser.hpp"
#include "tests/interop/json_tool.hpp"

using namespace multiend;
using json = nlohmann::json;

namespace {

using interop::fail;

class Tool {
 public:
  // Seeded runs are reproducible; without a seed the OS CSPRNG is used, so a device restored
  // with "load" never replays random bytes the saving process already used.
  Tool(std::string jid, std::uint32_t device, std::optional<std::uint64_t> seed)
      : jid_(std::move(jid)), store_(std::make_unique<omemo::MemoryStore>()) {
    if (seed) rng_ = std::make_unique<crypto::DeterministicRng>(*seed);
    else rng_ = std::make_unique<crypto::SodiumRng>();
    open(device);
  }

  json handle(const json& req) {
    const std::string op = req.at("op").get<std::string>();
    if (op == "bundle") {
      return {{"ok", true}, {"jid", jid_}, {"device", mgr_->device_id()},
              {"bundle", xml::serialize(omemo::bundle_to_xml(mgr_->bundle()))}};
    }
    if (op == "encrypt" || op == "encrypt_empty") return encrypt(req, op == "encrypt_empty");
    if (op == "decrypt") return decrypt(req);
    if (op == "save") {
      auto bytes = store_->serialize();
      return {{"ok", true}, {"state", crypto::base64_encode(bytes.view())}};
    }
    if (op == "load") {
      auto raw = crypto::base64_decode(req.at("state").get<std::string>(), 64 << 20);
      if (!raw) return fail(raw.error());
      auto restored = omemo::MemoryStore::deserialize(*raw);
      if (!restored) return fail(restored.error());
      const std::uint32_t device = mgr_->device_id();
      mgr_.reset();
      store_ = std::make_unique<omemo::MemoryStore>(std::move(*restored));
      open(device);
      return {{"ok", true}};
    }
    return {{"ok", false}, {"error", "bad_request"}, {"message", "unknown op " + op}};
  }

 private:
  void open(std::uint32_t device) {
    mgr_.emplace(omemo::SessionManager::open(store_->stores(), *rng_, jid_, device, 0));
  }

  json encrypt(const json& req, bool empty) {
    std::vector<omemo::Bundle> bundles;
    std::vector<omemo::Recipient> recipients;
    const auto& rs = req.at("recipients");
    bundles.reserve(rs.size());
    for (const auto& r : rs) {
      auto jid = Jid::parse(r.at("jid").get<std::string>());
      if (!jid) return fail(jid.error());
      omemo::Recipient rec{{jid->bare_string(), r.at("device").get<std::uint32_t>()}, nullptr};
      if (r.contains("bundle") && !r["bundle"].is_null()) {
        auto elem = xml::parse_element(r["bundle"].get<std::string>());
        if (!elem) return fail(elem.error());
        auto b = omemo::bundle_from_xml(*elem);
        if (!b) return fail(b.error());
        bundles.push_back(std::move(*b));
        rec.bundle = &bundles.back();
      }
      recipients.push_back(std::move(rec));
    }
    std::optional<crypto::Bytes> pt;
    if (!empty) {
      auto raw = crypto::base64_decode(req.at("plaintext").get<std::string>());
      if (!raw) return fail(raw.error());
      pt = std::move(*raw);
    }
    auto out = mgr_->encrypt(pt ? std::optional<crypto::ByteView>(*pt) : std::nullopt, recipients);
    if (!out.failed.empty()) return fail(out.failed.front().second);
    return {{"ok", true}, {"encrypted", xml::serialize(omemo::encrypted_to_xml(out.message))}};
  }

  json decrypt(const json& req) {
    auto sender = Jid::parse(req.at("sender").get<std::string>());
    if (!sender) return fail(sender.error());
    auto elem = xml::parse_element(req.at("encrypted").get<std::string>());
    if (!elem) return fail(elem.error());
    auto msg = omemo::encrypted_from_xml(*elem);
    if (!msg) return fail(msg.error());
    auto d = mgr_->decrypt(*msg, sender->bare_string());
    if (!d) return fail(d.error());
    json out = {{"ok", true}, {"sender_device", d->sender.device}, {"kex", d->key_exchange}};
    out["plaintext"] = d->plaintext ? json(crypto::base64_encode(d->plaintext->view())) : json(nullptr);
    if (d->prekey_used) mgr_->refill_prekeys();
    return out;
  }

  std::string jid_;
  std::unique_ptr<crypto::Rng> rng_;
  std::unique_ptr<omemo::MemoryStore> store_;
  std::optional<omemo::SessionManager> mgr_;
};

}  // namespace

int main(int argc, char** argv) {
  auto args = interop::parse_tool_args(argc, argv, "omemo_interop_tool");
  if (!args) return 2;
  Tool tool(args->jid, args->device, args->seed);
  return interop::run_json_lines([&tool](const json& req) { return tool.handle(req); });
}
