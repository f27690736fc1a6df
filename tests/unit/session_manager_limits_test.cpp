// The session manager against a hostile sender or server: unauthenticated key exchanges,
// replays of consumed key exchanges, stripped payloads, and the bounds on what one peer
// account can make a device keep. Each case fails without its defence.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "protocol/omemo/session.hpp"
#include "tests/support/devices.hpp"

using namespace multiend;
using namespace multiend::omemo;
using test::handshake;
using test::make_device;

namespace {

// What anyone who can inject a stanza can send "from" `from` to `to`: a key exchange naming a
// prekey that does not exist, around a ratchet message copied from elsewhere.
EncryptedMessage bogus_key_exchange(const test::Device& from, const test::Device& to, std::uint32_t pk_id,
                                    const EncryptedMessage& seen) {
  KeyExchangeHeader h;
  h.pk_id = pk_id;
  h.spk_id = 1;
  h.ik = from.mgr.identity_key();
  h.ek.bytes.fill(0x42);
  EncryptedMessage m;
  m.sid = from.mgr.device_id();
  m.groups.push_back({to.mgr.jid(), {{to.mgr.device_id(), true, wrap_key_exchange(h, seen.groups[0].keys[0].data)}}});
  return m;
}

}  // namespace

TEST_CASE("a key exchange with an unknown prekey never costs the working session") {
  auto a = make_device("alice@example.org", 11, 1);
  auto b = make_device("bob@example.org", 21, 2);
  handshake(*a, *b);
  auto seen = b->send("seen on the wire", {a.get()});
  CHECK(a->receive_text(seen, *b) == "seen on the wire");
  auto forged = bogus_key_exchange(*b, *a, 0x7ffffffe, seen);
  CHECK(a->receive(forged, *b).error() == Errc::unknown_prekey);
  CHECK(a->mgr.request_repair(b->address(), 1000).error() == Errc::bad_request);
  auto session = a->store.load_session(b->address());
  REQUIRE(session);
  CHECK(session->peer_ik == b->mgr.identity_key());
  // Both directions keep working in the same session: no new key exchange.
  auto m = a->send("still the same session", {b.get()});
  CHECK_FALSE(m.groups[0].keys[0].kex);
  CHECK(b->receive_text(m, *a) == "still the same session");
  CHECK(a->receive_text(b->send("and back", {a.get()}), *b) == "and back");
}

TEST_CASE("a replayed key exchange is refused after the session moved on, even while prekeys are hidden") {
  auto a = make_device("alice@example.org", 11, 1);
  auto b = make_device("bob@example.org", 21, 2);
  b->mgr.begin_history_sync();  // catch-up: used prekeys are hidden, not deleted
  auto first = a->send("first", {b.get()});
  CHECK(b->receive_text(first, *a) == "first");
  // alice starts over (reset-session): a newer key exchange replaces bob's session.
  a->mgr.reset_session(b->address());
  auto second = a->send("second", {b.get()});
  CHECK(b->receive_text(second, *a) == "second");
  // The replay of the first key exchange is refused, and the current session stays.
  CHECK(b->receive(first, *a).error() == Errc::duplicate_message);
  auto current = b->store.load_session(a->address());
  REQUIRE(current);
  auto second_kex = unwrap_key_exchange(second.groups[0].keys[0].data);
  REQUIRE(second_kex.has_value());
  CHECK(current->kex == second_kex->header);
  CHECK(b->receive_text(a->send("third", {b.get()}), *a) == "third");
  // Two sessions later the first key exchange is not even the previous one: still refused.
  a->mgr.reset_session(b->address());
  CHECK(b->receive_text(a->send("fourth", {b.get()}), *a) == "fourth");
  CHECK(b->receive(first, *a).error() == Errc::duplicate_message);
  CHECK(b->receive(second, *a).error() == Errc::duplicate_message);
  CHECK(b->receive_text(a->send("fifth", {b.get()}), *a) == "fifth");
  b->mgr.end_history_sync();
}

TEST_CASE("a late message of the replaced session still decrypts there, without demoting the current one") {
  auto a = make_device("alice@example.org", 11, 1);
  auto b = make_device("bob@example.org", 21, 2);
  auto first = a->send("first", {b.get()});
  auto late = a->send("late, same key exchange", {b.get()});  // unconfirmed: also wrapped in kex 1
  CHECK(b->receive_text(first, *a) == "first");
  a->mgr.reset_session(b->address());
  CHECK(b->receive_text(a->send("new session", {b.get()}), *a) == "new session");
  CHECK(b->receive_text(late, *a) == "late, same key exchange");
  CHECK(b->receive(late, *a).error() == Errc::duplicate_message);
  CHECK(b->receive_text(a->send("current still works", {b.get()}), *a) == "current still works");
}

TEST_CASE("an empty message must carry 32 zero bytes: a stripped <payload> is tampering") {
  auto a = make_device("alice@example.org", 11, 1);
  auto b = make_device("bob@example.org", 21, 2);
  handshake(*a, *b);
  auto real = a->send("do not lose me", {b.get()});
  auto stripped = real;
  stripped.payload.reset();
  CHECK(b->receive(stripped, *a).error() == Errc::mac_mismatch);
  CHECK(b->receive_text(real, *a) == "do not lose me");  // nothing was consumed
  CHECK(b->receive_text(a->send_empty(*b), *a) == "<empty>");
}

TEST_CASE("sessions per peer account are capped") {
  auto b = make_device("bob@example.org", 21, 2);
  b->mgr.begin_history_sync();  // keep prekeys cheap: hidden, not refilled
  std::uint64_t seed = 100;
  for (std::size_t i = 0; i < kMaxSessionsPerPeerAccount; ++i) {
    auto m = make_device("mallory@example.org", static_cast<std::uint32_t>(1000 + i), seed++);
    REQUIRE(b->receive_text(m->send("hi", {b.get()}), *m) == "hi");
    if (b->mgr.visible_prekey_count() < 10) b->mgr.refill_prekeys();
  }
  CHECK(b->store.session_count() == kMaxSessionsPerPeerAccount);
  auto one_more = make_device("mallory@example.org", 5000, seed++);
  CHECK(b->receive(one_more->send("hi", {b.get()}), *one_more).error() == Errc::limit_exceeded);
  // Another account is not affected.
  auto carol = make_device("carol@example.org", 31, seed++);
  CHECK(b->receive_text(carol->send("hi", {b.get()}), *carol) == "hi");
  // Sending is capped the same way: no new session for the account beyond the cap.
  Bundle bundle = one_more->mgr.bundle();
  Recipient r{one_more->address(), &bundle};
  auto out = b->mgr.encrypt(std::nullopt, std::span(&r, 1));
  REQUIRE(out.failed.size() == 1);
  CHECK(out.failed[0].second == Errc::limit_exceeded);
  b->mgr.end_history_sync();
}

TEST_CASE("skipped keys per peer account are capped across its devices") {
  auto b = make_device("bob@example.org", 21, 2);
  std::vector<std::unique_ptr<test::Device>> ms;
  for (std::uint32_t i = 0; i < 6; ++i) {
    ms.push_back(make_device("mallory@example.org", 100 + i, 10 + i));
    handshake(*ms.back(), *b);
  }
  // Each device skips 1000 keys: 6000 > the account's 4000.
  for (auto& m : ms) {
    EncryptedMessage last;
    for (int i = 0; i < 1001; ++i) last = m->send("x", {b.get()});
    CHECK(b->receive_text(last, *m) == "x");
  }
  std::size_t total = 0;
  for (auto& m : ms) total += b->store.load_session(m->address())->ratchet.skipped_key_count();
  CHECK(total <= kMaxSkippedPerPeerAccount);
  CHECK(total >= kMaxSkippedPerPeerAccount - kMaxSkippedPerSession);
  // Another account still gets its own budget.
  auto carol = make_device("carol@example.org", 31, 99);
  handshake(*carol, *b);
  EncryptedMessage last;
  for (int i = 0; i < 501; ++i) last = carol->send("y", {b.get()});
  CHECK(b->receive_text(last, *carol) == "y");
  CHECK(b->store.load_session(carol->address())->ratchet.skipped_key_count() == 500);
}

TEST_CASE("hostile accounts filling the total of skipped keys leave every other session its floor") {
  auto b = make_device("bob@example.org", 21, 2);
  std::uint64_t seed = 1000;
  // 13 accounts x 4 devices x ~1000 skipped keys > kMaxSkippedTotal.
  for (int acct = 0; acct < 13; ++acct) {
    for (std::uint32_t dev = 0; dev < 4; ++dev) {
      auto m = make_device("evil" + std::to_string(acct) + "@example.org", 100 + dev, seed++);
      handshake(*m, *b);
      EncryptedMessage last;
      for (int i = 0; i < 1001; ++i) last = m->send("x", {b.get()});
      REQUIRE(b->receive_text(last, *m) == "x");
    }
    if (b->mgr.visible_prekey_count() < 20) b->mgr.refill_prekeys();
  }
  auto carol = make_device("carol@example.org", 31, 99);
  handshake(*carol, *b);
  std::vector<EncryptedMessage> from_carol;
  for (int i = 0; i < 501; ++i) from_carol.push_back(carol->send("m" + std::to_string(i), {b.get()}));
  CHECK(b->receive_text(from_carol.back(), *carol) == "m500");
  CHECK(b->store.load_session(carol->address())->ratchet.skipped_key_count() == kMinSkippedPerSession);
  CHECK(b->receive_text(from_carol[450], *carol) == "m450");  // among the newest: still readable
}

TEST_CASE("forged messages far ahead are tried a few times per device, then refused at once") {
  auto a = make_device("alice@example.org", 11, 1);
  auto b = make_device("bob@example.org", 21, 2);
  handshake(*a, *b);
  std::vector<EncryptedMessage> real;
  for (int i = 0; i < 1500; ++i) real.push_back(a->send("r" + std::to_string(i), {b.get()}));
  auto forged = real.back();
  forged.groups[0].keys[0].data.back() ^= 0x01;  // the MAC no longer matches
  for (int i = 0; i < kMaxFailedJumpsPerPeer; ++i) CHECK(b->receive(forged, *a).error() == Errc::mac_mismatch);
  CHECK(b->receive(forged, *a).error() == Errc::too_many_skipped);      // not even tried
  CHECK(b->receive(real.back(), *a).error() == Errc::too_many_skipped);  // nor a real long jump now
  CHECK(b->receive_text(real[10], *a) == "r10");                         // short steps still work,
  CHECK(b->receive_text(real.back(), *a) == "r1499");                    // and a success resets the count
}
