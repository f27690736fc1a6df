-- Fills the component's archive for the MAM benchmark: :n messages across :users users
-- (user1 … userN @ :user_domain), each with a stanza text shaped and sized like the ones the
-- component stores (OMEMO 2 <encrypted> with 7 keys of 124 bytes and a 1 KiB payload, random
-- base64, ~3.2 KB) and 4 archive rows (the sender and 3 recipients). Messages are marked
-- fanned out (else the component would deliver them all on its next start), stored_at grows
-- with the id, 0.5 s apart, ending now. Then VACUUM ANALYZE, so index-only scans see an
-- all-visible archive as they would in a steady state.
--
--   psql "$MULTIEND_DATABASE_URL" -v n=1000000 -v users=1000 -f bench/fill_archive.sql
--
-- Parallel fill: several sessions with -v first=A -v last=B (parts of 1 … n) and -v vacuum=false,
-- then one VACUUM ANALYZE. Message ids then interleave between the parts; every archive is
-- still ordered by id, which is all MAM paging uses.
--
-- Recipients of message g (sender s = g mod U, step = (U-1)/3, o = 1 + (g div U) mod step):
-- (s + o), (s + o + step), (s + o + 2·step) mod U — three distinct users, never the sender,
-- spread evenly, so every user's archive holds ≈ 4·n/U messages.
\set ON_ERROR_STOP on
\if :{?n}
\else
  \set n 1000000
\endif
\if :{?users}
\else
  \set users 1000
\endif
\if :{?first}
\else
  \set first 1
\endif
\if :{?last}
\else
  \set last :n
\endif
\if :{?vacuum}
\else
  \set vacuum true
\endif
\if :{?user_domain}
\else
  \set user_domain localhost
\endif
\if :{?component_domain}
\else
  \set component_domain archive.localhost
\endif

SET synchronous_commit = off;
SET maintenance_work_mem = '256MB';
SET work_mem = '64MB';
\timing on

-- 1,024 random blobs of 2,560 bytes, base64 (3,416 characters): keys and payloads are cut
-- from these. Each stored stanza stays incompressible for pglz, like real ciphertext.
-- Cut once here: substr() on text walks characters, which per row would cost more than the insert.
CREATE TEMP TABLE fill_pool (p int PRIMARY KEY, k1 text, k2 text, k3 text, k4 text, k5 text, k6 text, k7 text,
                             payload text);
INSERT INTO fill_pool
SELECT p, substr(b, 1, 168), substr(b, 169, 168), substr(b, 337, 168), substr(b, 505, 168), substr(b, 673, 168),
       substr(b, 841, 168), substr(b, 1009, 168), substr(b, 1177, 1368)
FROM (SELECT p, replace(encode(decode(string_agg(md5(random()::text || p::text || s::text), '' ORDER BY s), 'hex'),
                                'base64'), E'\n', '') AS b
      FROM generate_series(0, 1023) p, generate_series(1, 160) s
      GROUP BY p) blobs;

-- The users exist as owners (they published devices once): a MAM query updates their
-- last_activity, as it would in production.
INSERT INTO owners (owner)
SELECT 'user' || u || '@' || :'user_domain' FROM generate_series(1, :users) u
ON CONFLICT (owner) DO NOTHING;

WITH ins AS (
  INSERT INTO messages (sender_bare, sender_full, origin_id, stored_at, stanza, fanned_out)
  SELECT 'user' || (k.s + 1) || '@' || :'user_domain',
         'user' || (k.s + 1) || '@' || :'user_domain' || '/dev1',
         'fill-' || g,
         now() - make_interval(secs => (:n - g) * 0.5),
         '<message xmlns=''jabber:client'' from=''user' || (k.s + 1) || '@' || :'user_domain' || '/dev1'' to='''
           || :'component_domain' || ''' type=''normal'' id=''fill' || g || '''>'
           || '<encrypted xmlns=''urn:xmpp:omemo:2''><header sid=''' || (2 * k.s + 1) || '''>'
           || '<keys jid=''user' || (k.r0 + 1) || '@' || :'user_domain' || '''>'
           ||   '<key rid=''' || (2 * k.r0 + 1) || '''>' || pool.k1 || '</key>'
           ||   '<key rid=''' || (2 * k.r0 + 2) || '''>' || pool.k2 || '</key></keys>'
           || '<keys jid=''user' || (k.r1 + 1) || '@' || :'user_domain' || '''>'
           ||   '<key rid=''' || (2 * k.r1 + 1) || '''>' || pool.k3 || '</key>'
           ||   '<key rid=''' || (2 * k.r1 + 2) || '''>' || pool.k4 || '</key></keys>'
           || '<keys jid=''user' || (k.r2 + 1) || '@' || :'user_domain' || '''>'
           ||   '<key rid=''' || (2 * k.r2 + 1) || '''>' || pool.k5 || '</key>'
           ||   '<key rid=''' || (2 * k.r2 + 2) || '''>' || pool.k6 || '</key></keys>'
           || '<keys jid=''user' || (k.s + 1) || '@' || :'user_domain' || '''>'
           ||   '<key rid=''' || (2 * k.s + 2) || '''>' || pool.k7 || '</key></keys>'
           || '</header><payload>' || pool.payload || '</payload></encrypted>'
           || '<origin-id xmlns=''urn:xmpp:sid:0'' id=''fill-' || g || '''/><store xmlns=''urn:xmpp:hints''/></message>',
         true
  FROM generate_series(:first, :last) g
  CROSS JOIN LATERAL (
    SELECT s, (s + o) % :users AS r0, (s + o + st) % :users AS r1, (s + o + 2 * st) % :users AS r2
    FROM (SELECT g % :users AS s, 1 + (g / :users) % ((:users - 1) / 3) AS o, (:users - 1) / 3 AS st) x
  ) k
  CROSS JOIN LATERAL (SELECT * FROM fill_pool WHERE p = g % 1024) pool
  RETURNING id, origin_id
)
INSERT INTO archive (owner, message_id)
SELECT 'user' || (u.u + 1) || '@' || :'user_domain', ins.id
FROM ins
CROSS JOIN LATERAL (
  SELECT g % :users AS s, 1 + (g / :users) % ((:users - 1) / 3) AS o, (:users - 1) / 3 AS st
  FROM (SELECT substr(ins.origin_id, 6)::bigint AS g) gg
) k
CROSS JOIN LATERAL (VALUES (k.s), ((k.s + k.o) % :users), ((k.s + k.o + k.st) % :users),
                           ((k.s + k.o + 2 * k.st) % :users)) u(u)
;

DROP TABLE fill_pool;
\if :vacuum
VACUUM ANALYZE messages;
VACUUM ANALYZE archive;
VACUUM ANALYZE owners;
\endif
