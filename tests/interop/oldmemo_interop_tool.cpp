// One legacy OMEMO device in memory, driven by JSON lines on stdin, so a python3-oldmemo script
// can exchange bundles and messages with our implementation: the same protocol as
// omemo_interop_tool (ops bundle, encrypt, encrypt_empty, decrypt, quit). It composes the
// protocol/oldmemo session steps the way a session manager does (sessions built just in time,
// the key exchange sent until answered, a repeated key exchange reusing its session, the used
// prekey deleted, nothing committed unless the whole message decrypted).
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "protocol/crypto/base64.hpp"
#include "protocol/oldmemo/encrypted_element.hpp"
#include "protocol/oldmemo/payload.hpp"
#include "protocol/oldmemo/session.hpp"
#include "protocol/oldmemo/x3dh.hpp"
#include "protocol/xml/serializer.hpp"
#include "protocol/xml/stream_parser.hpp"
#include "tests/interop/json_tool.hpp"

using namespace multiend;
using interop::fail;
using interop::json;

namespace {

constexpr std::uint32_t kSpkId = 1;

class Tool {
 public:
  Tool(std::string jid, std::uint32_t device, std::optional<std::uint64_t> seed)
      : jid_(std::move(jid)), device_(device) {
    if (seed) rng_ = std::make_unique<crypto::DeterministicRng>(*seed);
    else rng_ = std::make_unique<crypto::SodiumRng>();
    identity_ = crypto::IdentityKeyPair::generate(*rng_);
    spk_ = crypto::X25519KeyPair::generate(*rng_);
    for (std::uint32_t id = 1; id <= 100; ++id) prekeys_.emplace(id, crypto::X25519KeyPair::generate(*rng_));
  }

  json handle(const json& req) {
    const std::string op = req.at("op").get<std::string>();
    if (op == "bundle") return {{"ok", true}, {"jid", jid_}, {"device", device_}, {"bundle", xml::serialize(bundle_xml())}};
    if (op == "encrypt" || op == "encrypt_empty") return encrypt(req, op == "encrypt_empty");
    if (op == "decrypt") return decrypt(req);
    return {{"ok", false}, {"error", "bad_request"}, {"message", "unknown op " + op}};
  }

 private:
  using Address = omemo::DeviceAddress;

  xml::Element bundle_xml() const {
    oldmemo::LegacyBundle b{kSpkId, spk_.pub, oldmemo::sign_signed_prekey(identity_, spk_.pub),
                            oldmemo::curve_identity(identity_), {}};
    for (const auto& [id, kp] : prekeys_) b.prekeys.push_back({id, kp.pub});
    return oldmemo::bundle_to_xml(b);
  }

  json encrypt(const json& req, bool empty) {
    oldmemo::SealedPayload sealed;
    if (empty) {
      sealed = oldmemo::empty_message(*rng_);
    } else {
      auto raw = crypto::base64_decode(req.at("plaintext").get<std::string>());
      if (!raw) return fail(raw.error());
      sealed = oldmemo::seal_payload(*raw, *rng_);
    }
    oldmemo::LegacyEncrypted out;
    out.sid = device_;
    out.iv = sealed.iv;
    if (!empty) out.payload = sealed.ciphertext;
    for (const auto& r : req.at("recipients")) {
      auto jid = Jid::parse(r.at("jid").get<std::string>());
      if (!jid) return fail(jid.error());
      Address a{jid->bare_string(), r.at("device").get<std::uint32_t>()};
      auto it = sessions_.find(a);
      if (it == sessions_.end()) {
        if (!r.contains("bundle") || r["bundle"].is_null()) return fail(Errc::no_session);
        auto elem = xml::parse_element(r["bundle"].get<std::string>());
        if (!elem) return fail(elem.error());
        auto b = oldmemo::bundle_from_xml(*elem);
        if (!b) return fail(b.error());
        auto started = oldmemo::start_session(identity_, a, *b, *rng_);
        if (!started) return fail(started.error());
        it = sessions_.emplace(a, std::move(started->session)).first;
      }
      auto key = oldmemo::encrypt_key(it->second, sealed.key_material.view());
      if (!key) return fail(key.error());
      out.keys.push_back(std::move(*key));
    }
    return {{"ok", true}, {"encrypted", xml::serialize(oldmemo::encrypted_to_xml(out))}};
  }

  json decrypt(const json& req) {
    auto sender = Jid::parse(req.at("sender").get<std::string>());
    if (!sender) return fail(sender.error());
    auto elem = xml::parse_element(req.at("encrypted").get<std::string>());
    if (!elem) return fail(elem.error());
    auto msg = oldmemo::encrypted_from_xml(*elem);
    if (!msg) return fail(msg.error());
    const auto mine = msg->keys_for(device_);
    if (mine.empty()) return fail(Errc::not_for_this_device);
    const Address from{sender->bare_string(), msg->sid};
    boost::system::error_code last = Errc::not_for_this_device;
    for (const oldmemo::LegacyKey* key : mine) {  // Conversations tries each key for our id
      std::optional<oldmemo::LegacySession> work;
      std::optional<std::uint32_t> used_prekey;
      crypto::ByteView signal_message = key->data;
      std::optional<oldmemo::ParsedPreKeyMessage> kex;
      auto existing = sessions_.find(from);
      if (key->prekey) {
        auto parsed = oldmemo::unwrap_prekey_message(key->data);
        if (!parsed) { last = parsed.error(); continue; }
        kex = std::move(*parsed);
        signal_message = kex->signal_message;
        if (existing != sessions_.end() && oldmemo::built_from(existing->second, kex->header)) {
          work = existing->second.clone();
        } else {
          if (kex->header.signed_pre_key_id != kSpkId) { last = Errc::unknown_signed_prekey; continue; }
          auto opk = prekeys_.find(kex->header.pre_key_id);
          if (opk == prekeys_.end()) { last = Errc::unknown_prekey; continue; }
          auto s = oldmemo::accept_session(identity_, from, kex->header, spk_, opk->second);
          if (!s) { last = s.error(); continue; }
          work = std::move(*s);
          used_prekey = opk->first;
        }
      } else {
        if (existing == sessions_.end()) { last = Errc::no_session; continue; }
        work = existing->second.clone();
      }
      auto km = oldmemo::decrypt_key(*work, signal_message, *rng_);
      if (!km) { last = km.error(); continue; }
      std::optional<crypto::SecretBytes> plaintext;
      if (msg->payload) {
        auto pt = oldmemo::open_payload(km->view(), msg->iv, *msg->payload);
        if (!pt) { last = pt.error(); continue; }
        plaintext = std::move(*pt);
      }
      // commit only now
      sessions_.insert_or_assign(from, std::move(*work));
      if (used_prekey) {
        prekeys_.erase(*used_prekey);
        prekeys_.emplace(next_prekey_id_++, crypto::X25519KeyPair::generate(*rng_));
      }
      json out = {{"ok", true}, {"sender_device", msg->sid}, {"kex", key->prekey}};
      out["plaintext"] = plaintext ? json(crypto::base64_encode(plaintext->view())) : json(nullptr);
      return out;
    }
    return fail(last);
  }

  std::string jid_;
  std::uint32_t device_;
  std::unique_ptr<crypto::Rng> rng_;
  crypto::IdentityKeyPair identity_;
  crypto::X25519KeyPair spk_;
  std::map<std::uint32_t, crypto::X25519KeyPair> prekeys_;
  std::uint32_t next_prekey_id_ = 101;
  std::map<Address, oldmemo::LegacySession> sessions_;
};

}  // namespace

int main(int argc, char** argv) {
  auto args = interop::parse_tool_args(argc, argv, "oldmemo_interop_tool");
  if (!args) return 2;
  Tool tool(args->jid, args->device, args->seed);
  return interop::run_json_lines([&tool](const json& req) { return tool.handle(req); });
}
