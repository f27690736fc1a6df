// OMEMO 2 protocol costs: session setup (both roles), encrypting one message for 1/10/100
// devices with existing sessions, and decrypting one message (XML parse included, as in
// twomemo's figures). bench/compare_twomemo.sh runs this beside python3-twomemo.
#include <benchmark/benchmark.h>

#include "protocol/omemo/encrypted_element.hpp"
#include "protocol/xml/serializer.hpp"
#include "protocol/xml/stream_parser.hpp"
#include "tests/support/devices.hpp"

using namespace multiend;
using namespace multiend::omemo;

namespace {

const std::string kText(200, 'x');  // a typical SCE envelope is a few hundred bytes
crypto::ByteView text() { return {reinterpret_cast<const std::uint8_t*>(kText.data()), kText.size()}; }

// Active setup: X3DH from a bundle plus the first encryption (twomemo's build_session_active).
void BM_SessionSetupActive(benchmark::State& state) {
  auto a = test::make_device("alice@example.org", 1, 1);
  auto b = test::make_device("bob@example.org", 2, 2);
  Bundle bundle = b->mgr.bundle();
  Recipient r{b->address(), &bundle};
  for (auto _ : state) {
    a->store.remove_session(b->address());
    auto out = a->mgr.encrypt(text(), std::span(&r, 1));
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_SessionSetupActive);

// Passive setup: X3DH from a key exchange plus the first decryption.
void BM_SessionSetupPassive(benchmark::State& state) {
  auto a = test::make_device("alice@example.org", 1, 1);
  auto b = test::make_device("bob@example.org", 2, 2);
  auto saved = b->store.serialize();
  Bundle bundle = b->mgr.bundle();
  Recipient r{b->address(), &bundle};
  std::vector<EncryptedMessage> kexes;
  for (int i = 0; i < 64; ++i) {
    a->store.remove_session(b->address());
    kexes.push_back(a->mgr.encrypt(text(), std::span(&r, 1)).message);
  }
  std::size_t i = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto store = MemoryStore::deserialize(saved.view()).value();
    crypto::DeterministicRng rng(i);
    auto mgr = SessionManager::open(store.stores(), rng, "bob@example.org", 0, 0);
    state.ResumeTiming();
    auto d = mgr.decrypt(kexes[i++ % kexes.size()], "alice@example.org");
    if (!d) state.SkipWithError("decrypt failed");
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_SessionSetupPassive);

// One message for N devices with existing, confirmed sessions, serialised to XML.
void BM_Encrypt(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  auto a = test::make_device("alice@example.org", 1, 1);
  std::vector<std::unique_ptr<test::Device>> peers;
  std::vector<Bundle> bundles;
  std::vector<Recipient> rs;
  for (int i = 0; i < n; ++i) peers.push_back(test::make_device("bob@example.org", 100 + i, 100 + i));
  for (auto& p : peers) bundles.push_back(p->mgr.bundle());
  for (int i = 0; i < n; ++i) rs.push_back({peers[i]->address(), &bundles[i]});
  auto first = a->mgr.encrypt(text(), rs);
  for (auto& p : peers) {  // confirm every session so no kex wrapper is sent
    (void)p->mgr.decrypt(first.message, "alice@example.org");
    (void)a->mgr.decrypt(p->send_empty(*a), "bob@example.org");
  }
  for (auto _ : state) {
    auto out = a->mgr.encrypt(text(), rs);
    std::string xml = xml::serialize(encrypted_to_xml(out.message));
    benchmark::DoNotOptimize(xml);
  }
}
BENCHMARK(BM_Encrypt)->Arg(1)->Arg(10)->Arg(100);

// Decrypt one message on an existing session: XML parse, key, payload.
void BM_Decrypt(benchmark::State& state) {
  auto a = test::make_device("alice@example.org", 1, 1);
  auto b = test::make_device("bob@example.org", 2, 2);
  (void)b->receive(a->send("hi", {b.get()}), *a);
  (void)a->receive(b->send_empty(*a), *b);
  std::vector<std::string> xmls;
  for (int i = 0; i < 20000; ++i) {
    auto out = a->mgr.encrypt(text(), std::vector<Recipient>{{b->address(), nullptr}});
    xmls.push_back(xml::serialize(encrypted_to_xml(out.message)));
  }
  std::size_t i = 0;
  for (auto _ : state) {
    if (i == xmls.size()) state.SkipWithError("ran out of messages");
    auto e = xml::parse_element(xmls[i++]);
    auto m = encrypted_from_xml(*e);
    auto d = b->mgr.decrypt(*m, "alice@example.org");
    if (!d) state.SkipWithError("decrypt failed");
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_Decrypt)->Iterations(20000);

}  // namespace

BENCHMARK_MAIN();
