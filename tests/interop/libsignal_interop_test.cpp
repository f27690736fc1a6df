// Legacy OMEMO against the second referee, Debian's libsignal-protocol-c 2.3.3 (what Dino and
// Profanity build on), in one process: libsignal's own session builder and cipher on one side,
// protocol/oldmemo on the other. libsignal gets a crypto provider on OpenSSL/libsodium and
// in-memory stores here; everything else is the library's code.
//   * libsignal builds from our bundle (it verifies our SPK signature, sign bit included),
//     repeats its PreKeySignalMessage until answered; we accept, answer, and read on.
//   * libsignal's previous counter is count - 1: its last message of an old chain, arriving
//     after the new chain started, still opens here.
//   * we build from libsignal's bundle (its randomized XEdDSA signature) and libsignal reads
//     our key exchange, repeated, and what follows; tampering is refused on both sides.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <sodium.h>

extern "C" {
#include <key_helper.h>
#include <protocol.h>
#include <session_builder.h>
#include <session_cipher.h>
#include <session_pre_key.h>
#include <signal_protocol.h>
}

#include <map>
#include <string>
#include <vector>

#include "protocol/crypto/random.hpp"
#include "protocol/oldmemo/session.hpp"
#include "protocol/oldmemo/signal_message.hpp"
#include "protocol/oldmemo/x3dh.hpp"

using namespace multiend;
using crypto::Bytes;
using crypto::ByteView;

namespace {

// ---- crypto provider -------------------------------------------------------------------------

int random_bytes(uint8_t* data, size_t len, void*) {
  randombytes_buf(data, len);
  return 0;
}

int hmac_init(void** ctx, const uint8_t* key, size_t key_len, void*) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  EVP_MAC_CTX* c = EVP_MAC_CTX_new(mac);
  EVP_MAC_free(mac);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0), OSSL_PARAM_construct_end()};
  if (!c || EVP_MAC_init(c, key, key_len, params) != 1) return -1;
  *ctx = c;
  return 0;
}
int hmac_update(void* ctx, const uint8_t* data, size_t len, void*) {
  return EVP_MAC_update(static_cast<EVP_MAC_CTX*>(ctx), data, len) == 1 ? 0 : -1;
}
int hmac_final(void* ctx, signal_buffer** out, void*) {
  uint8_t md[32];
  size_t n = 0;
  if (EVP_MAC_final(static_cast<EVP_MAC_CTX*>(ctx), md, &n, sizeof md) != 1) return -1;
  *out = signal_buffer_create(md, n);
  return 0;
}
void hmac_cleanup(void* ctx, void*) { EVP_MAC_CTX_free(static_cast<EVP_MAC_CTX*>(ctx)); }

int sha512_init(void** ctx, void*) {
  EVP_MD_CTX* c = EVP_MD_CTX_new();
  if (!c || EVP_DigestInit_ex(c, EVP_sha512(), nullptr) != 1) return -1;
  *ctx = c;
  return 0;
}
int sha512_update(void* ctx, const uint8_t* data, size_t len, void*) {
  return EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx), data, len) == 1 ? 0 : -1;
}
int sha512_final(void* ctx, signal_buffer** out, void*) {
  uint8_t md[64];
  unsigned n = 0;
  auto* c = static_cast<EVP_MD_CTX*>(ctx);
  if (EVP_DigestFinal_ex(c, md, &n) != 1 || EVP_DigestInit_ex(c, EVP_sha512(), nullptr) != 1) return -1;
  *out = signal_buffer_create(md, n);
  return 0;
}
void sha512_cleanup(void* ctx, void*) { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx)); }

const EVP_CIPHER* aes(int cipher, size_t key_len) {
  if (cipher == SG_CIPHER_AES_CBC_PKCS5)
    return key_len == 16 ? EVP_aes_128_cbc() : key_len == 24 ? EVP_aes_192_cbc() : key_len == 32 ? EVP_aes_256_cbc() : nullptr;
  if (cipher == SG_CIPHER_AES_CTR_NOPADDING)
    return key_len == 16 ? EVP_aes_128_ctr() : key_len == 24 ? EVP_aes_192_ctr() : key_len == 32 ? EVP_aes_256_ctr() : nullptr;
  return nullptr;
}

int crypt(bool enc, signal_buffer** out, int cipher, const uint8_t* key, size_t key_len, const uint8_t* iv,
          const uint8_t* in, size_t in_len) {
  const EVP_CIPHER* c = aes(cipher, key_len);
  if (!c) return SG_ERR_UNKNOWN;
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  std::vector<uint8_t> buf(in_len + 32);
  int n1 = 0, n2 = 0;
  const bool ok = EVP_CipherInit_ex(ctx, c, nullptr, key, iv, enc ? 1 : 0) == 1 &&
                  EVP_CipherUpdate(ctx, buf.data(), &n1, in, static_cast<int>(in_len)) == 1 &&
                  EVP_CipherFinal_ex(ctx, buf.data() + n1, &n2) == 1;
  EVP_CIPHER_CTX_free(ctx);
  if (!ok) return SG_ERR_UNKNOWN;
  *out = signal_buffer_create(buf.data(), static_cast<size_t>(n1 + n2));
  return 0;
}
int encrypt_cb(signal_buffer** out, int cipher, const uint8_t* key, size_t key_len, const uint8_t* iv, size_t,
               const uint8_t* pt, size_t pt_len, void*) {
  return crypt(true, out, cipher, key, key_len, iv, pt, pt_len);
}
int decrypt_cb(signal_buffer** out, int cipher, const uint8_t* key, size_t key_len, const uint8_t* iv, size_t,
               const uint8_t* ct, size_t ct_len, void*) {
  return crypt(false, out, cipher, key, key_len, iv, ct, ct_len);
}

// ---- one libsignal device: context, in-memory stores, keys -------------------------------------

Bytes bytes_of(signal_buffer* b) {
  Bytes out(signal_buffer_data(b), signal_buffer_data(b) + signal_buffer_len(b));
  signal_buffer_free(b);
  return out;
}

Bytes public_key(const ec_public_key* k) {
  signal_buffer* b = nullptr;
  REQUIRE(ec_public_key_serialize(&b, k) == 0);
  return bytes_of(b);
}

struct LibsignalDevice {
  signal_context* ctx = nullptr;
  signal_protocol_store_context* store = nullptr;
  ratchet_identity_key_pair* identity = nullptr;
  uint32_t registration_id = 0;
  std::map<std::string, Bytes> sessions;  // by "name/device"
  std::map<uint32_t, Bytes> prekeys, signed_prekeys;

  static std::string key(const signal_protocol_address* a) {
    return std::string(a->name, a->name_len) + "/" + std::to_string(a->device_id);
  }
  static LibsignalDevice* self(void* ud) { return static_cast<LibsignalDevice*>(ud); }
  static int put(signal_buffer** out, const std::map<uint32_t, Bytes>& m, uint32_t id) {
    auto it = m.find(id);
    if (it == m.end()) return SG_ERR_INVALID_KEY_ID;
    *out = signal_buffer_create(it->second.data(), it->second.size());
    return SG_SUCCESS;
  }

  LibsignalDevice() {
    REQUIRE(signal_context_create(&ctx, this) == 0);
    signal_crypto_provider p{};
    p.random_func = random_bytes;
    p.hmac_sha256_init_func = hmac_init;
    p.hmac_sha256_update_func = hmac_update;
    p.hmac_sha256_final_func = hmac_final;
    p.hmac_sha256_cleanup_func = hmac_cleanup;
    p.sha512_digest_init_func = sha512_init;
    p.sha512_digest_update_func = sha512_update;
    p.sha512_digest_final_func = sha512_final;
    p.sha512_digest_cleanup_func = sha512_cleanup;
    p.encrypt_func = encrypt_cb;
    p.decrypt_func = decrypt_cb;
    REQUIRE(signal_context_set_crypto_provider(ctx, &p) == 0);
    REQUIRE(signal_protocol_store_context_create(&store, ctx) == 0);

    signal_protocol_session_store ss{};
    ss.load_session_func = [](signal_buffer** rec, signal_buffer** user, const signal_protocol_address* a, void* ud) {
      *user = nullptr;
      auto& m = self(ud)->sessions;
      auto it = m.find(key(a));
      if (it == m.end()) return 0;
      *rec = signal_buffer_create(it->second.data(), it->second.size());
      return 1;
    };
    ss.get_sub_device_sessions_func = [](signal_int_list** s, const char*, size_t, void*) {
      *s = signal_int_list_alloc();
      return 0;
    };
    ss.store_session_func = [](const signal_protocol_address* a, uint8_t* rec, size_t len, uint8_t*, size_t, void* ud) {
      self(ud)->sessions[key(a)] = Bytes(rec, rec + len);
      return 0;
    };
    ss.contains_session_func = [](const signal_protocol_address* a, void* ud) {
      return self(ud)->sessions.count(key(a)) ? 1 : 0;
    };
    ss.delete_session_func = [](const signal_protocol_address* a, void* ud) {
      return self(ud)->sessions.erase(key(a)) ? 1 : 0;
    };
    ss.delete_all_sessions_func = [](const char*, size_t, void*) { return 0; };
    ss.user_data = this;
    REQUIRE(signal_protocol_store_context_set_session_store(store, &ss) == 0);

    signal_protocol_pre_key_store ps{};
    ps.load_pre_key = [](signal_buffer** rec, uint32_t id, void* ud) { return put(rec, self(ud)->prekeys, id); };
    ps.store_pre_key = [](uint32_t id, uint8_t* rec, size_t len, void* ud) {
      self(ud)->prekeys[id] = Bytes(rec, rec + len);
      return 0;
    };
    ps.contains_pre_key = [](uint32_t id, void* ud) { return self(ud)->prekeys.count(id) ? 1 : 0; };
    ps.remove_pre_key = [](uint32_t id, void* ud) {
      self(ud)->prekeys.erase(id);
      return 0;
    };
    ps.user_data = this;
    REQUIRE(signal_protocol_store_context_set_pre_key_store(store, &ps) == 0);

    signal_protocol_signed_pre_key_store sps{};
    sps.load_signed_pre_key = [](signal_buffer** rec, uint32_t id, void* ud) { return put(rec, self(ud)->signed_prekeys, id); };
    sps.store_signed_pre_key = [](uint32_t id, uint8_t* rec, size_t len, void* ud) {
      self(ud)->signed_prekeys[id] = Bytes(rec, rec + len);
      return 0;
    };
    sps.contains_signed_pre_key = [](uint32_t id, void* ud) { return self(ud)->signed_prekeys.count(id) ? 1 : 0; };
    sps.remove_signed_pre_key = [](uint32_t id, void* ud) {
      self(ud)->signed_prekeys.erase(id);
      return 0;
    };
    sps.user_data = this;
    REQUIRE(signal_protocol_store_context_set_signed_pre_key_store(store, &sps) == 0);

    REQUIRE(signal_protocol_key_helper_generate_identity_key_pair(&identity, ctx) == 0);
    REQUIRE(signal_protocol_key_helper_generate_registration_id(&registration_id, 0, ctx) == 0);
    signal_protocol_identity_key_store is{};
    is.get_identity_key_pair = [](signal_buffer** pub, signal_buffer** priv, void* ud) {
      auto* d = self(ud);
      REQUIRE(ec_public_key_serialize(pub, ratchet_identity_key_pair_get_public(d->identity)) == 0);
      REQUIRE(ec_private_key_serialize(priv, ratchet_identity_key_pair_get_private(d->identity)) == 0);
      return 0;
    };
    is.get_local_registration_id = [](void* ud, uint32_t* id) {
      *id = self(ud)->registration_id;
      return 0;
    };
    is.save_identity = [](const signal_protocol_address*, uint8_t*, size_t, void*) { return 0; };
    is.is_trusted_identity = [](const signal_protocol_address*, uint8_t*, size_t, void*) { return 1; };
    is.user_data = this;
    REQUIRE(signal_protocol_store_context_set_identity_key_store(store, &is) == 0);
  }
  ~LibsignalDevice() {
    SIGNAL_UNREF(identity);
    signal_protocol_store_context_destroy(store);
    signal_context_destroy(ctx);
  }
  LibsignalDevice(const LibsignalDevice&) = delete;
  LibsignalDevice& operator=(const LibsignalDevice&) = delete;

  // Our legacy bundle of libsignal's keys: SPK 1 and one prekey (id 77).
  oldmemo::LegacyBundle make_bundle() {
    session_signed_pre_key* spk = nullptr;
    REQUIRE(signal_protocol_key_helper_generate_signed_pre_key(&spk, identity, 1, 0, ctx) == 0);
    REQUIRE(signal_protocol_signed_pre_key_store_key(store, spk) == 0);
    signal_protocol_key_helper_pre_key_list_node* head = nullptr;
    REQUIRE(signal_protocol_key_helper_generate_pre_keys(&head, 77, 1, ctx) == 0);
    session_pre_key* pk = signal_protocol_key_helper_key_list_element(head);
    REQUIRE(signal_protocol_pre_key_store_key(store, pk) == 0);
    oldmemo::LegacyBundle b;
    b.spk_id = 1;
    b.spk = *oldmemo::decode_key(public_key(ec_key_pair_get_public(session_signed_pre_key_get_key_pair(spk))));
    REQUIRE(session_signed_pre_key_get_signature_len(spk) == 64);
    b.spk_signature = crypto::Ed25519Signature::from(ByteView(session_signed_pre_key_get_signature(spk), 64));
    b.ik = *oldmemo::decode_key(public_key(ratchet_identity_key_pair_get_public(identity)));
    b.prekeys.push_back({77, *oldmemo::decode_key(public_key(ec_key_pair_get_public(session_pre_key_get_key_pair(pk))))});
    signal_protocol_key_helper_key_list_free(head);
    SIGNAL_UNREF(spk);
    return b;
  }

  ec_public_key* decode(const crypto::X25519Public& k) {
    ec_public_key* out = nullptr;
    const Bytes b = oldmemo::encode_key(k);
    REQUIRE(curve_decode_point(&out, b.data(), b.size(), ctx) == 0);
    return out;
  }

  // Builds a session from our bundle; false when libsignal refuses it (e.g. a bad signature).
  bool process_bundle(const signal_protocol_address& peer, const oldmemo::LegacyBundle& b) {
    ec_public_key *opk = decode(b.prekeys.at(0).key), *spk = decode(b.spk), *ik = decode(b.ik);
    session_pre_key_bundle* bundle = nullptr;
    REQUIRE(session_pre_key_bundle_create(&bundle, 0, peer.device_id, b.prekeys.at(0).id, opk, b.spk_id, spk,
                                          b.spk_signature.data(), 64, ik) == 0);
    session_builder* builder = nullptr;
    REQUIRE(session_builder_create(&builder, store, &peer, ctx) == 0);
    const int rc = session_builder_process_pre_key_bundle(builder, bundle);
    session_builder_free(builder);
    SIGNAL_UNREF(bundle);
    SIGNAL_UNREF(opk);
    SIGNAL_UNREF(spk);
    SIGNAL_UNREF(ik);
    return rc == 0;
  }

  struct Sent {
    bool prekey;
    Bytes bytes;
  };
  Sent encrypt(const signal_protocol_address& peer, ByteView plaintext) {
    session_cipher* cipher = nullptr;
    REQUIRE(session_cipher_create(&cipher, store, &peer, ctx) == 0);
    ciphertext_message* m = nullptr;
    REQUIRE(session_cipher_encrypt(cipher, plaintext.data(), plaintext.size(), &m) == 0);
    signal_buffer* s = ciphertext_message_get_serialized(m);
    Sent out{ciphertext_message_get_type(m) == CIPHERTEXT_PREKEY_TYPE,
             Bytes(signal_buffer_data(s), signal_buffer_data(s) + signal_buffer_len(s))};
    SIGNAL_UNREF(m);
    session_cipher_free(cipher);
    return out;
  }

  // The plaintext, or nullopt when libsignal refuses the message.
  std::optional<Bytes> decrypt(const signal_protocol_address& peer, const oldmemo::LegacyKey& k) {
    session_cipher* cipher = nullptr;
    REQUIRE(session_cipher_create(&cipher, store, &peer, ctx) == 0);
    signal_buffer* pt = nullptr;
    int rc = -1;
    if (k.prekey) {
      pre_key_signal_message* m = nullptr;
      if (pre_key_signal_message_deserialize(&m, k.data.data(), k.data.size(), ctx) == 0) {
        rc = session_cipher_decrypt_pre_key_signal_message(cipher, m, nullptr, &pt);
        SIGNAL_UNREF(m);
      }
    } else {
      signal_message* m = nullptr;
      if (signal_message_deserialize(&m, k.data.data(), k.data.size(), ctx) == 0) {
        rc = session_cipher_decrypt_signal_message(cipher, m, nullptr, &pt);
        SIGNAL_UNREF(m);
      }
    }
    session_cipher_free(cipher);
    if (rc != 0) return std::nullopt;
    return bytes_of(pt);
  }
};

// ---- our side: one identity, SPK 1, prekey 5, sessions by device -------------------------------

struct OurDevice {
  crypto::DeterministicRng rng{2026};
  crypto::IdentityKeyPair identity = crypto::IdentityKeyPair::generate(rng);
  crypto::X25519KeyPair spk = crypto::X25519KeyPair::generate(rng);
  crypto::X25519KeyPair opk = crypto::X25519KeyPair::generate(rng);
  std::optional<oldmemo::LegacySession> session;

  oldmemo::LegacyBundle bundle() const {
    return {1, spk.pub, oldmemo::sign_signed_prekey(identity, spk.pub), oldmemo::curve_identity(identity), {{5, opk.pub}}};
  }

  // What a session manager does with one <key> from the peer: kex → new or same session;
  // commit only on success.
  std::optional<Bytes> receive(const LibsignalDevice::Sent& m) {
    std::optional<oldmemo::LegacySession> work;
    ByteView signal_message = m.bytes;
    std::optional<oldmemo::ParsedPreKeyMessage> kex;
    if (m.prekey) {
      auto parsed = oldmemo::unwrap_prekey_message(m.bytes);
      if (!parsed) return std::nullopt;
      kex = std::move(*parsed);
      signal_message = kex->signal_message;
      if (session && oldmemo::built_from(*session, kex->header)) {
        work = session->clone();
      } else {
        if (kex->header.pre_key_id != 5 || kex->header.signed_pre_key_id != 1) return std::nullopt;
        auto s = oldmemo::accept_session(identity, {"peer@example.org", 7}, kex->header, spk, opk);
        if (!s) return std::nullopt;
        work = std::move(*s);
      }
    } else {
      if (!session) return std::nullopt;
      work = session->clone();
    }
    auto km = oldmemo::decrypt_key(*work, signal_message, rng);
    if (!km) return std::nullopt;
    session = std::move(*work);
    return Bytes(km->view().begin(), km->view().end());
  }

  oldmemo::LegacyKey send(ByteView km) {
    auto k = oldmemo::encrypt_key(*session, km);
    REQUIRE(k.has_value());
    return std::move(*k);
  }
};

Bytes material(int i) {
  Bytes b(32);
  for (std::size_t j = 0; j < b.size(); ++j) b[j] = static_cast<std::uint8_t>(i * 31 + j);
  return b;
}

const char kOurName[] = "us@example.org";
const char kTheirName[] = "peer@example.org";
const signal_protocol_address kUs{kOurName, sizeof kOurName - 1, 1001};
const signal_protocol_address kThem{kTheirName, sizeof kTheirName - 1, 7};

}  // namespace

TEST_CASE("libsignal initiates: our bundle, its repeated key exchange, our answers, its late message") {
  LibsignalDevice ls;
  OurDevice us;
  REQUIRE(ls.process_bundle(kUs, us.bundle()));  // verifies our SPK signature with the sign bit
  auto m0 = ls.encrypt(kUs, material(0));
  auto m1 = ls.encrypt(kUs, material(1));
  CHECK(m0.prekey);
  CHECK(m1.prekey);  // repeated until answered
  CHECK(m0.bytes[1] == 0x08);  // libsignal writes field 1 first
  CHECK(us.receive(m1) == material(1));
  CHECK(us.receive(m0) == material(0));  // the same session, out of order
  CHECK_FALSE(us.receive(m0).has_value());  // a replay

  auto a0 = us.send(material(100));
  CHECK_FALSE(a0.prekey);
  CHECK(ls.decrypt(kUs, a0) == material(100));

  // libsignal: three on its next chain; we read two, answer, and it starts another chain
  auto c0 = ls.encrypt(kUs, material(2)), c1 = ls.encrypt(kUs, material(3)), c2 = ls.encrypt(kUs, material(4));
  CHECK_FALSE(c0.prekey);
  CHECK(us.receive(c0) == material(2));
  CHECK(us.receive(c1) == material(3));
  CHECK(ls.decrypt(kUs, us.send(material(101))) == material(101));
  auto d0 = ls.encrypt(kUs, material(5));
  auto pn = oldmemo::parse_signal_message(d0.bytes);
  REQUIRE(pn.has_value());
  CHECK(pn->header.previous_counter == 2);  // libsignal's count - 1
  CHECK(us.receive(d0) == material(5));
  CHECK(us.receive(c2) == material(4));  // its last message of the old chain, late

  // tampering: libsignal refuses a changed MAC; we refuse a changed ciphertext, then read the original
  auto t = us.send(material(102));
  auto bad = t;
  bad.data[bad.data.size() - 1] ^= 1;
  CHECK_FALSE(ls.decrypt(kUs, bad).has_value());
  CHECK(ls.decrypt(kUs, t) == material(102));
  auto e = ls.encrypt(kUs, material(6));
  auto e_bad = e;
  e_bad.bytes[e_bad.bytes.size() - 12] ^= 1;
  CHECK_FALSE(us.receive(e_bad).has_value());
  CHECK(us.receive(e) == material(6));
}

TEST_CASE("we initiate: libsignal's bundle, our repeated key exchange, then plain messages") {
  LibsignalDevice ls;
  OurDevice us;
  const oldmemo::LegacyBundle theirs = ls.make_bundle();
  auto started = oldmemo::start_session(us.identity, {kTheirName, 7}, theirs, us.rng);
  REQUIRE(started.has_value());  // libsignal's randomized signature verifies, with its sign bit
  us.session = std::move(started->session);
  auto k0 = us.send(material(10));
  auto k1 = us.send(material(11));
  CHECK(k0.prekey);
  CHECK(k1.prekey);
  CHECK(ls.decrypt(kUs, k0) == material(10));
  CHECK(ls.decrypt(kUs, k1) == material(11));  // the same kex again: libsignal reuses its session
  auto reply = ls.encrypt(kUs, material(12));
  CHECK_FALSE(reply.prekey);
  CHECK(us.receive(reply) == material(12));
  auto k2 = us.send(material(13));
  CHECK_FALSE(k2.prekey);  // confirmed
  CHECK(ls.decrypt(kUs, k2) == material(13));
  for (int i = 0; i < 20; ++i) {
    if (i % 3 == 0) {
      CHECK(us.receive(ls.encrypt(kUs, material(200 + i))) == material(200 + i));
    } else {
      CHECK(ls.decrypt(kUs, us.send(material(300 + i))) == material(300 + i));
    }
  }
  // a bundle whose signature lost its sign bit names another key: refused by us before any DH
  oldmemo::LegacyBundle flipped = theirs;
  flipped.spk_signature.bytes[63] ^= 0x80;
  CHECK(oldmemo::start_session(us.identity, {kTheirName, 7}, flipped, us.rng).error() == Errc::bad_signature);
}

TEST_CASE("libsignal refuses our bundle when the sign bit is wrong") {
  LibsignalDevice ls;
  OurDevice us;
  oldmemo::LegacyBundle b = us.bundle();
  b.spk_signature.bytes[63] ^= 0x80;
  CHECK_FALSE(ls.process_bundle(kUs, b));
  CHECK(ls.process_bundle(kUs, us.bundle()));
}
