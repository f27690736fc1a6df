// Session manager rules: fan-out to several devices, kex until confirmed, prekey use and
// refill, signed prekey rotation with one previous key, history sync, heartbeats, repair.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "tests/support/devices.hpp"

using namespace multiend;
using namespace multiend::omemo;
using test::make_device;

TEST_CASE("one message for several devices, the sender's own other device included") {
  auto a1 = make_device("alice@example.org", 11, 1);
  auto a2 = make_device("alice@example.org", 12, 2);
  auto b1 = make_device("bob@example.org", 21, 3);
  auto b2 = make_device("bob@example.org", 22, 4);
  auto m = a1->send("to everyone", {a2.get(), b1.get(), b2.get(), a1.get()});
  CHECK(m.key_count() == 3);  // never encrypted for the sending device itself
  CHECK(m.groups.size() == 2);
  for (auto* d : {a2.get(), b1.get(), b2.get()}) CHECK(d->receive_text(m, *a1) == "to everyone");
  CHECK(a1->receive(m, *a1).error() == Errc::not_for_this_device);
}

TEST_CASE("the initiator sends the key exchange until the peer answers") {
  auto a = make_device("alice@example.org", 11, 1);
  auto b = make_device("bob@example.org", 21, 2);
  auto m1 = a->send("one", {b.get()});
  auto m2 = a->send("two", {b.get()});
  CHECK(m1.groups[0].keys[0].kex);
  CHECK(m2.groups[0].keys[0].kex);
  auto d1 = b->receive(m1, *a);
  REQUIRE(d1.has_value());
  CHECK(d1->send_empty_reply);
  CHECK(d1->prekey_used);
  // The repeated key exchange re-uses the passive session (the prekey is already gone).
  CHECK(b->receive_text(m2, *a) == "two");
  CHECK(b->mgr.visible_prekey_count() == 99);
  CHECK(b->mgr.refill_prekeys() == 1);
  CHECK(b->mgr.visible_prekey_count() == 100);
  CHECK(a->receive_text(b->send_empty(*a), *b) == "<empty>");
  auto m3 = a->send("three", {b.get()});
  CHECK_FALSE(m3.groups[0].keys[0].kex);
  CHECK(b->receive_text(m3, *a) == "three");
}

TEST_CASE("both devices initiate at once: no message is lost, the sessions converge") {
  auto a = make_device("alice@example.org", 11, 1);
  auto b = make_device("bob@example.org", 21, 2);
  auto from_a = a->send("a first", {b.get()});  // both build active sessions from bundles
  auto from_b = b->send("b first", {a.get()});
  CHECK(b->receive_text(from_a, *a) == "a first");  // b: passive session replaces its active one
  CHECK(a->receive_text(from_b, *b) == "b first");  // a: the same, the other way round
  // Each now sends in the session built from the other's key exchange, which pairs with the
  // other side's *old* active session: the previous session decrypts it.
  for (int i = 0; i < 3; ++i) {
    CHECK(b->receive_text(a->send("a " + std::to_string(i), {b.get()}), *a) == "a " + std::to_string(i));
    CHECK(a->receive_text(b->send("b " + std::to_string(i), {a.get()}), *b) == "b " + std::to_string(i));
  }
  // A replay is still refused by both sessions.
  auto m = a->send("once", {b.get()});
  CHECK(b->receive_text(m, *a) == "once");
  CHECK(b->receive(m, *a).error() == Errc::duplicate_message);
}

TEST_CASE("prekey ids are never reused") {
  auto a = make_device("alice@example.org", 11, 1);
  auto bundle = a->mgr.bundle();
  std::uint32_t max_id = 0;
  for (auto& pk : bundle.prekeys) max_id = std::max(max_id, pk.id);
  CHECK(bundle.prekeys.size() == 100);
  a->store.remove_prekey(bundle.prekeys[0].id);
  a->mgr.refill_prekeys();
  auto after = a->mgr.bundle();
  CHECK(after.prekeys.back().id == max_id + 1);
}

TEST_CASE("key exchange with an unknown prekey or signed prekey fails cleanly") {
  auto a = make_device("alice@example.org", 11, 1);
  auto b = make_device("bob@example.org", 21, 2);
  auto m = a->send("x", {b.get()});
  auto bundle = b->mgr.bundle();
  for (auto& pk : bundle.prekeys) b->store.remove_prekey(pk.id);
  CHECK(b->receive(m, *a).error() == Errc::unknown_prekey);
  CHECK(b->store.session_count() == 0);
}

TEST_CASE("signed prekey rotation keeps exactly one previous key") {
  auto a = make_device("alice@example.org", 11, 1);
  auto b = make_device("bob@example.org", 21, 2);
  auto old_bundle = b->mgr.bundle();
  CHECK_FALSE(b->mgr.rotate_signed_prekey_if_due(3600));
  CHECK(b->mgr.rotate_signed_prekey_if_due(8 * 24 * 3600));
  CHECK(b->mgr.bundle().spk_id == old_bundle.spk_id + 1);
  // A key exchange built on the previous signed prekey still works...
  Recipient r{b->address(), &old_bundle};
  auto m = a->mgr.encrypt(crypto::ByteView(), std::span(&r, 1)).message;
  auto a2 = make_device("carol@example.org", 31, 5);
  Recipient r2{b->address(), &old_bundle};
  auto m2 = a2->mgr.encrypt(crypto::ByteView(), std::span(&r2, 1)).message;
  CHECK((b->receive(m, *a)).has_value());
  // ...but not after a second rotation.
  b->mgr.rotate_signed_prekey(20 * 24 * 3600);
  CHECK(b->receive(m2, *a2).error() == Errc::unknown_signed_prekey);
}

TEST_CASE("history sync: prekeys hidden until the end, one empty reply per session") {
  auto a = make_device("alice@example.org", 11, 1);
  auto b = make_device("bob@example.org", 21, 2);
  auto m1 = a->send("one", {b.get()});
  auto m2 = a->send("two", {b.get()});
  b->mgr.begin_history_sync();
  auto d = b->receive(m1, *a);
  REQUIRE(d.has_value());
  CHECK_FALSE(d->send_empty_reply);
  CHECK(b->store.hidden_prekeys().size() == 1);
  CHECK(b->mgr.visible_prekey_count() == 99);
  CHECK(b->receive_text(m2, *a) == "two");
  auto replies = b->mgr.end_history_sync();
  REQUIRE(replies.size() == 1);
  CHECK(replies[0] == a->address());
  CHECK(b->store.hidden_prekeys().empty());
}

TEST_CASE("heartbeat requested once the receiving chain reaches n >= 53") {
  auto a = make_device("alice@example.org", 11, 1);
  auto b = make_device("bob@example.org", 21, 2);
  REQUIRE((b->receive(a->send("start", {b.get()}), *a)).has_value());
  REQUIRE((a->receive(b->send_empty(*a), *b)).has_value());
  for (int n = 0; n < 60; ++n) {
    auto d = b->receive(a->send("m", {b.get()}), *a);
    REQUIRE(d.has_value());
    CHECK(d->send_empty_reply == (n >= 53));
  }
  // The heartbeat makes the sender step its ratchet: its counter starts again at 0.
  REQUIRE((a->receive(b->send_empty(*a), *b)).has_value());
  auto d = b->receive(a->send("m", {b.get()}), *a);
  CHECK_FALSE(d->send_empty_reply);
}

TEST_CASE("session repair: one new key exchange, not a loop, and only without any session") {
  auto a = make_device("alice@example.org", 11, 1);
  auto b = make_device("bob@example.org", 21, 2);
  REQUIRE((b->receive(a->send("start", {b.get()}), *a)).has_value());
  REQUIRE((a->receive(b->send_empty(*a), *b)).has_value());
  // While a session exists, no repair: a failure anyone can cause must not cost it.
  CHECK(b->mgr.request_repair(a->address(), 900).error() == Errc::bad_request);
  b->store.remove_session(a->address());  // b lost its session (e.g. restored an old backup)
  auto lost = a->send("lost", {b.get()});
  CHECK(b->receive(lost, *a).error() == Errc::no_session);
  REQUIRE(b->mgr.request_repair(a->address(), 1000));
  CHECK(b->mgr.request_repair(a->address(), 1100).error() == Errc::repair_throttled);
  // b's next message is a fresh key exchange that a accepts, replacing its session.
  auto fresh = b->send_empty(*a);
  CHECK(fresh.groups[0].keys[0].kex);
  auto d = a->receive(fresh, *b);
  REQUIRE(d.has_value());
  CHECK(d->key_exchange);
  CHECK(b->receive_text(a->send("after repair", {b.get()}), *a) == "after repair");
  // A successful decrypt clears the throttle (the session must be gone again to ask).
  b->store.remove_session(a->address());
  CHECK(b->mgr.request_repair(a->address(), 1200));
}

TEST_CASE("fingerprint is the Curve25519 form in 8 groups of 8 hex digits") {
  auto a = make_device("alice@example.org", 11, 1);
  auto fp = a->mgr.fingerprint();
  CHECK(fp.size() == 64 + 7);
  CHECK(std::count(fp.begin(), fp.end(), ' ') == 7);
}
