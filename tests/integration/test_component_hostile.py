#!/usr/bin/python3
"""Hostile accounts and failing parts against the Multiend archive component (ctest label ``hostile``).

    /usr/bin/python3 tests/integration/test_component_hostile.py --component-cmd "build/server/multiend-component --config {config}"

A real Prosody (or ejabberd, ``--server ejabberd``) and a real PostgreSQL from deploy/testbed; the component is
started with the limits below set low enough to reach in seconds and with the test failpoint
MULTIEND_TEST_FAILPOINT=in-doubt-commit armed. Each scenario is an attack or a fault the component must survive:
flooding requests, messages, MAM queries and fan-out from one account; draining another account's prekeys; a
Unicode alias of an account; a commit whose outcome is unknown; PostgreSQL frozen with SIGSTOP; the component
killed with SIGKILL under traffic. Memory is read from /proc (VmHWM, the peak resident set), not guessed.
Options and output as tests/support/component_harness.py says.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Dict, List, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "support"))

from xmpp_client import (  # noqa: E402
    NODE_BUNDLES, NODE_DEVICES, NS_PUBSUB, Client, StanzaError, archive_message, inner_origin_id, new_id,
    random_device_id, synthetic_bundle, synthetic_encrypted,
)
from component_harness import Ctx, Registry, check, main, result_of  # noqa: E402

USERS = "alice bob carol dave erin mallory trent oscar"
MIB = 1024 * 1024
# Limits low enough to reach within a scenario; every other setting is the default.
HOSTILE_CONFIG: Dict[str, Any] = {
    "max_stanza_bytes": 65536,
    "reconnect_max_backoff_seconds": 2,
    "request_timeout_seconds": 4,        # statement_timeout; the watchdog cuts at +3 s
    "connect_timeout_seconds": 3,
    "max_inflight_per_account": 16,
    "message_rate_per_account": 20,
    "message_burst_per_account": 40,
    "max_mam_queries_per_account": 2,
    "mam_max_page_bytes": 1 * MIB,
    "prekey_claims_per_hour": 5,
    "output_buffer_bytes": 4 * MIB,
}
RSS_LIMIT_KIB = 256 * 1024
# Under AddressSanitizer freed memory sits in a 256 MiB quarantine and shadow memory comes on top:
# the bound is checked on the normal build; a sanitizer build only gets a loose one.
RSS_LIMIT_ASAN_KIB = 1024 * 1024
PAD_NS = "urn:multiend:test:pad"

scenario = Registry()


# ---------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------

def component_memory(ctx: Ctx) -> Tuple[int, int]:
    """(VmRSS, VmHWM) of the component in KiB, from /proc."""
    assert ctx.h.proc is not None
    fields: Dict[str, int] = {}
    with open(f"/proc/{ctx.h.proc.pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                fields[k] = int(v.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def rss_limit_kib(ctx: Ctx) -> int:
    assert ctx.h.proc is not None
    with open(f"/proc/{ctx.h.proc.pid}/maps") as f:
        asan = any("libasan" in line for line in f)
    return RSS_LIMIT_ASAN_KIB if asan else RSS_LIMIT_KIB


def metric(ctx: Ctx, name: str, labels: str = "") -> float:
    body = urllib.request.urlopen(f"http://{ctx.h.http_address}/metrics", timeout=5).read().decode()
    pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "") + r" ([0-9.e+]+)$"
    m = re.search(pattern, body, re.M)
    return float(m.group(1)) if m else 0.0


def psql(ctx: Ctx, sql: str) -> str:
    r = subprocess.run(["psql", ctx.h.env.pg_url, "-v", "ON_ERROR_STOP=1", "-tAc", sql],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, f"psql failed: {r.stderr.strip()}")
    return r.stdout.strip()


def pad(n: int) -> str:
    return f"<pad xmlns='{PAD_NS}'>{'x' * n}</pad>"


async def still_serving(ctx: Ctx, what: str) -> None:
    """Another account is served at once: the stream is up and nothing is wedged."""
    c = await ctx.client("dave")
    ids, _ = await c.disco_info(ctx.comp)
    check(("component", "archive") in ids, f"{what}: the component stopped answering")


async def outcomes(c: Client, msg_ids: List[str], timeout: float) -> Dict[str, Any]:
    """msg id -> stanza-id (receipt) or StanzaError (bounce), for all of them or AssertionError."""
    out: Dict[str, Any] = {}
    want = set(msg_ids)
    deadline = time.monotonic() + timeout
    while want - set(out) and time.monotonic() < deadline:
        for s in c.take(lambda s: (s.receipt is not None and s.receipt[0] in want) or (s.type == "error" and s.id in want)):
            out[s.id if s.type == "error" else s.receipt[0]] = s.error if s.type == "error" else s.receipt[1]
        await asyncio.sleep(0.05)
    missing = want - set(out)
    check(not missing, f"{len(missing)} of {len(msg_ids)} messages got no answer within {timeout:.0f}s")
    return out


async def pipelined_iqs(c: Client, iqs: List[Tuple[str, str]], timeout: float) -> Dict[str, Any]:
    """Sends every (id, xml) in one write and waits for all answers: {id: Stanza}."""
    loop = asyncio.get_running_loop()
    futs = {}
    for iq_id, _ in iqs:
        futs[iq_id] = loop.create_future()
        c._iq_waiters[iq_id] = futs[iq_id]
    c.send_raw("".join(x for _, x in iqs))
    done, _ = await asyncio.wait(list(futs.values()), timeout=timeout)
    for iq_id in futs:
        c._iq_waiters.pop(iq_id, None)
    return {i: f.result() for i, f in futs.items() if f.done()}


def self_keyed(c: Client) -> str:
    """A synthetic <encrypted> keyed for one (unlisted) device of the sender: enough for the archive."""
    return synthetic_encrypted(random_device_id(), {c.bare: [1]})


async def resend_until_receipted(c: Client, enc: str, oids: List[str], timeout: float, **kw: Any) -> Dict[str, str]:
    """Resends each origin-id (in windows of 10) until it is receipted, retrying `wait` answers as a
    client does: {origin-id: stanza-id}. Any other answer fails."""
    done: Dict[str, str] = {}
    deadline = time.monotonic() + timeout
    todo = list(oids)
    while todo and time.monotonic() < deadline:
        window, todo = todo[:10], todo[10:]
        ids = {c.send_archive_message(enc, origin_id=oid, **kw)[0]: oid for oid in window}
        res = await outcomes(c, list(ids), 30)
        for mid, v in res.items():
            if isinstance(v, str):
                done[ids[mid]] = v
            elif isinstance(v, StanzaError) and v.type == "wait":
                todo.append(ids[mid])
            else:
                raise AssertionError(f"resend of {ids[mid]} refused: {v}")
        if todo:
            await asyncio.sleep(0.2)
    check(not todo, f"{len(todo)} messages still not receipted after {timeout:.0f}s")
    return done


def is_limit(e: Any, limit: str) -> bool:
    return isinstance(e, StanzaError) and e.type == "wait" and e.condition == "resource-constraint" and \
        limit in (e.text or "")


# ---------------------------------------------------------------------------------------------------------
# scenarios
# ---------------------------------------------------------------------------------------------------------

@scenario("inflight_flood", timeout=60)
async def sc_inflight_flood(ctx: Ctx) -> None:
    """200 pipelined requests from one account: past max_inflight_per_account (16) refused at once, others served."""
    m = await ctx.client("mallory", "flood")
    node = ctx.env.node_jid("alice")
    ids = [new_id("fl") for _ in range(200)]
    flood = asyncio.ensure_future(pipelined_iqs(m, [(i, f"<iq type='get' to='{node}' id='{i}'><pubsub xmlns='{NS_PUBSUB}'>"
                                                        f"<items node='{NODE_DEVICES}'/></pubsub></iq>") for i in ids], 30))
    await still_serving(ctx, "during the flood")
    answers = await flood
    check(len(answers) == len(ids), f"{len(ids) - len(answers)} requests got no answer at all")
    refused = [s for s in answers.values() if s.type == "error" and is_limit(s.error, "max_inflight_per_account")]
    check(refused, "no request was refused by max_inflight_per_account: the limit is not enforced")
    served = [s for s in answers.values() if s.type == "result" or (s.error and s.error.condition == "item-not-found")]
    check(served, "every request was refused")
    check(metric(ctx, "multiend_limit_refusals_total", 'limit="max_inflight_per_account"') >= len(refused),
          "refusals not counted in /metrics")
    ctx.note = f"{len(refused)} refused, {len(served)} served"


@scenario("message_rate", timeout=120)
async def sc_message_rate(ctx: Ctx) -> None:
    """One account sending as fast as it can gets message_rate_per_account (here burst 10, then 2/s); others are not slowed."""
    # Low enough that even a slow (sanitizer) build sends faster than the rate.
    await asyncio.to_thread(ctx.h.restart_component, {"message_rate_per_account": 2, "message_burst_per_account": 10})
    try:
        m = await ctx.client("mallory", "rate")
        enc = self_keyed(m)
        results: Dict[str, Any] = {}
        t0 = time.monotonic()
        for _ in range(6):  # windows of 10 stay below max_inflight_per_account: the rate is what answers
            window = [m.send_archive_message(enc)[0] for _ in range(10)]
            results.update(await outcomes(m, window, 30))
        elapsed = time.monotonic() - t0
        ok = [v for v in results.values() if isinstance(v, str)]
        limited = [v for v in results.values() if is_limit(v, "message_rate_per_account")]
        other = [v for v in results.values() if not isinstance(v, str) and not is_limit(v, "message_rate_per_account")]
        check(not other, f"unexpected answers: {other[:3]}")
        check(len(ok) >= 10, f"only {len(ok)} accepted: the burst was not granted")
        check(len(ok) <= 10 + 2 * elapsed + 1, f"{len(ok)} accepted in {elapsed:.1f}s: more than burst + rate")
        check(len(limited) == 60 - len(ok), f"{len(limited)} refused by the rate, {len(ok)} accepted of 60")
        a = await ctx.client("alice", "calm")
        await a.send_and_wait(self_keyed(a))
        check(metric(ctx, "multiend_limit_refusals_total", 'limit="message_rate_per_account"') >= len(limited),
              "refusals not counted in /metrics")
        ctx.note = f"{len(ok)} accepted, {len(limited)} refused in {elapsed:.1f}s"
    finally:
        await asyncio.to_thread(ctx.h.restart_component, None)


@scenario("mam_pipelined", timeout=120)
async def sc_mam_pipelined(ctx: Ctx) -> None:
    """30 pipelined max-size MAM queries on 40 × 60 KiB: 2 at a time, pages cut at 1 MiB, memory bounded."""
    c = await ctx.client("carol", "mam")
    enc = self_keyed(c)
    for _ in range(4):
        window = [c.send_archive_message(enc, extra=pad(60 * 1024))[0] for _ in range(10)]
        res = await outcomes(c, window, 30)
        check(all(isinstance(v, str) for v in res.values()), f"storing the messages: {list(res.values())[:3]}")
    queries = [new_id("mq") for _ in range(30)]
    answers = await pipelined_iqs(c, [(qid, c.mam_query_xml(qid, max_=250, iq_id=qid)) for qid in queries], 60)
    check(len(answers) == len(queries), f"{len(queries) - len(answers)} MAM queries got no answer")
    c.take(lambda s: s.mam_result is not None)
    fins = [s for s in answers.values() if s.type == "result"]
    refused = [s for s in answers.values() if s.type == "error" and is_limit(s.error, "max_mam_queries_per_account")]
    check(fins and refused and len(fins) + len(refused) == len(queries),
          f"{len(fins)} answered, {len(refused)} refused by max_mam_queries_per_account, of {len(queries)}")
    rss, hwm = component_memory(ctx)
    check(hwm < rss_limit_kib(ctx), f"component peak RSS {hwm // 1024} MiB")
    # Paging by bytes: every page under 1 MiB (~16 messages), and all 40 are reached.
    msgs, pages = await c.mam_all(max_=250)
    check(len(msgs) >= 40, f"paging found {len(msgs)} messages")
    check(len(pages) >= 3 and not pages[0].complete, f"{len(pages)} pages: the byte limit did not cut them")
    await still_serving(ctx, "after the MAM flood")
    ctx.note = f"{len(fins)} pages, {len(refused)} refused, {len(pages)} pages for 40+ messages; peak RSS {hwm // 1024} MiB"


@scenario("recipient_storm", timeout=180)
async def sc_recipient_storm(ctx: Ctx) -> None:
    """10 × 56 KiB messages to 100 recipients each (56 MB of fan-out) through a 4 MiB output buffer: paced."""
    t = await ctx.client("trent", "storm")
    b = await ctx.client("bob", "storm-rx")
    others = [("to", f"nobody{i}@{ctx.env.user_domain}") for i in range(98)] + [("to", b.bare)]
    enc = self_keyed(t)
    origins: List[str] = []
    t0 = time.monotonic()
    for _ in range(2):
        window = []
        for _ in range(5):
            mid, oid = t.send_archive_message(enc, addresses=others, extra=pad(56 * 1024))
            window.append(mid)
            origins.append(oid)
        res = await outcomes(t, window, 60)
        check(all(isinstance(v, str) for v in res.values()), f"storm messages refused: {list(res.values())[:2]}")
    got = set()
    deadline = time.monotonic() + 90
    while len(got) < len(origins) and time.monotonic() < deadline:
        for o in origins:
            if o not in got and b.take(b.is_fanout(origin_id=o)):
                got.add(o)
        await asyncio.sleep(0.1)
    elapsed = time.monotonic() - t0
    check(len(got) == len(origins), f"bob got {len(got)} of {len(origins)} fan-outs")
    _, hwm = component_memory(ctx)
    check(hwm < rss_limit_kib(ctx), f"component peak RSS {hwm // 1024} MiB")
    await still_serving(ctx, "after the storm")
    ctx.note = f"56 MB fan-out in {elapsed:.1f}s, peak RSS {hwm // 1024} MiB"


@scenario("prekey_draining", timeout=90)
async def sc_prekey_draining(ctx: Ctx) -> None:
    """10 resources of one account fetch erin's bundle: 5 fresh prekeys (prekey_claims_per_hour), then reuse."""
    a = await ctx.client("erin", "drain-owner")
    dev = 2_000_000 + random_device_id() % 1_000_000_000
    result_of(await a.publish_bundle(dev, synthetic_bundle(20)), "publish erin's bundle")
    result_of(await a.publish_device_list([dev]), "publish erin's list")
    before = (await a.prekey_counts())[dev][0]
    for i in range(10):
        m = await ctx.client("mallory", f"drain{i}")
        bundles = await m.fetch_bundles(a.bare)
        check(dev in bundles, f"resource {i} got no bundle for erin's device")
        await m.close()
    after = (await a.prekey_counts())[dev][0]
    taken = before - after
    check(taken <= 5, f"mallory's 10 resources took {taken} fresh prekeys (budget 5)")
    check(taken >= 1, "no prekey was claimed at all")
    check(metric(ctx, "multiend_limit_refusals_total", 'limit="prekey_claims_per_hour"') >= 1,
          "the last-resort answers are not counted in /metrics")
    # Another account is not affected by mallory's budget.
    o = await ctx.client("oscar", "fair")
    await o.fetch_bundles(a.bare)
    check((await a.prekey_counts())[dev][0] == after - 1, "another requester did not get a fresh prekey")
    ctx.note = f"10 fetches took {taken} fresh prekeys of {before}"


@scenario("publish_claim_race", timeout=90)
async def sc_publish_claim_race(ctx: Ctx) -> None:
    """An owner republishing its bundles while others claim them: no deadlock, every request answered."""
    owner = await ctx.client("carol", "race-owner")
    devs = [4_000_000 + random_device_id() % 1_000_000_000 + i for i in range(4)]
    for d in devs:
        result_of(await owner.publish_bundle(d, synthetic_bundle(30)), "publish")
    result_of(await owner.publish_device_list(devs), "publish the list")
    askers = [await ctx.client(u, f"race{i}") for i, u in enumerate(("oscar", "trent", "dave"))]
    failures: List[str] = []

    async def republish() -> None:
        for i in range(40):
            # Fresh prekey ids each time: the claimed rows are deleted while claims run.
            for d in devs:
                r = await owner.publish_bundle(d, synthetic_bundle(30, first_pk_id=1 + 100 * i))
                if r.type != "result":
                    failures.append(f"publish: {r.error}")

    async def claim(c: Client) -> None:
        for _ in range(40):
            r = await c.items(ctx.env.node_jid("carol"), NODE_BUNDLES)
            if r.type != "result":
                failures.append(f"claim: {r.error}")

    await asyncio.gather(republish(), *(claim(c) for c in askers))
    check(not failures, f"{len(failures)} requests failed, e.g. {failures[:3]}")


@scenario("in_doubt_commit", timeout=60)
async def sc_in_doubt_commit(ctx: Ctx) -> None:
    """A commit whose outcome is unknown is looked up and fanned out; unresolved, the resend delivers it."""
    a = await ctx.client("alice", "doubt")
    b = await ctx.client("bob", "doubt-rx")
    enc = self_keyed(a)
    # Resolved by the lookup: a receipt, and bob gets it live once.
    oid = "failpoint-in-doubt-" + uuid.uuid4().hex
    mid, _ = a.send_archive_message(enc, origin_id=oid, addresses=[("to", b.bare)])
    sid = await a.wait_receipt(mid, 15)
    await b.wait_message(b.is_fanout(origin_id=oid), 10, what="fan-out of the in-doubt message")
    # Unresolved (the lookup fails too): the sender is told to retry; its resend is the
    # duplicate of a message nobody got, which is then fanned out.
    oid2 = "failpoint-in-doubt-unresolved-" + uuid.uuid4().hex
    mid2, _ = a.send_archive_message(enc, origin_id=oid2, addresses=[("to", b.bare)])
    r = await a.wait_outcome(mid2, 15)
    check(isinstance(r, StanzaError) and r.type == "wait", f"unresolved in-doubt commit answered {r}")
    check(not b.take(b.is_fanout(origin_id=oid2)), "fanned out although the sender was told it failed")
    mid3, _ = a.send_archive_message(enc, origin_id=oid2, addresses=[("to", b.bare)])
    sid3 = await a.wait_receipt(mid3, 15)
    await b.wait_message(b.is_fanout(origin_id=oid2), 10, what="fan-out after the resend")
    n = psql(ctx, f"SELECT count(*) FROM messages WHERE origin_id IN ('{oid}', '{oid2}')")
    check(n == "2", f"{n} rows for the two messages")
    await asyncio.sleep(1.0)
    check(len(b.take(b.is_fanout(origin_id=oid))) == 0 and len(b.take(b.is_fanout(origin_id=oid2))) == 0,
          "a message was fanned out twice")
    ctx.note = f"stanza-ids {sid}, {sid3}"


@scenario("bad_row_in_a_batch", timeout=60)
async def sc_bad_row(ctx: Ctx) -> None:
    """A batch in which PostgreSQL refuses one row (failpoint): only that message fails, the rest are stored."""
    a = await ctx.client("alice", "badrow")
    enc = self_keyed(a)
    oids = [f"failpoint-bad-row-{uuid.uuid4().hex}" if i == 4 else uuid.uuid4().hex for i in range(10)]
    mids = [new_id("br") for _ in oids]
    # One write: the ten reach the group commit together and share a batch.
    a.send_raw("".join(archive_message(ctx.comp, enc, mid, oid) for mid, oid in zip(mids, oids)))
    res = await outcomes(a, mids, 30)
    failed = [i for i, mid in enumerate(mids) if not isinstance(res[mid], str)]
    check(failed == [4], f"failed: {failed} ({[res[mids[i]] for i in failed][:2]})")
    check(res[mids[4]].type == "wait", f"the refused message: {res[mids[4]]}")
    stored = psql(ctx, "SELECT count(*) FROM messages WHERE origin_id IN ('" + "', '".join(oids) + "')")
    check(stored == "9", f"{stored} of the 9 good messages stored")


@scenario("unicode_alias_one_archive", timeout=30)
async def sc_unicode_alias(ctx: Ctx) -> None:
    """Élodie@ and élodie@ (and e + combining accent) are one account: one archive, one coverage check."""
    a = await ctx.client("alice", "idn")
    d = ctx.env.user_domain
    enc = self_keyed(a)
    sids = []
    for name in ("\u00c9lodie", "\u00e9lodie", "e\u0301lodie"):
        _, _, sid = await a.send_and_wait(enc, addresses=[("to", f"{name}@{d}")])
        sids.append(sid)
    owners = psql(ctx, f"SELECT DISTINCT owner FROM archive WHERE message_id IN ({', '.join(sids)}) "
                       f"AND owner <> '{a.bare}' ORDER BY 1").splitlines()
    check(owners == [f"\u00e9lodie@{d}"], f"archives: {owners}")
    ctx.note = f"one archive: {owners[0]}"


@scenario("postgres_frozen", timeout=150)
async def sc_postgres_frozen(ctx: Ctx) -> None:
    """PostgreSQL frozen (SIGSTOP) for 30 s: requests fail within the timeout, /readyz 503 then 200, nothing lost."""
    a = await ctx.client("alice", "freeze")
    enc = self_keyed(a)
    _, before_oid, before_sid = await a.send_and_wait(enc)
    pg_pid = int((Path(ctx.env.raw["MULTIEND_PG_DATA"]) / "postmaster.pid").read_text().split()[0])
    pids = [pg_pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pg_pid)], capture_output=True,
                                                       text=True).stdout.split()]
    for p in pids:
        os.kill(p, signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        mid, oid = a.send_archive_message(enc)
        t0 = time.monotonic()
        r = await a.wait_outcome(mid, 30)
        took = time.monotonic() - t0
        check(isinstance(r, StanzaError) and r.type == "wait", f"a message while the database is frozen: {r}")
        check(took < 4 + 3 + 5, f"the sender waited {took:.1f}s for an answer (statement timeout 4 s + 3 s)")
        # Known down now: the next request fails fast, without waiting out another timeout.
        t1 = time.monotonic()
        page, err = await a.mam_query_raw(timeout=30, max_=5)
        fast = time.monotonic() - t1
        check(err is not None and err.type == "wait", f"a MAM query while frozen: {page} {err}")
        check(fast < 4, f"the next request waited {fast:.1f}s although the database was known to be down")
        await ctx.wait_readyz(False, 15, "database frozen")
        not_ready_after = time.monotonic() - frozen_at
        await asyncio.sleep(max(0.0, 30 - (time.monotonic() - frozen_at)))
    finally:
        for p in pids:
            try:
                os.kill(p, signal.SIGCONT)
            except ProcessLookupError:
                pass
    back = await ctx.wait_readyz(True, 30, "database thawed")
    # A client retries `wait`; right after the thaw it should not need to (the component takes
    # the first success as the end of the outage), but the test checks delivery, not timing.
    sid = (await resend_until_receipted(a, enc, [oid], 20))[oid]
    n = psql(ctx, f"SELECT count(*) FROM messages WHERE origin_id IN ('{before_oid}', '{oid}')")
    check(n == "2", f"{n} of the 2 messages are in the archive")
    check(sid != before_sid, "the resend got the earlier message's id")
    ctx.note = (f"error after {took:.1f}s, the next in {fast:.1f}s, /readyz 503 after {not_ready_after:.1f}s, "
                f"200 {back:.1f}s after SIGCONT")


@scenario("postgres_crash", timeout=150)
async def sc_postgres_crash(ctx: Ctx) -> None:
    """PostgreSQL stopped with --mode immediate (a crash) while 40 messages flow: receipted ones survive, the rest go in on resend."""
    d = await ctx.client("dave", "pgcrash")
    enc = self_keyed(d)
    sent: Dict[str, str] = {}  # origin-id -> msg id
    for i in range(40):
        mid, oid = d.send_archive_message(enc)
        sent[oid] = mid
        if i == 20:
            await ctx.testbed("stop-postgres", "--mode", "immediate")
        await asyncio.sleep(0.01)
    first = await outcomes(d, list(sent.values()), 30)
    receipted = {oid: first[mid] for oid, mid in sent.items() if isinstance(first[mid], str)}
    refused = [v for v in first.values() if not isinstance(v, str)]
    check(all(e.type == "wait" for e in refused), f"refusals while PostgreSQL was down: {refused[:3]}")
    check(refused, "no message was refused although PostgreSQL went down in the middle")
    await ctx.testbed("start-postgres")
    back = await ctx.wait_readyz(True, 40, "PostgreSQL restarted")
    pending = [oid for oid in sent if oid not in receipted]
    await resend_until_receipted(d, enc, pending, 60)
    oids = "', '".join(sent)
    rows = dict(line.split("|") for line in psql(ctx, f"SELECT origin_id, id FROM messages WHERE origin_id IN ('{oids}')").splitlines())
    check(len(rows) == 40, f"{len(rows)} of 40 messages archived")
    lost = [oid for oid, sid in receipted.items() if rows.get(oid) != sid]
    check(not lost, f"{len(lost)} receipted messages lost or renumbered by the crash")
    ctx.note = f"{len(receipted)} receipted before the crash, {len(pending)} resent; ready {back:.1f}s after the restart"


@scenario("kill9_under_traffic", timeout=150)
async def sc_kill9(ctx: Ctx) -> None:
    """kill -9 of the component while 60 messages flow; after a restart and resends, each is archived once and reaches bob."""
    a = await ctx.client("alice", "k9")
    b = await ctx.client("bob", "k9-rx")
    enc = self_keyed(a)
    sent: Dict[str, str] = {}  # origin-id -> msg id
    receipted: Dict[str, str] = {}
    for i in range(60):
        mid, oid = a.send_archive_message(enc, addresses=[("to", b.bare)])
        sent[oid] = mid
        if i == 30:
            os.killpg(ctx.h.proc.pid, signal.SIGKILL)
        await asyncio.sleep(0.01)
    await asyncio.sleep(1.0)
    for s in a.take(lambda s: s.receipt is not None):
        receipted[s.receipt[0]] = s.receipt[1]
    rc, _, _ = await asyncio.to_thread(ctx.h.stop_component)
    check(rc == -signal.SIGKILL, f"the component exited with {rc}, not by SIGKILL")
    await asyncio.to_thread(ctx.h.start_component, None)
    await asyncio.to_thread(ctx.h.wait_ready, 30.0)
    # The test resends everything it has no receipt for, as a client would.
    pending = [oid for oid, mid in sent.items() if mid not in receipted]
    await resend_until_receipted(a, enc, pending, 60, addresses=[("to", b.bare)])
    oids = "', '".join(sent)
    rows = psql(ctx, f"SELECT origin_id, count(*) FROM messages WHERE origin_id IN ('{oids}') GROUP BY 1")
    counts = dict(line.split("|") for line in rows.splitlines())
    check(len(counts) == 60 and all(c == "1" for c in counts.values()),
          f"{len(counts)} of 60 archived, duplicates: {[o for o, c in counts.items() if c != '1']}")
    got = set()
    deadline = time.monotonic() + 30
    while len(got) < 60 and time.monotonic() < deadline:
        for s in b.take(b.is_fanout()):
            got.add(inner_origin_id(s.forwarded))
        await asyncio.sleep(0.1)
    check(set(sent) <= got, f"bob got {len(set(sent) & got)} of 60 live")
    ctx.note = f"{len(receipted)} receipted before the kill, {len(pending)} resent"


@scenario("output_limit", timeout=120)
async def sc_output_limit(ctx: Ctx) -> None:
    """An answer over max_output_stanza_bytes becomes an error; the stream to the XMPP server stays up."""
    await asyncio.to_thread(ctx.h.restart_component, {"max_stanza_bytes": 4096, "max_output_stanza_bytes": 20480,
                                                       "batch_max_bytes": 1048576})
    try:
        owner = await ctx.client("trent", "wide")
        base = 3_000_000 + random_device_id() % 1_000_000_000
        bundle = synthetic_bundle(1)
        for i in range(64):
            result_of(await owner.publish_bundle(base + i, bundle), f"publish bundle {i + 1}")
        other = await ctx.client("oscar", "wide-asker")
        r = await other.items(ctx.env.node_jid("trent"), NODE_BUNDLES)
        check(r.type == "error" and r.error.type == "wait" and r.error.condition == "resource-constraint"
              and "max_output_stanza_bytes" in (r.error.text or ""), f"an all-bundles answer over 20 KiB: {r}")
        await still_serving(ctx, "after the oversized answer")
        check(metric(ctx, "multiend_limit_refusals_total", 'limit="max_output_stanza_bytes"') >= 1,
              "not counted in /metrics")
        r = await other.items(ctx.env.node_jid("trent"), NODE_BUNDLES, [str(base)])
        check(r.type == "result", f"one bundle of the same account: {r}")
    finally:
        await asyncio.to_thread(ctx.h.restart_component, None)


if __name__ == "__main__":
    os.environ["MULTIEND_TEST_FAILPOINT"] = "in-doubt-commit"
    sys.exit(main(scenario, __doc__, USERS, HOSTILE_CONFIG))
