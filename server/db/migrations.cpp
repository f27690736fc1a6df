#include "server/db/migrations.hpp"

#include <spdlog/spdlog.h>

namespace multiend::server {
namespace {

struct Migration {
  int version;
  const char* name;
  const char* sql;
};

// Never edit a migration that has shipped: add a new one.
const Migration kMigrations[] = {
    {1, "initial schema", R"SQL(
CREATE TABLE owners (
  owner         text PRIMARY KEY,             -- bare JID of the user (alice@example.org)
  last_activity timestamptz NOT NULL DEFAULT now()
);

-- The device list is the set of rows of an owner; a row without ik has no bundle (yet).
CREATE TABLE devices (
  owner               text NOT NULL REFERENCES owners ON DELETE CASCADE,
  device_id           bigint NOT NULL CHECK (device_id BETWEEN 1 AND 2147483647),
  ik                  bytea,
  spk_id              bigint,
  spk                 bytea,
  spks                bytea,
  bundle_published_at timestamptz,
  low_notified_at     timestamptz,
  PRIMARY KEY (owner, device_id)
);

CREATE TABLE prekeys (
  owner       text NOT NULL,
  device_id   bigint NOT NULL,
  pk_id       bigint NOT NULL,
  pk          bytea NOT NULL,
  claimed_by  text,                           -- full JID of the requester
  claimed_at  timestamptz,
  reuse_count integer NOT NULL DEFAULT 0,
  PRIMARY KEY (owner, device_id, pk_id),
  FOREIGN KEY (owner, device_id) REFERENCES devices ON DELETE CASCADE
);
CREATE INDEX prekeys_unclaimed ON prekeys (owner, device_id, pk_id) WHERE claimed_by IS NULL;

CREATE TABLE subscriptions (
  owner      text NOT NULL,
  node       text NOT NULL,
  subscriber text NOT NULL,
  PRIMARY KEY (owner, node, subscriber)
);

-- One row per message, stored once whatever the number of recipients.
CREATE TABLE messages (
  id          bigserial PRIMARY KEY,
  sender_bare text NOT NULL,
  sender_full text NOT NULL,
  origin_id   text NOT NULL,
  stored_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  stanza      text NOT NULL,                  -- the <message/> as received (jabber:client), ciphertext only
  fanned_out  boolean NOT NULL DEFAULT false,
  UNIQUE (sender_bare, origin_id)
);
CREATE INDEX messages_stored_at ON messages (stored_at);
CREATE INDEX messages_pending_fanout ON messages (id) WHERE NOT fanned_out;

-- One small row per recipient's archive (the sender's included).
CREATE TABLE archive (
  owner      text NOT NULL,
  message_id bigint NOT NULL REFERENCES messages ON DELETE CASCADE,
  PRIMARY KEY (owner, message_id)
);
CREATE INDEX archive_message ON archive (message_id);

-- Claims one prekey of a device for a requester (a full JID), atomically:
-- the same requester within the retry window gets the same prekey back; otherwise the
-- lowest unclaimed one (SKIP LOCKED: two requesters never get the same); when none is left,
-- the least recently claimed one again (reused = true).
CREATE FUNCTION claim_prekey(p_owner text, p_device bigint, p_requester text, p_retry_seconds integer)
RETURNS TABLE (pk_id bigint, pk bytea, reused boolean, remaining bigint)
LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  SELECT p.pk_id, p.pk INTO r FROM prekeys p
   WHERE p.owner = p_owner AND p.device_id = p_device AND p.claimed_by = p_requester
     AND p.claimed_at > now() - make_interval(secs => p_retry_seconds)
   ORDER BY p.claimed_at DESC LIMIT 1;
  IF FOUND THEN
    pk_id := r.pk_id; pk := r.pk; reused := false;
  ELSE
    UPDATE prekeys p SET claimed_by = p_requester, claimed_at = now()
     WHERE (p.owner, p.device_id, p.pk_id) IN (
       SELECT q.owner, q.device_id, q.pk_id FROM prekeys q
        WHERE q.owner = p_owner AND q.device_id = p_device AND q.claimed_by IS NULL
        ORDER BY q.pk_id LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING p.pk_id, p.pk INTO r;
    IF FOUND THEN
      pk_id := r.pk_id; pk := r.pk; reused := false;
    ELSE
      UPDATE prekeys p SET claimed_by = p_requester, claimed_at = now(), reuse_count = p.reuse_count + 1
       WHERE (p.owner, p.device_id, p.pk_id) IN (
         SELECT q.owner, q.device_id, q.pk_id FROM prekeys q
          WHERE q.owner = p_owner AND q.device_id = p_device
          ORDER BY q.claimed_at ASC NULLS FIRST, q.pk_id LIMIT 1 FOR UPDATE)
      RETURNING p.pk_id, p.pk INTO r;
      IF NOT FOUND THEN
        RETURN;
      END IF;
      pk_id := r.pk_id; pk := r.pk; reused := true;
    END IF;
  END IF;
  SELECT count(*) INTO remaining FROM prekeys p
   WHERE p.owner = p_owner AND p.device_id = p_device AND p.claimed_by IS NULL;
  RETURN NEXT;
END
$$;
)SQL"},
    {2, "prekey claims past a requester's hourly budget reuse a claimed prekey", R"SQL(
-- p_fresh = false: the requester account is past its budget of fresh prekeys for this owner
-- this hour. It gets a prekey that was claimed already (preferably by that same account) and
-- no unclaimed one, so one account cannot drain another's prekeys. Only when nothing was ever
-- claimed does it get a fresh one.
CREATE FUNCTION claim_prekey(p_owner text, p_device bigint, p_requester text, p_retry_seconds integer,
                             p_fresh boolean)
RETURNS TABLE (pk_id bigint, pk bytea, reused boolean, remaining bigint)
LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  IF NOT p_fresh THEN
    SELECT p.pk_id, p.pk INTO r FROM prekeys p
     WHERE p.owner = p_owner AND p.device_id = p_device AND p.claimed_by IS NOT NULL
     ORDER BY (split_part(p.claimed_by, '/', 1) = split_part(p_requester, '/', 1)) DESC, p.claimed_at DESC
     LIMIT 1;
    IF FOUND THEN
      pk_id := r.pk_id; pk := r.pk; reused := true;
      SELECT count(*) INTO remaining FROM prekeys p
       WHERE p.owner = p_owner AND p.device_id = p_device AND p.claimed_by IS NULL;
      RETURN NEXT;
      RETURN;
    END IF;
  END IF;
  RETURN QUERY SELECT * FROM claim_prekey(p_owner, p_device, p_requester, p_retry_seconds);
END
$$;
)SQL"},
};

}  // namespace

int latest_schema_version() { return kMigrations[std::size(kMigrations) - 1].version; }

MigrationReport migrate(pqxx::connection& c) {
  pqxx::work tx(c);
  tx.exec("SELECT pg_advisory_xact_lock(7243311)");  // one migrator at a time
  tx.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
      "applied_at timestamptz NOT NULL DEFAULT now())");
  const int current = tx.exec1("SELECT coalesce(max(version), 0) FROM schema_migrations")[0].as<int>();
  MigrationReport report{current, current};
  if (current > latest_schema_version())
    throw std::runtime_error("database schema version " + std::to_string(current) +
                             " is newer than this program knows (" + std::to_string(latest_schema_version()) + ")");
  for (const Migration& m : kMigrations) {
    if (m.version <= current) continue;
    spdlog::info("applying migration {} ({})", m.version, m.name);
    tx.exec(m.sql);
    tx.exec("INSERT INTO schema_migrations (version, name) VALUES (" + tx.quote(m.version) + ", " +
            tx.quote(std::string(m.name)) + ")");
    report.to_version = m.version;
  }
  tx.commit();
  return report;
}

}  // namespace multiend::server
