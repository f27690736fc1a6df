// Double Ratchet properties through two in-memory devices: out-of-order delivery across
// ratchet steps, the skipped-key limits, replays, state restore, keys gone after use.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <random>

#include "omemo.pb.h"
#include "tests/support/devices.hpp"

using namespace multiend;
using namespace multiend::omemo;
using test::handshake;
using test::make_device;


TEST_CASE("out-of-order delivery across several ratchet steps") {
  auto a = make_device("alice@example.org", 11, 1);
  auto b = make_device("bob@example.org", 22, 2);
  handshake(*a, *b);
  std::mt19937 shuffle(42);
  for (int round = 0; round < 4; ++round) {
    test::Device& from = round % 2 ? *b : *a;
    test::Device& to = round % 2 ? *a : *b;
    std::vector<std::pair<std::string, EncryptedMessage>> batch;
    for (int i = 0; i < 7; ++i) {
      std::string text = "r" + std::to_string(round) + "m" + std::to_string(i);
      batch.emplace_back(text, from.send(text, {&to}));
    }
    std::shuffle(batch.begin(), batch.end(), shuffle);
    for (auto& [text, m] : batch) CHECK(to.receive_text(m, from) == text);
  }
}

TEST_CASE("messages from a previous chain arrive after the ratchet stepped") {
  auto a = make_device("alice@example.org", 11, 1);
  auto b = make_device("bob@example.org", 22, 2);
  handshake(*a, *b);
  auto late1 = a->send("late1", {b.get()});
  auto late2 = a->send("late2", {b.get()});
  auto now = a->send("now", {b.get()});
  CHECK(b->receive_text(now, *a) == "now");
  CHECK(a->receive_text(b->send("reply", {a.get()}), *b) == "reply");
  auto next = a->send("next chain", {b.get()});
  CHECK(b->receive_text(next, *a) == "next chain");
  CHECK(b->receive_text(late2, *a) == "late2");
  CHECK(b->receive_text(late1, *a) == "late1");
  // Keys are gone after use: the same ciphertext cannot be decrypted twice.
  CHECK(b->receive(late1, *a).error() == Errc::duplicate_message);
  CHECK(b->receive(now, *a).error() == Errc::duplicate_message);
}

TEST_CASE("skipped keys: 1000 in one message are stored; a longer gap is an authenticated jump") {
  auto a = make_device("alice@example.org", 11, 1);
  auto b = make_device("bob@example.org", 22, 2);
  auto c = make_device("bob@example.org", 33, 3);  // a second receiver on a separate session
  handshake(*a, *b);
  handshake(*a, *c);
  std::vector<EncryptedMessage> to_b, to_c;
  for (int i = 0; i < 5000; ++i) {
    to_b.push_back(a->send("m" + std::to_string(i), {b.get()}));
    if (i < 1002) to_c.push_back(a->send("m" + std::to_string(i), {c.get()}));
  }
  // Index 1000 skips exactly 1000 keys (0..999).
  CHECK(b->receive_text(to_b[1000], *a) == "m1000");
  CHECK(b->store.load_session(a->address())->ratchet.skipped_key_count() == 1000);
  CHECK(b->receive_text(to_b[3], *a) == "m3");
  // Index 1001 skips 1001 (an archive that expired messages): accepted, the oldest key dropped.
  CHECK(c->receive_text(to_c[1001], *a) == "m1001");
  CHECK(c->store.load_session(a->address())->ratchet.skipped_key_count() == 1000);
  CHECK(c->receive(to_c[0], *a).error() == Errc::duplicate_message);
  CHECK(c->receive_text(to_c[1], *a) == "m1");
  // A jump of ~4000: only the newest 1000 keys of the gap are kept.
  CHECK(b->receive_text(to_b[4999], *a) == "m4999");
  auto session = b->store.load_session(a->address());
  CHECK(session->ratchet.skipped_key_count() == 1000);
  CHECK(b->receive_text(to_b[4500], *a) == "m4500");
  CHECK(b->receive(to_b[3000], *a).error() == Errc::duplicate_message);
}

namespace {

// A copy of `m` whose (only) key claims counter `n` in the same chain. Its MAC was computed
// for the real counter, so it can never authenticate.
EncryptedMessage with_counter(const EncryptedMessage& m, std::uint32_t n) {
  EncryptedMessage out = m;
  auto& key = out.groups.at(0).keys.at(0);
  REQUIRE_FALSE(key.kex);
  wire::OMEMOAuthenticatedMessage auth;
  REQUIRE(auth.ParseFromArray(key.data.data(), static_cast<int>(key.data.size())));
  wire::OMEMOMessage msg;
  REQUIRE(msg.ParseFromString(auth.message()));
  msg.set_n(n);
  msg.SerializeToString(auth.mutable_message());
  key.data.resize(auth.ByteSizeLong());
  auth.SerializeToArray(key.data.data(), static_cast<int>(key.data.size()));
  return out;
}

}  // namespace

TEST_CASE("the jump is bounded: a forged huge counter costs at most kMaxChainJump steps and changes nothing") {
  auto a = make_device("alice@example.org", 11, 1);
  auto b = make_device("bob@example.org", 22, 2);
  handshake(*a, *b);
  auto real = a->send("real", {b.get()});
  CHECK(b->receive(with_counter(real, kMaxChainJump + 1), *a).error() == Errc::too_many_skipped);
  CHECK(b->receive(with_counter(real, 0xFFFFFFFFu), *a).error() == Errc::too_many_skipped);
  // Within the bound the chain is derived, but the MAC fails and nothing is kept.
  CHECK(b->receive(with_counter(real, kMaxChainJump), *a).error() == Errc::mac_mismatch);
  CHECK(b->store.load_session(a->address())->ratchet.skipped_key_count() == 0);
  CHECK(b->receive_text(real, *a) == "real");
}

TEST_CASE("the skipped-key store keeps at most 1000 keys, dropping the oldest") {
  auto a = make_device("alice@example.org", 11, 1);
  auto b = make_device("bob@example.org", 22, 2);
  handshake(*a, *b);
  std::vector<EncryptedMessage> first;
  for (int i = 0; i < 600; ++i) first.push_back(a->send("x", {b.get()}));
  CHECK(b->receive_text(first.back(), *a) == "x");  // 599 skipped
  std::vector<EncryptedMessage> second;
  for (int i = 0; i < 600; ++i) second.push_back(a->send("y", {b.get()}));
  CHECK(b->receive_text(second.back(), *a) == "y");  // 599 more: 1198 > 1000
  CHECK(b->store.load_session(a->address())->ratchet.skipped_key_count() == 1000);
  // The oldest ones were dropped: their messages can no longer be read.
  CHECK_FALSE((b->receive(first[0], *a)).has_value());
  CHECK(b->receive_text(first[300], *a) == "x");
}

TEST_CASE("a replayed message is rejected as a duplicate") {
  auto a = make_device("alice@example.org", 11, 1);
  auto b = make_device("bob@example.org", 22, 2);
  handshake(*a, *b);
  auto m = a->send("once", {b.get()});
  CHECK(b->receive_text(m, *a) == "once");
  CHECK(b->receive(m, *a).error() == Errc::duplicate_message);
}

TEST_CASE("tampering is detected and leaves the session usable") {
  auto a = make_device("alice@example.org", 11, 1);
  auto b = make_device("bob@example.org", 22, 2);
  handshake(*a, *b);
  auto m = a->send("intact", {b.get()});
  for (std::size_t pos = 0; pos < m.groups[0].keys[0].data.size(); ++pos) {
    auto bad = m;
    bad.groups[0].keys[0].data[pos] ^= 0x04;
    CHECK_FALSE((b->receive(bad, *a)).has_value());
  }
  for (std::size_t pos = 0; pos < m.payload->size(); pos += 7) {
    auto bad = m;
    (*bad.payload)[pos] ^= 0x80;
    CHECK(b->receive(bad, *a).error() == Errc::mac_mismatch);
  }
  CHECK(b->receive_text(m, *a) == "intact");
}

TEST_CASE("state serialised and restored mid-conversation") {
  auto a = make_device("alice@example.org", 11, 1);
  auto b = make_device("bob@example.org", 22, 2);
  handshake(*a, *b);
  auto pending = a->send("sent before the save", {b.get()});
  auto skipped_one = a->send("skipped", {b.get()});
  auto after = a->send("after", {b.get()});
  CHECK(b->receive_text(after, *a) == "after");

  auto saved = b->store.serialize();
  auto restored = MemoryStore::deserialize(saved.view());
  REQUIRE(restored.has_value());
  crypto::DeterministicRng rng(99);
  auto b2 = SessionManager::open(restored->stores(), rng, "bob@example.org", 0, 0);
  CHECK(b2.device_id() == 22);
  CHECK(b2.identity_key() == b->mgr.identity_key());
  CHECK(b2.decrypt(skipped_one, "alice@example.org").value().plaintext.has_value());
  CHECK(b2.decrypt(pending, "alice@example.org").value().plaintext.has_value());
  CHECK(b2.decrypt(after, "alice@example.org").error() == Errc::duplicate_message);
  CHECK(MemoryStore::deserialize(crypto::ByteView(saved.data(), saved.size() / 2)).error() == Errc::bad_protobuf);
}
