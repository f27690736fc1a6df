// Fuzzes the receive path of a device with a live session: input starting with '<' is an
// <encrypted> element (XML parse, element parse, decrypt); anything else is the raw content of
// a <key> (odd first byte: as a key exchange). Each input runs on a fresh copy of the state.
//
// MULTIEND_WRITE_SEEDS=DIR writes valid messages as seed inputs (the committed corpus).
#include <cstdlib>
#include <fstream>
#include <string>

#include "protocol/omemo/encrypted_element.hpp"
#include "protocol/xml/serializer.hpp"
#include "protocol/xml/stream_parser.hpp"
#include "tests/support/devices.hpp"

using namespace multiend;
using namespace multiend::omemo;

namespace {

struct Fixture {
  crypto::SecretBytes bob_state;
  EncryptedMessage template_message;

  Fixture() {
    auto alice = test::make_device("alice@example.org", 11, 1);
    auto bob = test::make_device("bob@example.org", 22, 2);
    auto first = alice->send("hello bob", {bob.get()});
    (void)bob->receive(first, *alice);
    (void)alice->receive(bob->send_empty(*alice), *bob);
    bob_state = bob->store.serialize();
    std::vector<std::string> seeds;
    seeds.push_back(xml::serialize(encrypted_to_xml(first)));
    for (int i = 0; i < 6; ++i) {
      auto m = alice->send("message " + std::to_string(i), {bob.get()});
      seeds.push_back(xml::serialize(encrypted_to_xml(m)));
      seeds.push_back(std::string(m.groups[0].keys[0].data.begin(), m.groups[0].keys[0].data.end()));
      template_message = m;
    }
    if (const char* dir = std::getenv("MULTIEND_WRITE_SEEDS")) {
      for (std::size_t i = 0; i < seeds.size(); ++i)
        std::ofstream(std::string(dir) + "/seed" + std::to_string(i), std::ios::binary) << seeds[i];
    }
  }
};

std::size_t accepted = 0;

}  // namespace

// Inputs that decrypted (the replay checks the valid seeds still do).
extern "C" std::size_t MultiendFuzzAccepted() { return accepted; }

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixture fx;
  auto store = MemoryStore::deserialize(fx.bob_state.view());
  if (!store) std::abort();
  crypto::DeterministicRng rng(5);
  auto bob = SessionManager::open(store->stores(), rng, "bob@example.org", 0, 0);
  if (size > 0 && data[0] == '<') {
    auto elem = xml::parse_element(std::string_view(reinterpret_cast<const char*>(data), size));
    if (!elem) return 0;
    auto msg = encrypted_from_xml(*elem);
    if (!msg) return 0;
    if (bob.decrypt(*msg, "alice@example.org")) ++accepted;
  } else {
    EncryptedMessage msg = fx.template_message;
    msg.groups[0].keys[0].kex = size > 0 && (data[0] & 1);
    msg.groups[0].keys[0].data.assign(data, data + size);
    if (bob.decrypt(msg, "alice@example.org")) ++accepted;
  }
  return 0;
}
