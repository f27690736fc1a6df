// Fuzzes every protobuf decode path fed by untrusted bytes: the OMEMO wire messages of both
// generations (as a receiver reads them) and the stored device state (as a client reads its own database).
#include <cstddef>
#include <cstdint>

#include "omemo.pb.h"
#include "protocol/oldmemo/legacy_wire.hpp"
#include "protocol/oldmemo/signal_message.hpp"
#include "protocol/omemo/double_ratchet.hpp"
#include "protocol/omemo/memory_store.hpp"
#include "protocol/omemo/protobuf_parse.hpp"
#include "protocol/omemo/session.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace multiend;
  const crypto::ByteView bytes(data, size);
  (void)omemo::peek_header(bytes);
  if (auto kex = omemo::unwrap_key_exchange(bytes)) (void)omemo::peek_header(kex->authenticated_message);
  (void)omemo::peek_header(bytes, oldmemo::legacy_wire());
  if (auto pk = oldmemo::unwrap_prekey_message(bytes)) (void)oldmemo::parse_signal_message(pk->signal_message);
  multiend::wire::OMEMOMessage m;
  (void)omemo::parse_protobuf(m, bytes);
  if (auto store = omemo::MemoryStore::deserialize(bytes)) (void)store->serialize();
  return 0;
}
