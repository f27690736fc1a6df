// A device online: its Device plus a c2s connection, talking to the archive component as
// docs/protocol.md describes. Registration and key upkeep, sending with receipts and the
// outbox, catching up from the archive, live receiving. One coroutine at a time uses it.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "client/app/device.hpp"
#include "client/pep/pep_api.hpp"
#include "client/xmpp/c2s_connection.hpp"

namespace multiend::client {

struct ClientOptions {
  std::string component;                 // the archive component's JID
  std::chrono::seconds timeout{20};      // each request to the component
  std::size_t prekey_low = 25;           // refill below this many unclaimed prekeys
  std::size_t prekey_batch = 100;        // how many a refill adds
  std::size_t prekey_cap = 300;          // at most this many published
  std::size_t max_deferred_bytes = 8 * 1024 * 1024;  // fan-out held while a catch-up runs
  std::size_t max_page_bytes = 64 * 1024 * 1024;     // one MAM page held before it is decrypted
  std::function<std::int64_t()> clock;   // unix seconds (passed in so tests control time)
  bool pep = true;  // legacy OMEMO over PEP: publish there, send to and read plain devices
  // after publishing an own PEP device list, how long before reading it back (concurrent
  // publishers' stale writes land within milliseconds; pep_transport.cpp)
  std::chrono::milliseconds pep_settle{500};
};

struct SendReport {
  std::string stanza_id;
  std::vector<omemo::DeviceAddress> devices;  // encrypted for, through the archive (OMEMO 2)
  std::vector<omemo::DeviceAddress> pep_devices;  // encrypted for, by chat message (legacy OMEMO)
  std::vector<omemo::DeviceAddress> pep_omemo2_devices;  // encrypted for, by chat message (OMEMO 2)
  std::vector<std::pair<omemo::DeviceAddress, std::string>> skipped;  // and why not
  bool resent = false;
};

struct CatchUpReport {
  std::size_t fetched = 0;  // archived messages read
  std::size_t stored = 0;   // new history entries
};

// What holding a stanza costs, roughly: its names, attributes and text (bounds in bytes).
std::size_t approx_bytes(const xml::Element& e);

// "cancel/item-not-found (text)": a stanza error in one line.
std::string describe(const xmpp::StanzaError& e);

// "Bob@Example.org/x" → "bob@example.org"; ClientError(usage) for anything but a user's JID.
std::string user_bare_jid(const std::string& jid);

// Bulk sending (Client::send_many): where messages come from, and what becomes of each.
struct OutgoingMessage {
  std::vector<std::string> to;
  std::string body;
  std::string ref;  // the caller's label for it, echoed in its outcome
};
enum class Poll { item, empty, ended };
// Non-blocking: fills `m` and says `item`, or says nothing is ready yet, or the input ended.
using OutgoingSource = std::function<Poll(OutgoingMessage& m)>;
struct SendOutcome {
  std::string ref;
  std::vector<std::string> to;  // bare JIDs
  SendReport report;            // stanza_id set when it was receipted
  std::string refused;          // why the component or the plan refused it (report empty then)
};
using OutcomeSink = std::function<void(const SendOutcome&)>;
struct BulkProgress {
  std::size_t receipted = 0, refused = 0, in_flight = 0;
};
struct BulkOptions {
  std::size_t window = 64;             // messages sent and not yet receipted, at most
  bool stop_on_refusal = true;         // `send --lines`: yes; `run`: report it and go on
  bool live = false;                   // `run`: show fan-out as it comes (announce() first)
  std::function<void(const BulkProgress&)> progress;  // called after each batch of receipts
};

using MessageSink = std::function<void(const HistoryEntry&)>;
using ProgressSink = std::function<void(std::size_t done)>;

class Client {
 public:
  Client(C2sConnection& conn, Device& device, ClientOptions options);

  // After connect(): publishes the bundle when the device is new, then checks the device is
  // still listed (false: it was removed — it then publishes nothing), refills prekeys below
  // the threshold, rotates the signed prekey when due.
  asio::awaitable<bool> register_and_maintain();
  bool removed() const noexcept { return removed_; }

  // Sends what an earlier process left unacknowledged in the outbox (same stanza, same
  // origin-id). Returns how many were acknowledged.
  asio::awaitable<std::size_t> flush_outbox(const MessageSink& sink);

  // Encrypts `body` for every usable device of `to` and the account's other devices, sends one
  // stanza to the component and waits for its receipt (resending at once after a
  // missing-devices bounce). The message is in the history once this returns.
  asio::awaitable<SendReport> send(const std::vector<std::string>& to, const std::string& body,
                                   const MessageSink& sink);

  // Sends what `next` yields over this one connection with up to `window` messages awaiting
  // receipts. Each message is in the outbox before it is sent and leaves it with its receipt
  // (as send() does); `wait` answers and silence are retried with the same origin-id within
  // the timeout. Returns at the end of the input once every message is answered; throws
  // ClientError(connection) when a receipt does not come in time (the rest stays in the outbox).
  asio::awaitable<BulkProgress> send_many(const OutgoingSource& next, const OutcomeSink& done,
                                          const MessageSink& incoming, BulkOptions options);

  // Pages through the archive after the last position, decrypting and storing in order.
  asio::awaitable<CatchUpReport> catch_up(const MessageSink& sink, const ProgressSink& progress);

  // Pages through the account's own server archive (plain chat messages: legacy OMEMO contacts,
  // the account's other apps) after its own position, storing in order, dropping what came live
  // already. A server without MAM is a warning, not an error. Returns how many were shown.
  asio::awaitable<std::size_t> catch_up_server(const MessageSink& sink);

  // Available presence: fan-out (a headline to the bare JID) reaches this resource from now.
  void announce();

  // Catches up, announces presence, then handles live fan-out until `until` or `count`
  // messages were shown.
  asio::awaitable<std::size_t> listen(std::chrono::steady_clock::time_point until, std::optional<std::size_t> count,
                                      const MessageSink& sink, const std::function<void(const std::string& full_jid)>& on_listening = {});

  // The device list the component holds for `bare_jid` (stored locally as well).
  asio::awaitable<omemo::DeviceList> fetch_device_list(const std::string& bare_jid);
  // Identity keys by device id, read without claiming prekeys.
  asio::awaitable<std::map<std::uint32_t, crypto::Ed25519Public>> fetch_identities(const std::string& bare_jid);
  // Replaces the session with one device by hand (XEP-0384: sessions must be replaceable):
  // fetches its bundle, refuses one whose identity key differs from the pinned key, drops the
  // old session and sends a fresh key exchange in an empty message. Returns the fingerprint.
  asio::awaitable<std::string> reset_session(const std::string& bare_jid, std::uint32_t device);
  // The OMEMO 2 and legacy devices in `bare_jid`'s PEP, their identities recorded for trust (bundles
  // in PEP are public: reading them claims nothing). Empty without PEP.
  struct PepDevices {
    std::vector<std::uint32_t> omemo2_ids;  // urn:xmpp:omemo:2:devices
    std::vector<std::uint32_t> ids;         // legacy
    std::optional<std::string> refused;  // why the list could not be read
    std::vector<std::string> unreadable;  // lists answered forbidden: never created, or contacts only
  };
  asio::awaitable<PepDevices> legacy_devices(const std::string& bare_jid);
  bool pep_enabled() const noexcept { return options_.pep; }
  // Publishes the account's device list without `device`. False if it was not listed.
  asio::awaitable<bool> remove_device(std::uint32_t device);

 private:
  // One request to the component, asked again on `wait` and on silence within the timeout.
  asio::awaitable<xml::Element> request(xml::Element iq);
  // The same, building each attempt anew (a MAM query needs a fresh queryid per attempt).
  asio::awaitable<xml::Element> request(const std::function<xml::Element()>& make);
  static constexpr std::chrono::seconds kFirstResendAfter{4};
  // A MAM page asked for ahead of time (catch_up.cpp).
  struct PageFetch;
  std::shared_ptr<PageFetch> start_page_fetch(const asio::any_io_executor& ex, const std::optional<std::string>& after);
  asio::awaitable<void> run_page_fetch(std::shared_ptr<PageFetch> fetch, std::optional<std::string> after);
  asio::awaitable<void> publish_bundle();
  // Where a user's OMEMO 2 nodes live (archive_directory.cpp): the configured component for
  // our own domain; for another domain the item of its disco#items whose disco#info has
  // urn:multiend:archive:0, looked up once per process. `looked_at` says what was asked.
  struct ArchiveLookup {
    std::optional<std::string> archive;
    std::string looked_at;
  };
  asio::awaitable<ArchiveLookup> archive_of_domain(const std::string& domain);
  // The JID of `bare_jid`'s node at its domain's archive; ClientError(refused) naming what was
  // looked at when that domain has none.
  asio::awaitable<std::string> node_of(const std::string& bare_jid);
  // Sending reaches only users of our own domain: the component archives and fans out for its
  // domain, and OMEMO by PEP is not built. Anyone else is ClientError(refused), before a prekey
  // of anyone is claimed or a key recorded.
  asio::awaitable<void> require_deliverable(const std::string& bare_jid);
  bool archive_delivers_to(const std::string& bare_jid) const;
  // The one line for "nothing reaches this user": what was looked at, archive and PEP.
  asio::awaitable<std::string> unreachable_reason(const std::string& bare_jid, const std::vector<std::string>& pep_looked_at);
  std::map<std::string, ArchiveLookup> archives_;
  asio::awaitable<std::map<std::uint32_t, omemo::Bundle>> fetch_bundles(const std::string& bare_jid,
                                                                        const std::vector<std::uint32_t>& devices);
  // Who gets keys: every usable device of the users, our own other devices included.
  struct Plan {
    std::vector<omemo::DeviceAddress> devices;
    std::map<omemo::DeviceAddress, omemo::Bundle> bundles;  // for devices without a session
    std::vector<std::pair<omemo::DeviceAddress, std::string>> skipped;
  };
  // `reuse_lists`: a device list fetched by this process in the last 30 s is taken as stored
  // (the component bounces a message that misses a device, and the sender then re-plans).
  asio::awaitable<Plan> plan_recipients(const std::vector<std::string>& users, bool reuse_lists = false);
  std::map<std::string, std::chrono::steady_clock::time_point> lists_fetched_;
  // Sends a stanza and waits for the component's answer to it; fan-out meanwhile is deferred.
  struct Answer {
    std::optional<component::Receipt> receipt;
    std::optional<component::Bounce> bounce;
  };
  asio::awaitable<Answer> submit(const xml::Element& stanza, const std::string& id);
  // Empty OMEMO messages: key-exchange completion, heartbeats, repairs.
  asio::awaitable<void> send_empty(const std::vector<omemo::DeviceAddress>& to);
  asio::awaitable<void> after_receive(std::vector<omemo::DeviceAddress> empty_to,
                                      std::vector<omemo::DeviceAddress> repair, bool republish);
  // A stanza that is not what we wait for: live fan-out, prekeys-low, events.
  asio::awaitable<void> handle_unsolicited(const xml::Element& stanza, const MessageSink& sink);
  // Holds a stanza that arrived during a catch-up or submit; false when the byte bound is reached.
  bool defer(const xml::Element& stanza);
  // Handles the fan-out deferred while a catch-up or a submit was waiting.
  asio::awaitable<void> drain_deferred(const MessageSink& sink);
  // Fetches the device lists of senders in `page` whose device is not on the stored list.
  asio::awaitable<void> refresh_device_lists(const std::vector<component::Archived>& page);
  std::string new_id();

  // Legacy OMEMO over PEP and plain chat messages (pep_transport.cpp).
  // Our device in the account's legacy device list (merged with what is there, checked after
  // publishing, retried on a concurrent change), our legacy bundle (access open), Carbons on.
  asio::awaitable<void> publish_pep();
  // Both bundles in PEP, when they changed since last published (or a day passed); whether
  // each is there (legacy, OMEMO 2).
  asio::awaitable<std::pair<bool, bool>> publish_pep_bundles();
  // Puts this device on one of the account's PEP device lists (legacy or OMEMO 2), merged with
  // what is there; see the comment inside for concurrent publishers.
  asio::awaitable<void> merge_into_own_list(bool legacy);
  // The account's own list of that kind (none yet: empty); nullopt when unreadable (warned).
  asio::awaitable<std::optional<omemo::DeviceList>> read_own_list(bool legacy);
  // One request to the user's own server (PEP, Carbons): asked once; ClientError(connection)
  // when it does not answer within the timeout.
  asio::awaitable<xml::Element> pep_request(xml::Element iq);
  // Publishes an item with access_model=open (and max_items=max when `keep_all`), reconfiguring
  // a node the server created otherwise; the error in one line, or nullopt.
  asio::awaitable<std::optional<std::string>> publish_open_item(std::string node, std::string item,
                                                                xml::Element payload, bool keep_all);
  // Takes `device` off the account's legacy device list in PEP; false if it was not on it.
  asio::awaitable<bool> remove_from_pep(std::uint32_t device);
  asio::awaitable<pep::ListResult> fetch_legacy_list(const std::string& bare_jid);
  // The bundle payloads in `bare_jid`'s PEP (legacy or OMEMO 2) of the devices that have one.
  asio::awaitable<std::map<std::uint32_t, xml::Element>> fetch_bundle_payloads(const std::string& bare_jid,
                                                                              const std::vector<std::uint32_t>& ids,
                                                                              bool legacy);
  asio::awaitable<std::map<std::uint32_t, oldmemo::LegacyBundle>> fetch_legacy_bundles(
      const std::string& bare_jid, const std::vector<std::uint32_t>& ids);
  struct PepPlan {
    std::vector<omemo::DeviceAddress> devices;  // legacy
    std::map<omemo::DeviceAddress, oldmemo::LegacyBundle> bundles;
    std::vector<omemo::DeviceAddress> omemo2_devices;  // OMEMO 2 apps found in PEP
    std::map<omemo::DeviceAddress, omemo::Bundle> omemo2_bundles;
    std::vector<std::pair<omemo::DeviceAddress, std::string>> skipped;
    std::vector<std::string> looked_at;  // what was asked, for a "no device anywhere" error
    bool any() const { return !devices.empty() || !omemo2_devices.empty(); }
  };
  // Does `user` get the message: our own account, or a device of theirs in either plan?
  bool reaches(const std::string& user, const Plan& plan, const PepPlan* pep) const;
  // The history entry of a message that went by chat messages only (`pep:<own>:<origin-id>`),
  // made now: after every archive entry already here.
  HistoryEntry pep_sent_entry(const std::string& origin_id, const std::string& body,
                              const std::vector<std::string>& to, std::int64_t now, const SendReport& chats) const;
  // The legacy devices of `users` (our own account included) not reached through the archive.
  // Devices on the archive's lists of `users` (as stored by plan_recipients): one device in
  // both an archive list and a PEP list is reached through the archive only.
  std::vector<omemo::DeviceAddress> archive_listed(const std::vector<std::string>& users);
  asio::awaitable<PepPlan> plan_pep(const std::vector<std::string>& users, const std::vector<omemo::DeviceAddress>& via_archive);
  // Per recipient one chat message per protocol (the first also carries our own other PEP
  // devices' keys; Carbons bring it to them), encrypted and put in the outbox: the caller holds
  // the transaction. Fills the report's pep devices and skipped; returns the outbox keys.
  std::vector<std::string> queue_chats(const std::vector<std::string>& recipients, const PepPlan& plan, const std::string& body,
                                       const std::string& origin_id, SendReport& report);
  static constexpr std::string_view kChatOutboxPrefix = "chat:";
  std::int64_t last_chat_us_ = 0;  // creation time of the last chat queued: their order
  // "chat:<origin-id>:": the outbox keys of one message's chat messages.
  static std::string chat_key_prefix(const std::string& origin_id);
  // Sends the chat messages in the outbox (those keyed in `only`; without it, every one whose
  // archive copy is not in the outbox) and takes them out once the server has them (its answer
  // to a ping sent after them). Returns how many.
  asio::awaitable<std::size_t> deliver_chats(const std::vector<std::string>* only = nullptr);
  // Takes a message's queued chat messages out unsent (its archive copy was refused).
  void drop_chats_of(const std::string& origin_id);
  asio::awaitable<std::map<std::uint32_t, omemo::Bundle>> fetch_pep_bundles(const std::string& bare_jid,
                                                                            const std::vector<std::uint32_t>& ids);
  // Decrypts and stores one live chat message, then after_chats.
  asio::awaitable<void> handle_chat(const ChatMessage& chat, const MessageSink& sink);
  // After chat messages were stored: republishes the legacy bundle when a prekey was spent and
  // answers new key exchanges with an empty message (once per device).
  asio::awaitable<void> after_chats(bool prekey_used, std::vector<omemo::DeviceAddress> reply_to,
                                    std::vector<omemo::DeviceAddress> omemo2_reply_to);
  // Where the account's server archive ends now: a new device reads from there on.
  asio::awaitable<void> mark_server_archive_end();

  C2sConnection& conn_;
  Device& device_;
  ClientOptions options_;
  bool removed_ = false;
  bool catching_up_ = false;
  bool submitting_ = false;
  // Fan-out seen during a catch-up or submit, handled after it. Bounded in bytes: past the
  // bound it is dropped and one more catch-up reads it from the archive instead.
  std::deque<xml::Element> deferred_;
  std::size_t deferred_bytes_ = 0;
  bool deferred_overflow_ = false;
  bool draining_ = false;  // drain_deferred is running (it may catch up, which drains again)
  std::set<omemo::DeviceAddress> refreshed_lists_;  // device lists refreshed for unlisted senders
};

}  // namespace multiend::client
