#!/usr/bin/python3
"""Integration scenarios for the Multiend archive component (docs/protocol.md is the contract).

    /usr/bin/python3 tests/integration/test_component.py --component-cmd "build/server/multiend-archive --config {config}"

The script brings up a private testbed (deploy/testbed: PostgreSQL 15 + Prosody 0.12, or ejabberd 23.01
with ``--server ejabberd``, on free loopback ports), writes the component's JSON config from the testbed env,
starts CMD (``{config}`` is replaced by the config path; the environment carries every MULTIEND_* variable of
the testbed plus MULTIEND_COMPONENT_SECRET, MULTIEND_DATABASE_URL and MULTIEND_CONFIG), waits for GET /readyz = 200, runs
the scenarios, stops the component with SIGTERM and tears everything down, also on failure or Ctrl-C.

Output: one ``PASS name`` / ``FAIL name: reason`` line per scenario, then exactly ``N passed, M failed``.
Exit status 0 only if nothing failed. ``--list`` shows the scenarios, ``--only a,b`` / ``--skip a,b``
select some, ``--keep`` keeps the temp dir (testbed stopped, component log kept), ``-v`` prints tracebacks,
``--testbed-dir DIR`` uses a testbed that is already up (and leaves it up).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "support"))

from xmpp_client import (  # noqa: E402
    NODE_BUNDLES, NODE_DEVICES, NS_ARCHIVE, NS_DELAY, NS_FORWARD, NS_OMEMO, NS_PUBSUB,
    NS_PUBSUB_ERRORS, NS_SID, Client, Disconnected, Stanza, StanzaError, devices_xml, inner_encrypted, inner_origin_id, new_id, pubsub_iq, q, random_device_id,
    synthetic_bundle, synthetic_encrypted,
)

REPO = HERE.parent.parent
USERS = "alice bob carol dave eve frank grace heidi ivan judy mallory oscar trent"

# Config keys beyond the brief's minimum, each needed by a scenario:
#   max_stanza_bytes: the oversized-stanza scenario sends ~100 KiB, which Prosody's c2s limit (256 KiB) lets
#     through, so the component's own limit is what answers;
#   reconnect_max_backoff_seconds: the Prosody-restart scenario waits for the reconnect within its budget.
TEST_CONFIG_EXTRA: Dict[str, Any] = {"max_stanza_bytes": 65536, "reconnect_max_backoff_seconds": 2,
                                     "max_subscriptions_per_owner": 40, "max_subscriptions_per_subscriber": 30}
OVERSIZE_BYTES = 100 * 1024

from component_harness import (  # noqa: E402
    Ctx, Registry, check, expect_error, expect_error_in, is_decimal, main, result_of, wait_receipts,
)

scenario = Registry()


@scenario("disco_info")
async def sc_disco(ctx: Ctx) -> None:
    """disco#info of the component and of a user's node JID."""
    a = await ctx.client("alice")
    ids, feats = await a.disco_info(ctx.comp)
    check(("component", "archive") in ids, f"component identities {ids} lack component/archive")
    for f in ("urn:xmpp:mam:2", "urn:xmpp:mam:2#extended", "urn:xmpp:sid:0", "urn:xmpp:receipts", NS_ARCHIVE):
        check(f in feats, f"component features lack {f}: {feats}")
    ids, feats = await a.disco_info(ctx.env.node_jid("bob"))
    check(("pubsub", "pep") in ids, f"node JID identities {ids} lack pubsub/pep")
    check("http://jabber.org/protocol/pubsub#publish-options" in feats,
          f"node JID features lack pubsub#publish-options (OMEMO clients check it): {feats}")


@scenario("publish_retrieve")
async def sc_publish_retrieve(ctx: Ctx) -> None:
    """device list and bundles: publish, fetch (one claimed pk, twomemo-valid), retract, replace."""
    from twomemo_peer import bundle_info
    a, b = await ctx.clients_for(("alice", "a1"), ("bob", "b1"))
    d1, d2 = await ctx.device(a), await ctx.device(a)
    result_of(await a.publish_bundle(d1.device_id, await d1.bundle_xml()), "publish bundle 1")
    result_of(await a.publish_bundle(d2.device_id, await d2.bundle_xml()), "publish bundle 2")
    result_of(await a.publish_device_list([d1.device_id, d2.device_id]), "publish device list")
    got = await b.fetch_device_list("alice")
    check(sorted(got) == sorted([d1.device_id, d2.device_id]), f"device list {got} != published")

    own = await d1.peer.bundle()
    bi = await b.fetch_bundle("alice", d1.device_id)
    check(len(bi.pk_ids) == 1, f"bundle fetch returned {len(bi.pk_ids)} <pk>, want exactly 1")
    spk_id, ik, pks = bundle_info(bi.xml)                      # twomemo's schema accepts it
    check(ik == own.identity_key, "served ik differs from the published one")
    check(spk_id == own.signed_pre_key_id, "served spk id differs")
    check(list(pks)[0] in own.pre_key_ids.values(), f"served pk id {list(pks)[0]} was never published")

    allb = await b.fetch_bundles("alice")
    check(set(allb) == {d1.device_id, d2.device_id}, f"all-bundles fetch gave devices {sorted(allb)}")
    check(all(len(x.pk_ids) == 1 for x in allb.values()), "all-bundles fetch: not exactly one pk per device")

    unknown = next(i for i in iter(random_device_id, None) if i not in (d1.device_id, d2.device_id))
    expect_error((await b.items("alice", NODE_BUNDLES, [str(unknown)])).error, "cancel", "item-not-found",
                 "unknown bundle item")
    expect_error((await b.items("oscar", NODE_DEVICES)).error, "cancel", "item-not-found",
                 "device list of a user without devices")

    result_of(await a.retract_bundle(d2.device_id), "retract bundle 2")
    got = await b.fetch_device_list("alice")
    check(got == [d1.device_id], f"after retract the device list is {got}, want [{d1.device_id}]")
    expect_error((await b.items("alice", NODE_BUNDLES, [str(d2.device_id)])).error, "cancel", "item-not-found",
                 "retracted bundle")

    # replacing the list removes devices missing from it (with their bundles)
    d3 = await ctx.device(a)
    result_of(await a.publish_bundle(d3.device_id, await d3.bundle_xml()), "publish bundle 3")
    check(sorted(await b.fetch_device_list("alice")) == sorted([d1.device_id, d3.device_id]),
          "bundle publish did not add the device to the list")
    result_of(await a.publish_device_list([d3.device_id]), "replace device list")
    check(await b.fetch_device_list("alice") == [d3.device_id], "device list not replaced")
    expect_error((await b.items("alice", NODE_BUNDLES, [str(d1.device_id)])).error, "cancel", "item-not-found",
                 "bundle of a device dropped from the list")
    expect_error((await a.publish_device_list([])).error, "modify", "bad-request", "empty device list")

    # publish-options
    err = (await a.publish_bundle(d3.device_id, await d3.bundle_xml(),
                                  options={"pubsub#access_model": "presence"})).error
    expect_error(err, "cancel", "conflict", "publish-options access_model=presence")
    check(err.has_app(NS_PUBSUB_ERRORS, "precondition-not-met"), f"conflict without precondition-not-met: {err}")
    result_of(await a.publish_bundle(d3.device_id, await d3.bundle_xml(),
                                     options={"pubsub#persist_items": "true", "pubsub#max_items": "max",
                                              "pubsub#access_model": "open"}), "publish with persist_items")
    result_of(await a.publish_bundle(d3.device_id, await d3.bundle_xml(), options=None), "publish without options")


@scenario("concurrent_device_registration")
async def sc_concurrent_registration(ctx: Ctx) -> None:
    """two devices of one user publishing bundles at once both end up in the list."""
    e1, e2, obs = await ctx.clients_for(("eve", "e1"), ("eve", "e2"), ("carol", "obs"))
    base = random_device_id()
    await ctx.set_devices(e1, [(base, synthetic_bundle(30))])
    for rnd in range(8):
        x, y = random_device_id(), random_device_id()
        bx, by = synthetic_bundle(30), synthetic_bundle(30)
        rx, ry = await asyncio.gather(e1.publish_bundle(x, bx), e2.publish_bundle(y, by))
        result_of(rx, f"round {rnd}: publish from e1")
        result_of(ry, f"round {rnd}: publish from e2")
        got = set(await obs.fetch_device_list("eve"))
        check({base, x, y} <= got, f"round {rnd}: device list {sorted(got)} lacks some of {sorted({base, x, y})}")
        result_of(await e1.publish_device_list([base]), "reset list")


@scenario("prekey_claims")
async def sc_prekey_claims(ctx: Ctx) -> None:
    """parallel requesters never share a prekey; the same full JID retrying gets the same one."""
    owner = await ctx.client("dave", "d1")
    d1, d2 = random_device_id(), random_device_id()
    await ctx.set_devices(owner, [(d1, synthetic_bundle(100)), (d2, synthetic_bundle(100, first_pk_id=500))])
    reqs = await ctx.clients_for(*[("carol", f"c{i}") for i in range(4)], *[("eve", f"e{i}") for i in range(4)])
    got = await asyncio.gather(*(r.fetch_bundle("dave", d1) for r in reqs))
    pks = [g.pk_ids for g in got]
    check(all(len(p) == 1 for p in pks), f"not exactly one pk per fetch: {pks}")
    flat = [p[0] for p in pks]
    check(len(set(flat)) == len(flat), f"two requesters got the same prekey: {flat}")
    # all-bundles fetch in parallel: per device, distinct across requesters and from the single fetches
    allb = await asyncio.gather(*(r.fetch_bundles("dave") for r in reqs[:4]))
    for dev in (d1, d2):
        ids = [b[dev].pk_ids[0] for b in allb]
        check(len(set(ids)) == len(ids), f"all-bundles fetch: device {dev} handed out a prekey twice: {ids}")
    # retry from the same full JID: same prekey (single and all-bundles)
    again = await reqs[0].fetch_bundle("dave", d1)
    check(again.pk_ids == pks[0], f"same full JID got {again.pk_ids} on retry, first {pks[0]}")
    allb_again = await reqs[1].fetch_bundles("dave")
    check(allb_again[d2].pk_ids == allb[1][d2].pk_ids, "all-bundles retry from the same JID changed the prekey")
    other = await (await ctx.client("carol", "c-late")).fetch_bundle("dave", d1)
    check(other.pk_ids[0] not in flat, f"a new requester got an already claimed prekey {other.pk_ids}")
    # the owner's other device is a requester like any other
    own_other = await (await ctx.client("dave", "d2")).fetch_bundle("dave", d1)
    check(own_other.pk_ids[0] not in flat + other.pk_ids, "the owner's other device got a claimed prekey")


@scenario("prekeys_low_and_count")
async def sc_prekeys_low(ctx: Ctx) -> None:
    """count query; a prekeys-low headline once the device drops below 25; replace keeps claim state."""
    owner, owner2 = await ctx.clients_for(("dave", "d1"), ("dave", "d2"))
    low = random_device_id()
    await ctx.set_devices(owner, [(low, synthetic_bundle(26, first_pk_id=1))])
    counts = await owner.prekey_counts()
    check(counts.get(low) == (26, 26), f"fresh device count {counts.get(low)}, want (26, 26)")
    r1, r2, r3 = await ctx.clients_for(("eve", "x1"), ("eve", "x2"), ("eve", "x3"))
    first = await r1.fetch_bundle("dave", low)
    check(owner.take(lambda s: s.prekeys_low is not None) == [], "prekeys-low sent at 25 remaining")
    await r2.fetch_bundle("dave", low)
    for c in (owner, owner2):         # headline to the bare JID reaches every resource
        s = await c.wait_message(lambda s: s.prekeys_low is not None and s.prekeys_low[0] == low, 5,
                                 what="prekeys-low headline")
        check(s.prekeys_low == (low, 24), f"prekeys-low says {s.prekeys_low}, want ({low}, 24)")
        check(s.type == "headline" and s.from_ == ctx.comp, f"prekeys-low not a headline from the component: {s!r}")
    counts = await owner.prekey_counts()
    check(counts.get(low) == (24, 26), f"count after two claims {counts.get(low)}, want (24, 26)")
    await r3.fetch_bundle("dave", low)
    extra = await owner.collect(lambda s: s.prekeys_low is not None and s.prekeys_low[0] == low, 1.5)
    check(not extra, "a second prekeys-low headline for the same device within the hour")
    # republish with a subset: absent prekeys are deleted, present ones keep their claim state
    keep_claimed = first.pk_ids[0]
    b = synthetic_bundle(0)
    pks = "".join(f"<pk id='{i}'>{base64.b64encode(os.urandom(32)).decode()}</pk>"
                  for i in range(1, 27) if i == keep_claimed or i > 16)
    b = b.replace("<prekeys></prekeys>", f"<prekeys>{pks}</prekeys>")
    result_of(await owner.publish_bundle(low, b), "republish with fewer prekeys")
    total = 10 + (1 if keep_claimed <= 16 else 0)
    counts = await owner.prekey_counts()
    check(counts.get(low, (None, None))[1] == total, f"total after replace {counts.get(low)}, want {total}")
    check(counts[low][0] < total, f"the kept claimed prekey {keep_claimed} counts as unclaimed again: {counts[low]}")


@scenario("identity_query")
async def sc_identity(ctx: Ctx) -> None:
    """identity query returns each device's ik and claims nothing."""
    owner = await ctx.client("dave", "d1")
    devs = [await ctx.device(owner, n=30), await ctx.device(owner, n=30)]
    await ctx.set_twomemo_devices(owner, devs)
    before = await owner.prekey_counts()
    asker = await ctx.client("carol", "ik")
    ids = await asker.identity("dave")
    for d in devs:
        want = (await d.peer.bundle()).identity_key
        check(ids.get(d.device_id) == want, f"identity of {d.device_id}: {ids.get(d.device_id)!r} != bundle ik")
    check(set(ids) == {d.device_id for d in devs}, f"identity lists devices {sorted(ids)}")
    one = await asker.identity("dave", devs[1].device_id)
    check(set(one) == {devs[1].device_id}, f"identity with device= returned {sorted(one)}")
    after = await owner.prekey_counts()
    for d in devs:
        check(after[d.device_id] == before[d.device_id], f"identity query changed prekey counts of {d.device_id}")


@scenario("device_list_notifications")
async def sc_notifications(ctx: Ctx) -> None:
    """subscribers and the owner get a pubsub event when the device list changes."""
    owner, owner2, sub = await ctx.clients_for(("carol", "c1"), ("carol", "c2"), ("dave", "watch"))
    base = random_device_id()
    await ctx.set_devices(owner, [(base, synthetic_bundle(30))])
    result_of(await sub.subscribe("carol"), "subscribe to carol's devices node")
    owner.drain(), owner2.drain(), sub.drain()
    new = random_device_id()
    result_of(await owner.publish_bundle(new, synthetic_bundle(30)), "publish a new device")

    def event_with(dev: int) -> Callable[[Stanza], bool]:
        def pred(s: Stanza) -> bool:
            items = s.pubsub_event_items
            if items is None or items.get("node") != NODE_DEVICES:
                return False
            it = items.find(q("http://jabber.org/protocol/pubsub#event", "item"))
            devs = it.find(q(NS_OMEMO, "devices")) if it is not None else None
            ids = [int(d.get("id")) for d in devs.findall(q(NS_OMEMO, "device"))] if devs is not None else []
            return dev in ids and base in ids and s.from_ == ctx.env.node_jid("carol")
        return pred
    for c in (sub, owner, owner2):
        s = await c.wait_message(event_with(new), 5, what="device list event")
        check(s.type == "headline", f"event is not a headline: {s!r}")


@scenario("device_flood", timeout=90)
async def sc_device_flood(ctx: Ctx) -> None:
    """An account gets at most max_devices_per_account (64) devices; its all-bundles answer stays small."""
    owner = await ctx.client("trent", "flood")
    base = 1_000_000 + random_device_id() % 1_000_000_000
    bundle = synthetic_bundle(100)
    for i in range(64):
        result_of(await owner.publish_bundle(base + i, bundle), f"publish bundle {i + 1} of 64")
    r = await owner.publish_bundle(base + 64, bundle)
    check(r.type == "error" and r.error.condition == "policy-violation" and r.error.type == "modify"
          and "max_devices_per_account" in (r.error.text or ""), f"the 65th device: {r}")
    result_of(await owner.publish_bundle(base + 3, bundle), "republish a known device at the limit")
    r = await owner.publish_device_list([base + i for i in range(65)])
    check(r.type == "error" and r.error.condition == "policy-violation", f"a device list of 65: {r}")
    # One request for every bundle of the full account: one claimed prekey each, far below the
    # stanza limit, and the stream stays up (1,700 devices used to end it).
    other = await ctx.client("frank", "asker")
    r = await other.items(ctx.env.node_jid("trent"), NODE_BUNDLES)
    size = len(ET.tostring(r.el))
    items = r.find((NS_PUBSUB, "pubsub"), (NS_PUBSUB, "items"))
    got = [] if items is None else items.findall(q(NS_PUBSUB, "item"))
    check(r.type == "result" and len(got) == 64, f"all bundles: {r.type}, {len(got)} items")
    check(size < 64 * 1024, f"the all-bundles answer of a full account is {size} bytes")
    ids, _ = await other.disco_info(ctx.comp)
    check(("component", "archive") in ids, "the component stopped answering after the all-bundles answer")
    body = urllib.request.urlopen(f"http://{ctx.h.http_address}/metrics", timeout=5).read().decode()
    m = re.search(r'^multiend_limit_refusals_total\{limit="max_devices_per_account"\} (\d+)', body, re.M)
    check(m is not None and int(m.group(1)) >= 2, "refusals not counted in /metrics")
    ctx.note = f"all-bundles answer of 64 devices: {size} bytes"


@scenario("process_metrics", timeout=30)
async def sc_process_metrics(ctx: Ctx) -> None:
    """/metrics carries the standard process_* figures (read from /proc at the scrape) and
    multiend_build_info with the version --version prints."""
    body = urllib.request.urlopen(f"http://{ctx.h.http_address}/metrics", timeout=5).read().decode()

    def value(name: str) -> float:
        m = re.search(rf"^{name} (\S+)$", body, re.M)
        check(m is not None, f"{name} missing from /metrics")
        return float(m.group(1))

    pid = ctx.h.proc.pid
    status = Path(f"/proc/{pid}/status").read_text()
    vm_rss = int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) * 1024
    rss = value("process_resident_memory_bytes")
    check(0.5 * vm_rss < rss < 2 * vm_rss, f"process_resident_memory_bytes {rss:.0f}, /proc says {vm_rss}")
    fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    check(abs(value("process_open_fds") - fds) <= 3, f"process_open_fds {value('process_open_fds')}, /proc has {fds}")
    check(value("process_max_fds") >= 1024, "process_max_fds")
    check(0 <= time.time() - value("process_start_time_seconds") < 3600, "process_start_time_seconds is not recent")
    check(value("process_cpu_seconds_total") > 0, "process_cpu_seconds_total")
    check(value("process_virtual_memory_bytes") >= rss, "process_virtual_memory_bytes")
    out = subprocess.run([shlex.split(ctx.h.args.component_cmd)[0], "--version"], capture_output=True, text=True, timeout=10)
    check(out.returncode == 0, f"--version exited {out.returncode}")
    version = out.stdout.split()[1]
    check(re.search(rf'^multiend_build_info\{{version="{re.escape(version)}",revision="[0-9a-f]+|unknown"\}} 1$', body, re.M)
          is not None, f"multiend_build_info does not say version {version}")
    ctx.note = f"RSS {rss / 2**20:.1f} MiB, {fds} fds"


@scenario("subscription_flood", timeout=60)
async def sc_subscription_flood(ctx: Ctx) -> None:
    """Device-list subscriptions are capped per subscriber account and per owner (test config 30 / 40)."""
    sub = await ctx.client("oscar", "subs")
    node = ctx.env.node_jid("trent")

    async def subscribe(c: Client, resource: str) -> Stanza:
        inner = f"<subscribe node='{NODE_DEVICES}' jid='{c.bare}/{resource}'/>"
        return await c.iq(pubsub_iq("set", node, inner))

    for i in range(30):
        result_of(await subscribe(sub, f"invented{i}"), f"subscription {i + 1} of 30")
    result_of(await subscribe(sub, "invented5"), "the same subscription again")
    r = await subscribe(sub, "invented30")
    check(r.type == "error" and r.error.condition == "policy-violation"
          and "max_subscriptions_per_subscriber" in (r.error.text or ""), f"the 31st subscription: {r}")
    # Another account fills the owner's side: 10 more fit, then the owner is full.
    other = await ctx.client("judy", "subs")
    for i in range(10):
        result_of(await subscribe(other, f"r{i}"), f"judy's subscription {i + 1}")
    r = await subscribe(other, "r10")
    check(r.type == "error" and r.error.condition == "policy-violation"
          and "max_subscriptions_per_owner" in (r.error.text or ""), f"the owner's 41st subscriber: {r}")
    n = int(subprocess.run(["psql", ctx.h.env.pg_url, "-tAc",
                            f"SELECT count(*) FROM subscriptions WHERE owner = 'trent@{ctx.env.user_domain}'"],
                           capture_output=True, text=True, timeout=30).stdout.strip())
    check(n == 40, f"{n} subscriptions stored for the owner")


@scenario("coverage_check")
async def sc_coverage(ctx: Ctx) -> None:
    """a message missing a device is refused with missing-devices, nothing stored; resend after fetching."""
    a1, a2, b1, b2 = await ctx.clients_for(("alice", "a1"), ("alice", "a2"), ("bob", "b1"), ("bob", "b2"))
    A1, A2, B1, B2 = (await ctx.device(a1), await ctx.device(a2), await ctx.device(b1), await ctx.device(b2))
    await ctx.set_twomemo_devices(a1, [A1, A2])
    await ctx.set_twomemo_devices(b1, [B1, B2])
    count0 = await ctx.mam_count(a1, with_=b1.bare)
    origin = uuid.uuid4().hex

    enc = await A1.encrypt(b"hello bob", [(b1.bare, B1.device_id), (a1.bare, A2.device_id)])
    mid, _ = a1.send_archive_message(enc, origin_id=origin)
    err = await a1.wait_outcome(mid)
    check(isinstance(err, StanzaError), f"message missing bob's device {B2.device_id} was accepted ({err})")
    expect_error(err, "modify", "not-acceptable", "coverage check")
    check(err.missing_devices == [(b1.bare, B2.device_id)], f"missing-devices {err.missing_devices}, "
          f"want [({b1.bare}, {B2.device_id})]")
    check(err.stanza.to == a1.jid, f"error went to {err.stanza.to}, not the sending resource")

    enc = await A1.encrypt(b"hello bob", [(b1.bare, B1.device_id), (b1.bare, B2.device_id)])
    mid, _ = a1.send_archive_message(enc, origin_id=origin)
    err = await a1.wait_outcome(mid)
    check(isinstance(err, StanzaError), "message missing the sender's own other device was accepted")
    check(err.missing_devices == [(a1.bare, A2.device_id)], f"missing-devices {err.missing_devices}, "
          f"want the sender's other device ({a1.bare}, {A2.device_id})")
    check(await ctx.mam_count(a1, with_=b1.bare) == count0, "a refused message was archived")
    for c in (b1, b2, a2):
        check(not c.take(c.is_fanout(origin_id=origin)), f"{c.jid} got a refused message")

    enc = await A1.encrypt(b"hello bob", [(b1.bare, B1.device_id), (b1.bare, B2.device_id),
                                          (a1.bare, A2.device_id)])
    mid, _ = a1.send_archive_message(enc, origin_id=origin)
    sid = await a1.wait_receipt(mid)
    for c, dev in ((b1, B1), (b2, B2), (a2, A2)):
        s = await c.wait_message(c.is_fanout(stanza_id=sid), 5, what="fan-out of the resent message")
        pt = await dev.decrypt(inner_encrypted(s.forwarded), a1.bare)
        check(pt == b"hello bob", f"{c.jid} decrypted {pt!r}")
    check(await ctx.mam_count(a1, with_=b1.bare) == count0 + 1, "archive count did not grow by exactly one")


@scenario("receipt_after_commit")
async def sc_receipt(ctx: Ctx) -> None:
    """the receipt carries the stanza-id, goes to the sending full JID, and the message is already in MAM."""
    a1, b1 = await ctx.clients_for(("alice", "a1"), ("bob", "b1"))
    A1, B1 = await ctx.device(a1), await ctx.device(b1)
    await ctx.set_twomemo_devices(a1, [A1])
    await ctx.set_twomemo_devices(b1, [B1])
    sids = []
    for i in range(5):
        enc = await A1.encrypt(f"msg {i}".encode(), [(b1.bare, B1.device_id)])
        mid, origin = a1.send_archive_message(enc)
        s = await a1.wait_message(lambda s: a1.is_receipt_for(mid)(s) or a1.is_error_for(mid)(s), 10,
                                  what="receipt")
        check(s.type != "error", f"message {i} bounced: {s.error}")
        check(s.type == "headline" and s.from_ == ctx.comp, f"receipt not a headline from the component: {s!r}")
        check(s.to == a1.jid, f"receipt addressed to {s.to}, want the sender's full JID {a1.jid}")
        sid_el = s.child(NS_SID, "stanza-id")
        check(sid_el is not None and sid_el.get("by") == ctx.comp, f"receipt stanza-id lacks by='{ctx.comp}': {s!r}")
        sid = sid_el.get("id")
        check(is_decimal(sid), f"stanza-id {sid!r} is not a decimal string")
        page = await a1.mam_query(with_=b1.bare, before="", max_=5)
        found = [m for m in page.messages if m.result_id == sid]
        check(found, f"message {i} (stanza-id {sid}) not in MAM right after its receipt")
        check(found[0].msg_id == mid and found[0].origin_id == origin, "MAM copy has another id/origin-id")
        sids.append(sid)
    check(sids == sorted(sids, key=int) and len(set(sids)) == 5, f"stanza-ids do not grow: {sids}")


@scenario("resend_same_origin_id")
async def sc_resend(ctx: Ctx) -> None:
    """a resend with the same origin-id gets the original stanza-id and is not stored or delivered again."""
    a1, b1 = await ctx.clients_for(("alice", "a1"), ("bob", "b1"))
    A1, B1 = await ctx.device(a1), await ctx.device(b1)
    await ctx.set_twomemo_devices(a1, [A1])
    await ctx.set_twomemo_devices(b1, [B1])
    count0 = await ctx.mam_count(a1, with_=b1.bare)
    enc = await A1.encrypt(b"once", [(b1.bare, B1.device_id)])
    origin = uuid.uuid4().hex
    _, _, sid = await a1.send_and_wait(enc, origin_id=origin)
    await b1.wait_message(b1.is_fanout(stanza_id=sid), 5, what="first fan-out")
    mid2, _ = a1.send_archive_message(enc, origin_id=origin)
    s = await a1.wait_message(lambda s: a1.is_receipt_for(mid2)(s) or a1.is_error_for(mid2)(s), 10,
                              what="receipt of the resend")
    check(s.type != "error", f"resend bounced: {s.error}")
    check(s.receipt == (mid2, sid), f"resend receipt {s.receipt}, want ({mid2}, {sid})")
    dup = await b1.collect(b1.is_fanout(origin_id=origin), 1.5)
    check(not dup, f"the resend was delivered again ({len(dup)} copies)")
    check(await ctx.mam_count(a1, with_=b1.bare) == count0 + 1, "the resend was archived again")
    # the same origin-id from another account is another message
    b_enc = synthetic_encrypted(B1.device_id, {a1.bare: [A1.device_id]})
    _, _, sid_b = await b1.send_and_wait(b_enc, origin_id=origin)
    check(sid_b != sid, "the same origin-id from another account was treated as a resend")


@scenario("fanout_all_resources")
async def sc_fanout(ctx: Ctx) -> None:
    """one headline per online resource of each recipient and of the sender; XEP-0033 cc; real decryption."""
    a1, a2, b1, b2, c1, c2, o1 = await ctx.clients_for(("alice", "a1"), ("alice", "a2"), ("bob", "b1"),
                                                       ("bob", "b2"), ("carol", "c1"), ("carol", "c2"),
                                                       ("oscar", "o1"))
    devs = {}
    for c in (a1, a2, b1, b2, c1, c2):
        devs[c] = await ctx.device(c)
    await ctx.set_twomemo_devices(a1, [devs[a1], devs[a2]])
    await ctx.set_twomemo_devices(b1, [devs[b1], devs[b2]])
    await ctx.set_twomemo_devices(c1, [devs[c1], devs[c2]])
    targets = [(c.bare, devs[c].device_id) for c in (a2, b1, b2, c1, c2)]
    enc = await devs[a1].encrypt(b"to everyone", targets)
    mid, origin, sid = await a1.send_and_wait(enc, addresses=[("cc", o1.bare)])
    for c in (a1, a2, b1, b2, c1, c2, o1):
        s = await c.wait_message(c.is_fanout(stanza_id=sid), 5, what="fan-out headline")
        check(s.type == "headline", f"{c.jid}: fan-out type {s.type}")
        fw = s.child(NS_FORWARD, "forwarded")
        inner = s.forwarded
        check(inner.get("from") == a1.jid, f"{c.jid}: forwarded from {inner.get('from')}, want {a1.jid}")
        check(inner.get("id") == mid and inner_origin_id(inner) == origin, f"{c.jid}: forwarded id/origin-id differ")
        check(fw.find(q(NS_DELAY, "delay")) is not None, f"{c.jid}: forwarded without <delay>")
        if c in devs and c is not a1:
            pt = await devs[c].decrypt(inner_encrypted(inner), a1.bare)
            check(pt == b"to everyone", f"{c.jid} decrypted {pt!r}")
    await asyncio.sleep(1.5)
    for c in (a1, a2, b1, b2, c1, c2, o1):
        dup = c.take(c.is_fanout(stanza_id=sid))
        check(not dup, f"{c.jid} got the message {len(dup) + 1} times")


@scenario("empty_message_header_only")
async def sc_empty(ctx: Ctx) -> None:
    """an empty OMEMO message skips the coverage check and goes only to the JIDs its header names."""
    a1, a2, b1, b2, c1 = await ctx.clients_for(("alice", "a1"), ("alice", "a2"), ("bob", "b1"), ("bob", "b2"),
                                               ("carol", "c1"))
    A1, A2, B1, B2 = (await ctx.device(a1), await ctx.device(a2), await ctx.device(b1), await ctx.device(b2))
    await ctx.set_twomemo_devices(a1, [A1, A2])
    await ctx.set_twomemo_devices(b1, [B1, B2])
    enc = await A1.encrypt(None, [(b1.bare, B1.device_id)])        # not B2, not A2: exempt
    check("<payload" not in enc, "twomemo made a payload for an empty message")
    _, origin, sid = await a1.send_and_wait(enc, addresses=[("cc", c1.bare)])
    got = {c: await c.wait_message(c.is_fanout(stanza_id=sid), 5, what="empty message") for c in (b1, b2)}
    pt = await B1.decrypt(inner_encrypted(got[b1].forwarded), a1.bare)
    check(pt is None, "empty message decrypted to content")
    await asyncio.sleep(1.0)
    for c in (c1, a1, a2):
        got = c.take(c.is_fanout(origin_id=origin))
        check(not got, f"{c.jid} (not named in the header) got the empty message")


@scenario("mam_paging", timeout=90)
async def sc_mam(ctx: Ctx) -> None:
    """300 messages: max 50 pages, complete only at the end, after/before, after-id/before-id, ids, with, count."""
    f1, g1, h1 = await ctx.clients_for(("frank", "f1"), ("grace", "g1"), ("heidi", "h1"))
    F, G, H = random_device_id(), random_device_id(), random_device_id()
    await ctx.set_devices(f1, [(F, synthetic_bundle(30))])
    await ctx.set_devices(g1, [(G, synthetic_bundle(30))])
    await ctx.set_devices(h1, [(H, synthetic_bundle(30))])
    enc = synthetic_encrypted(F, {g1.bare: [G]})
    # everything below is scoped to after this marker, so a reused testbed's older messages do not count
    _, _, marker = await f1.send_and_wait(enc)
    scope = dict(with_=f1.bare, after_id=marker)
    n = 300
    mids = [f"p{i:03d}-{new_id()[:6]}" for i in range(n)]
    got: Dict[str, Any] = {}
    # Windows of 100: one account may have max_inflight_per_account (256) stanzas in flight.
    for w in range(0, n, 100):
        for m in mids[w:w + 100]:
            f1.send_archive_message(enc, msg_id=m)
        got.update(await wait_receipts(f1, mids[w:w + 100], 45))
    bad = {m: v for m, v in got.items() if not isinstance(v, str)}
    check(not bad, f"{len(bad)} messages bounced, e.g. {next(iter(bad.values())) if bad else ''}")
    check(len(got) == n, f"only {len(got)} of {n} receipts arrived")
    sids = [got[m] for m in mids]
    check(len(set(sids)) == n, "duplicate stanza-ids")
    enc_h = synthetic_encrypted(H, {g1.bare: [G]})
    hm = [h1.send_archive_message(enc_h)[0] for _ in range(20)]
    check(len(await wait_receipts(h1, hm, 15)) == 20, "heidi's receipts missing")

    # count via max 0, with and without filter
    check(await ctx.mam_count(g1, **scope) == n, "count with=frank")
    check(await ctx.mam_count(g1, with_=h1.bare, after_id=marker) == 20, "count with=heidi")
    check(await ctx.mam_count(g1, after_id=marker) == n + 20, "count of grace's whole archive")
    check(await ctx.mam_count(f1, with_=g1.bare, after_id=marker) == n, "frank sees his sent messages")

    # forward paging, max 50
    msgs, pages = await g1.mam_all(max_=50, **scope)
    check(len(pages) == 6, f"{len(pages)} pages of max 50 for {n} messages, want 6")
    check([len(p.messages) for p in pages] == [50] * 6, f"page sizes {[len(p.messages) for p in pages]}")
    check([p.complete for p in pages] == [False] * 5 + [True], f"complete flags {[p.complete for p in pages]}")
    for p in pages:
        check(p.first == p.messages[0].result_id and p.last == p.messages[-1].result_id,
              "RSM first/last differ from the page's ids")
    check([m.result_id for m in msgs] == sids, "forward paging does not give the messages in send order")
    check([m.msg_id for m in msgs] == mids, "archived message ids differ from the sent ones")
    check(all(m.sender == f1.jid for m in msgs), "archived from differs from the sender's full JID")
    # uneven pages
    _, pages = await g1.mam_all(max_=70, **scope)
    check([len(p.messages) for p in pages] == [70, 70, 70, 70, 20], f"max 70 page sizes {[len(p.messages) for p in pages]}")
    check([p.complete for p in pages] == [False] * 4 + [True], f"max 70 complete flags {[p.complete for p in pages]}")
    # default max is 50
    page = await g1.mam_query(**scope)
    check(len(page.messages) == 50 and not page.complete, f"default page has {len(page.messages)} messages")
    # last page via <before/>, then backwards
    page = await g1.mam_query(**scope, max_=50, before="")
    check(page.ids == sids[-50:], "<before/> is not the last page")
    back, steps = list(page.messages), 1
    while not page.complete:
        page = await g1.mam_query(**scope, max_=50, before=page.first)
        back[:0] = page.messages
        steps += 1
        check(steps <= 10, "backward paging never completes")
    check([m.result_id for m in back] == sids and steps == 6, f"backward paging: {steps} pages, order ok="
          f"{[m.result_id for m in back] == sids}")
    # RSM after/before ids
    page = await g1.mam_query(**scope, max_=10, after=sids[149])
    check(page.ids == sids[150:160], "RSM after")
    page = await g1.mam_query(**scope, max_=10, before=sids[150])
    check(page.ids == sids[140:150], "RSM before")
    page = await g1.mam_query(**scope, max_=50, after=sids[-3])
    check(page.ids == sids[-2:] and page.complete, "after near the end: want 2 results and complete")
    # form after-id / before-id, ids (#extended)
    msgs, _ = await g1.mam_all(max_=50, with_=f1.bare, after_id=sids[99], before_id=sids[200])
    check([m.result_id for m in msgs] == sids[100:200], f"after-id/before-id gave {len(msgs)} messages")
    page = await g1.mam_query(ids=[sids[5], sids[7]])
    check(page.ids == [sids[5], sids[7]], f"ids filter gave {page.ids}")
    # time filters
    page = await g1.mam_query(with_=f1.bare, start="2099-01-01T00:00:00Z")
    check(not page.messages and page.complete, "start in the future returned messages or complete=false")
    page = await g1.mam_query(with_=f1.bare, end="2000-01-01T00:00:00Z")
    check(not page.messages and page.complete, "end in the past returned messages")
    page = await g1.mam_query(**scope, start="2000-01-01T00:00:00Z", max_=5)
    check(page.ids == sids[:5], "start in the past does not start at the first message")
    # start/end inside the archive (served as an id range through the stored_at index): exactly
    # the messages stamped at or after / at or before the boundary
    from datetime import datetime
    stamps = {m.result_id: datetime.fromisoformat(m.stamp.replace("Z", "+00:00")) for m in back}
    mid = next(m.stamp for m in back if m.result_id == sids[100])
    at = stamps[sids[100]]
    msgs, _ = await g1.mam_all(max_=250, **scope, start=mid)
    check([m.result_id for m in msgs] == [x for x in sids if stamps[x] >= at], f"start={mid}: {len(msgs)} messages")
    msgs, _ = await g1.mam_all(max_=250, **scope, end=mid)
    # Stamps are in milliseconds, the archive in microseconds: those stamped exactly `mid` may
    # fall on either side of it.
    got = [m.result_id for m in msgs]
    before, upto = [x for x in sids if stamps[x] < at], [x for x in sids if stamps[x] <= at]
    check(got[:len(before)] == before and got == upto[:len(got)], f"end={mid}: {len(got)} messages")


@scenario("authorization")
async def sc_authorization(ctx: Ctx) -> None:
    """publishing to another's node is forbidden; MAM shows only the requester's own archive."""
    i1, j1, m1 = await ctx.clients_for(("ivan", "i1"), ("judy", "j1"), ("mallory", "m1"))
    I, J = random_device_id(), random_device_id()
    await ctx.set_devices(i1, [(I, synthetic_bundle(30))])
    await ctx.set_devices(j1, [(J, synthetic_bundle(30))])
    evil = random_device_id()
    expect_error((await m1.publish_bundle(evil, synthetic_bundle(30), owner="ivan")).error, "auth", "forbidden",
                 "publish bundle to another's node")
    expect_error((await m1.publish_device_list([evil], owner="ivan")).error, "auth", "forbidden",
                 "publish device list to another's node")
    expect_error((await m1.retract_bundle(I, owner="ivan")).error, "auth", "forbidden", "retract another's bundle")
    check(await m1.fetch_device_list("ivan") == [I], "ivan's device list changed after forbidden requests")
    enc = synthetic_encrypted(I, {j1.bare: [J]})
    _, origin, sid = await i1.send_and_wait(enc)
    check(sid in [m.result_id for m in (await j1.mam_query(with_=i1.bare, before="", max_=5)).messages],
          "the recipient does not see the message in MAM")
    msgs, _ = await m1.mam_all(with_=i1.bare)
    check(not msgs, f"mallory sees {len(msgs)} of ivan's messages")
    msgs, _ = await m1.mam_all()
    check(sid not in [m.result_id for m in msgs], "mallory's archive contains ivan's message to judy")
    page, err = await m1.mam_query_raw(ids=[sid])
    check(err is not None or not page.messages, "mallory fetched ivan's message by id")
    _, err = await m1.mam_query_raw(to=ctx.env.node_jid("ivan"))
    expect_error(err, "auth", "forbidden", "MAM query to another account's JID")


@scenario("bad_input_omemo_header")
async def sc_bad_header(ctx: Ctx) -> None:
    """malformed OMEMO headers → modify/bad-request; the component stays up."""
    a1, b1 = await ctx.clients_for(("alice", "a1"), ("bob", "b1"))
    A, B = random_device_id(), random_device_id()
    await ctx.set_devices(a1, [(A, synthetic_bundle(30))])
    await ctx.set_devices(b1, [(B, synthetic_bundle(30))])
    k = base64.b64encode(os.urandom(124)).decode()
    p = base64.b64encode(os.urandom(48)).decode()     # payload
    bj = b1.bare
    cases = {
        "no header": f"<encrypted xmlns='{NS_OMEMO}'><payload>{p}</payload></encrypted>",
        "no sid": f"<encrypted xmlns='{NS_OMEMO}'><header><keys jid='{bj}'><key rid='{B}'>{k}</key></keys>"
                  f"</header><payload>{p}</payload></encrypted>",
        "sid not a number": f"<encrypted xmlns='{NS_OMEMO}'><header sid='abc'><keys jid='{bj}'><key rid='{B}'>{k}"
                            f"</key></keys></header><payload>{p}</payload></encrypted>",
        "keys without jid": f"<encrypted xmlns='{NS_OMEMO}'><header sid='{A}'><keys><key rid='{B}'>{k}</key>"
                            f"</keys></header><payload>{p}</payload></encrypted>",
        "key without rid": f"<encrypted xmlns='{NS_OMEMO}'><header sid='{A}'><keys jid='{bj}'><key>{k}</key>"
                           f"</keys></header><payload>{p}</payload></encrypted>",
        "rid 0": f"<encrypted xmlns='{NS_OMEMO}'><header sid='{A}'><keys jid='{bj}'><key rid='0'>{k}</key>"
                 f"</keys></header><payload>{p}</payload></encrypted>",
        "keys jid not a JID": f"<encrypted xmlns='{NS_OMEMO}'><header sid='{A}'><keys jid='@@'><key rid='{B}'>{k}"
                              f"</key></keys></header><payload>{p}</payload></encrypted>",
        "key not base64": f"<encrypted xmlns='{NS_OMEMO}'><header sid='{A}'><keys jid='{bj}'><key rid='{B}'>"
                          f"!!not base64!!</key></keys></header><payload>{p}</payload></encrypted>",
    }
    problems = []
    for name, enc in cases.items():
        mid, _ = a1.send_archive_message(enc)
        out = await a1.wait_outcome(mid, 10)
        if not isinstance(out, StanzaError):
            problems.append(f"{name}: accepted (stanza-id {out})")
        elif not out.is_("modify", "bad-request"):
            problems.append(f"{name}: {out}")
    check(not problems, "; ".join(problems))
    _, _, sid = await a1.send_and_wait(synthetic_encrypted(A, {bj: [B]}))
    check(is_decimal(sid), "a valid message after the bad ones got no proper receipt")


@scenario("bad_input_unknown_namespace")
async def sc_unknown_ns(ctx: Ctx) -> None:
    """IQs in unknown namespaces → cancel/feature-not-implemented (or service-unavailable)."""
    a = await ctx.client("alice")
    allowed = [("cancel", "feature-not-implemented"), ("cancel", "service-unavailable")]
    for to in (ctx.comp, ctx.env.node_jid("alice"), ctx.env.node_jid("bob")):
        for t in ("get", "set"):
            err = await a.iq_error(f"<iq type='{t}' to='{to}' id='{new_id('u')}'><frobnicate xmlns='urn:example:nope'/></iq>")
            expect_error_in(err, allowed, f"unknown namespace {t} to {to}")
    await a.disco_info(ctx.comp)


@scenario("bad_input_oversized")
async def sc_oversized(ctx: Ctx) -> None:
    """stanzas over the size limit → modify/not-acceptable; the streams stay up."""
    a1, b1 = await ctx.clients_for(("alice", "a1"), ("bob", "b1"))
    A, B = random_device_id(), random_device_id()
    await ctx.set_devices(a1, [(A, synthetic_bundle(30))])
    await ctx.set_devices(b1, [(B, synthetic_bundle(30))])
    big = base64.b64encode(os.urandom(OVERSIZE_BYTES * 3 // 4)).decode()
    enc = (f"<encrypted xmlns='{NS_OMEMO}'><header sid='{A}'><keys jid='{b1.bare}'><key rid='{B}'>"
           f"{base64.b64encode(os.urandom(124)).decode()}</key></keys></header><payload>{big}</payload></encrypted>")
    mid, origin = a1.send_archive_message(enc)
    out = await a1.wait_outcome(mid, 15)
    check(isinstance(out, StanzaError), f"a {OVERSIZE_BYTES // 1024} KiB message was accepted (stanza-id {out})")
    expect_error(out, "modify", "not-acceptable", "oversized message")
    check(not await b1.collect(b1.is_fanout(origin_id=origin), 0.5), "the oversized message was delivered")
    pad = "".join(f"<pk id='{i}'>{base64.b64encode(os.urandom(32)).decode()}</pk>" for i in range(1, 2500))
    bundle = synthetic_bundle(0).replace("<prekeys></prekeys>", f"<prekeys>{pad}</prekeys>")
    check(len(bundle) > OVERSIZE_BYTES, "test bug: oversized bundle too small")
    expect_error((await a1.publish_bundle(A, bundle)).error, "modify", "not-acceptable", "oversized publish")
    check(a1.connected, f"client stream closed: {a1.disconnect_reason}")
    _, _, sid = await a1.send_and_wait(synthetic_encrypted(A, {b1.bare: [B]}))
    await b1.wait_message(b1.is_fanout(stanza_id=sid), 5, what="fan-out after the oversized stanzas")


@scenario("bad_input_spoofed_owner")
async def sc_spoof(ctx: Ctx) -> None:
    """a forged from never acts for another account; the component trusts only the server-stamped from."""
    a1, m1, j1 = await ctx.clients_for(("alice", "a1"), ("mallory", "m1"), ("judy", "j1"))
    A, M, J = random_device_id(), random_device_id(), random_device_id()
    await ctx.set_devices(a1, [(A, synthetic_bundle(30))])
    await ctx.set_devices(m1, [(M, synthetic_bundle(30))])
    await ctx.set_devices(j1, [(J, synthetic_bundle(30))])
    # Prosody rewrites a forged from to the sender's full JID; ejabberd instead closes the client's
    # stream with <invalid-from/> (docs/operations.md, "Prosody and ejabberd"), so the forged stanza
    # never reaches the component. Only that close, and only on ejabberd, is accepted in place of an answer.
    ejabberd = ctx.env.raw.get("MULTIEND_TESTBED_SERVER") == "ejabberd"

    async def refused_by_server(c: Client, e: Disconnected, what: str) -> Client:
        check(ejabberd and "invalid-from" in str(e), f"{what}: the sender's stream closed: {e}")
        check(not c.connected, f"{what}: {e} but the client is still connected")
        return await ctx.client("mallory")
    # 1. forged from on a publish to alice's node
    iq_id = new_id("sp")
    inner = (f"<publish node='{NODE_DEVICES}'><item id='current'>{devices_xml([random_device_id()])}</item></publish>")
    spoof = pubsub_iq("set", ctx.env.node_jid("alice"), inner, iq_id).replace(
        "<iq ", f"<iq from='{a1.jid}' ", 1)
    try:
        r = await m1.iq(spoof)
        check(r.type == "error", f"forged-from publish succeeded: {r!r}")
    except Disconnected as e:
        m1 = await refused_by_server(m1, e, "forged-from publish")
    check(await m1.fetch_device_list("alice") == [A], "alice's device list changed after a forged publish")
    # 2. forged from on an archive message
    origin = uuid.uuid4().hex
    mid = new_id("sp")
    m1.send_raw(f"<message from='{a1.jid}' to='{ctx.comp}' type='normal' id='{mid}'>"
                f"{synthetic_encrypted(A, {j1.bare: [J]})}<origin-id xmlns='{NS_SID}' id='{origin}'/></message>")
    try:
        s: Optional[Stanza] = await m1.wait_message(lambda s: m1.is_receipt_for(mid)(s) or m1.is_error_for(mid)(s),
                                                    10, what="answer to the forged message")
    except Disconnected as e:
        m1, s = await refused_by_server(m1, e, "forged-from message"), None
    msgs, _ = await a1.mam_all(with_=j1.bare)
    check(origin not in [m.origin_id for m in msgs], "a forged message landed in alice's archive")
    if s is not None and s.receipt is not None:     # the server rewrote from: then it must be stored as mallory's
        page = await m1.mam_query(ids=[s.receipt[1]])
        check(page.messages and page.messages[0].sender.startswith(m1.bare + "/"),
              "forged message archived with a from other than the real sender")
    # 3. a header claiming alice's device id as sid is still mallory's message
    _, origin, sid = await m1.send_and_wait(synthetic_encrypted(A, {j1.bare: [J], m1.bare: [M]}))
    s = await j1.wait_message(j1.is_fanout(stanza_id=sid), 5, what="fan-out")
    check(s.forwarded.get("from") == m1.jid, f"forwarded from {s.forwarded.get('from')}, want {m1.jid}")
    check(not await a1.collect(a1.is_fanout(stanza_id=sid), 0.5), "alice got mallory's message")


@scenario("bad_input_rsm_and_forms")
async def sc_bad_rsm(ctx: Ctx) -> None:
    """bad RSM and form values → modify/bad-request; unknown RSM ids → cancel/item-not-found."""
    a = await ctx.client("alice")
    bad = [dict(max_="abc"), dict(max_="-1"), dict(max_="1.5"), dict(start="yesterday"), dict(end="2024-13-45T99:00:00Z"),
           dict(with_="not a jid@@@"), dict(after_id="abc"), dict(ids=["abc"])]
    problems = []
    for kw in bad:
        _, err = await a.mam_query_raw(**kw)
        if err is None or not err.is_("modify", "bad-request"):
            problems.append(f"{kw}: {err or 'result'}")
    for kw in (dict(after="999999999999999999"), dict(before="999999999999999999")):
        _, err = await a.mam_query_raw(max_=5, **kw)
        if err is None or not err.is_("cancel", "item-not-found"):
            problems.append(f"{kw}: {err or 'result'}")
    for kw in (dict(after="not-an-id"),):
        _, err = await a.mam_query_raw(max_=5, **kw)
        if err is None or (err.type, err.condition) not in (("modify", "bad-request"), ("cancel", "item-not-found")):
            problems.append(f"{kw}: {err or 'result'}")
    _, err = await a.mam_query_raw(raw_rsm="<set xmlns='http://jabber.org/protocol/rsm'><max></max></set>")
    if err is None or not err.is_("modify", "bad-request"):
        problems.append(f"empty <max/>: {err or 'result'}")
    _, err = await a.mam_query_raw(form_extra={"FORM_TYPE": "urn:example:other"})
    if err is None or not err.is_("modify", "bad-request"):
        problems.append(f"wrong FORM_TYPE: {err or 'result'}")
    check(not problems, "; ".join(problems))
    page = await a.mam_query(max_=1)
    check(len(page.messages) <= 1, "component misbehaves after bad queries")


@scenario("bad_input_nodes_and_ids")
async def sc_bad_nodes(ctx: Ctx) -> None:
    """unknown nodes → feature-not-implemented; bad item ids → bad-request; too many recipients."""
    a, b = await ctx.clients_for(("alice", "a1"), ("bob", "b1"))
    A, B = random_device_id(), random_device_id()
    await ctx.set_devices(a, [(A, synthetic_bundle(30))])
    await ctx.set_devices(b, [(B, synthetic_bundle(30))])
    problems = []

    def want(err: Optional[StanzaError], t: str, c: str, what: str) -> None:
        if err is None or not err.is_(t, c):
            problems.append(f"{what}: {err or 'result'} (want {t}/{c})")
    want((await b.items("alice", "urn:example:nope")).error, "cancel", "feature-not-implemented", "items of unknown node")
    want((await b.items("alice", "eu.siacs.conversations.axolotl.devicelist")).error, "cancel",
         "feature-not-implemented", "items of the OMEMO 0.3 node")
    inner = "<publish node='urn:example:nope'><item id='1'><x xmlns='urn:example:nope'/></item></publish>"
    want((await a.iq(pubsub_iq("set", a.node_jid, inner))).error, "cancel", "feature-not-implemented",
         "publish to unknown node")
    for bad_id in ("0", "abc", "2147483648", "-5"):
        want((await a.publish_bundle(bad_id, synthetic_bundle(30))).error, "modify", "bad-request",
             f"bundle item id {bad_id!r}")
        want((await b.items("alice", NODE_BUNDLES, [bad_id])).error, "modify", "bad-request",
             f"fetch bundle item id {bad_id!r}")
    want((await a.publish_bundle(A, f"<bundle xmlns='{NS_OMEMO}'><ik>AAAA</ik></bundle>")).error, "modify",
         "bad-request", "bundle without spk/prekeys")
    want((await a.publish_bundle(A, synthetic_bundle(0))).error, "modify", "bad-request", "bundle without <pk>")
    want((await a.publish_device_list([0])).error, "modify", "bad-request", "device id 0 in the list")
    inner = (f"<publish node='{NODE_DEVICES}'><item id='current'><devices xmlns='{NS_OMEMO}'><device id='x'/>"
             f"</devices></item></publish>")
    want((await a.iq(pubsub_iq("set", a.node_jid, inner))).error, "modify", "bad-request", "device id 'x'")
    # recipient limit: 101 recipients
    addrs = [("to", f"nobody{i}@{ctx.env.user_domain}") for i in range(101)]
    mid, _ = a.send_archive_message(synthetic_encrypted(A, {b.bare: [B]}), addresses=addrs)
    out = await a.wait_outcome(mid)
    if not isinstance(out, StanzaError) or not out.is_("modify", "policy-violation"):
        problems.append(f"101 recipients: {out} (want modify/policy-violation)")
    check(not problems, "; ".join(problems))
    check(await b.fetch_device_list("alice") == [A], "alice's device list changed by bad requests")


@scenario("fault_postgres_restart", timeout=75)
async def sc_fault_pg(ctx: Ctx) -> None:
    """PostgreSQL stops during traffic: /readyz non-200, then 200 again; receipted messages all in MAM."""
    a1, b1 = await ctx.clients_for(("alice", "pg1"), ("bob", "pg1"))
    A, B = random_device_id(), random_device_id()
    await ctx.set_devices(a1, [(A, synthetic_bundle(30))])
    await ctx.set_devices(b1, [(B, synthetic_bundle(30))])
    enc = synthetic_encrypted(A, {b1.bare: [B]})
    sent: List[str] = []
    stop = asyncio.Event()

    async def traffic() -> None:
        while not stop.is_set():
            try:
                sent.append(a1.send_archive_message(enc)[0])
            except Disconnected:
                return
            await asyncio.sleep(0.02)
    task = asyncio.create_task(traffic())
    try:
        await asyncio.sleep(1.0)
        await ctx.testbed("stop-postgres", "--mode", "fast")
        down_after = await ctx.wait_readyz(False, 15, "PostgreSQL down")
        await asyncio.sleep(1.5)
        await ctx.testbed("start-postgres")
        up_after = await ctx.wait_readyz(True, 30, "PostgreSQL back")
        await asyncio.sleep(1.0)
    finally:
        stop.set()
        await task
        await ctx.testbed("start-postgres")          # no-op unless the scenario failed half-way
    outcomes = await wait_receipts(a1, sent, 20)
    receipted = {m: v for m, v in outcomes.items() if isinstance(v, str)}
    errors = [v for v in outcomes.values() if isinstance(v, StanzaError)]
    unanswered = len(sent) - len(outcomes)
    check(len(receipted) > 10, f"only {len(receipted)} of {len(sent)} messages got receipts")
    bad_errors = [e for e in errors if not e.is_("wait", "internal-server-error")]
    check(not bad_errors, f"errors other than wait/internal-server-error while the database was down: "
          f"{bad_errors[:3]}")
    check(unanswered == 0, f"{unanswered} of {len(sent)} messages got neither a receipt nor an error")
    msgs, _ = await a1.mam_all(max_=250, with_=b1.bare, max_pages=50)
    in_mam = {m.result_id: m.msg_id for m in msgs}
    lost = [m for m, sid in receipted.items() if in_mam.get(sid) != m]
    check(not lost, f"{len(lost)} receipted messages are not in MAM (of {len(receipted)}); e.g. {lost[:3]}")
    ctx.note = (f"{len(sent)} sent, {len(receipted)} receipted, {len(errors)} wait errors; readyz down after "
                f"{down_after:.1f}s, back after {up_after:.1f}s")


@scenario("fault_prosody_restart", timeout=75)
async def sc_fault_prosody(ctx: Ctx) -> None:
    """the XMPP server (Prosody or ejabberd) restarts during traffic: /readyz non-200, then 200; receipted in MAM."""
    a1, b1 = await ctx.clients_for(("alice", "pr1"), ("bob", "pr1"))
    A, B = random_device_id(), random_device_id()
    await ctx.set_devices(a1, [(A, synthetic_bundle(30))])
    await ctx.set_devices(b1, [(B, synthetic_bundle(30))])
    enc = synthetic_encrypted(A, {b1.bare: [B]})
    sent: List[str] = []
    receipted: Dict[str, str] = {}
    stop = asyncio.Event()

    async def traffic(c: Client) -> None:
        while not stop.is_set() and c.connected:
            try:
                sent.append(c.send_archive_message(enc)[0])
            except Disconnected:
                return
            await asyncio.sleep(0.02)
            for s in c.take(lambda s: s.receipt is not None):
                receipted[s.receipt[0]] = s.receipt[1]
    task = asyncio.create_task(traffic(a1))
    try:
        await asyncio.sleep(1.0)
        await ctx.testbed("stop-xmpp")
        stop.set()
        await task
        for s in a1.take(lambda s: s.receipt is not None):
            receipted[s.receipt[0]] = s.receipt[1]
        before = len(receipted)
        down_after = await ctx.wait_readyz(False, 15, "XMPP server down")
        await asyncio.sleep(1.0)
        await ctx.testbed("start-xmpp")
        up_after = await ctx.wait_readyz(True, 30, "XMPP server back")
    finally:
        stop.set()
        await task
        await ctx.testbed("start-xmpp")              # no-op unless the scenario failed half-way
    a2 = await ctx.client("alice", "pr2")
    mids = [a2.send_archive_message(enc)[0] for _ in range(20)]
    after = await wait_receipts(a2, mids, 15)
    check(len(after) == 20 and all(isinstance(v, str) for v in after.values()),
          f"after the restart only {sum(isinstance(v, str) for v in after.values())} of 20 messages got receipts")
    receipted.update(after)
    check(before > 10, f"only {before} receipts before Prosody stopped")
    msgs, _ = await a2.mam_all(max_=250, with_=b1.bare, max_pages=50)
    in_mam = {m.result_id: m.msg_id for m in msgs}
    lost = [m for m, sid in receipted.items() if in_mam.get(sid) != m]
    check(not lost, f"{len(lost)} receipted messages are not in MAM (of {len(receipted)})")
    ctx.note = (f"{len(sent)} sent before the stop, {before} receipted; readyz down after {down_after:.1f}s, "
                f"back after {up_after:.1f}s")


@scenario("pending_fanout_after_restart", timeout=60)
async def sc_pending_fanout(ctx: Ctx) -> None:
    """a message committed but not delivered when the component stopped is delivered after restart."""
    b1 = await ctx.client("bob", "pf1")
    rc, _, killed = await asyncio.to_thread(ctx.h.stop_component)
    check(rc == 0 and not killed, f"the component exited with {rc} on SIGTERM{' (killed)' if killed else ''}")
    origin = new_id()
    stanza = (f"<message xmlns='jabber:client' from='alice@{ctx.env.user_domain}/pf' to='{ctx.comp}' type='normal' "
              f"id='{origin}'><encrypted xmlns='urn:xmpp:omemo:2'><header sid='7'><keys jid='{b1.bare}'>"
              f"<key rid='9'>AQ==</key></keys></header></encrypted><origin-id xmlns='urn:xmpp:sid:0' id='{origin}'/>"
              f"</message>")

    def psql(sql: str) -> str:
        r = subprocess.run(["psql", ctx.h.env.pg_url, "-v", "ON_ERROR_STOP=1", "-tAc", sql],
                           capture_output=True, text=True, timeout=20)
        check(r.returncode == 0, f"psql failed: {r.stderr.strip()}")
        return r.stdout.strip()

    # Committed as the group commit would, but never fanned out (the component "died" here).
    sid = await asyncio.to_thread(psql, (
        "WITH m AS (INSERT INTO messages (sender_bare, sender_full, origin_id, stanza) VALUES "
        f"('alice@{ctx.env.user_domain}', 'alice@{ctx.env.user_domain}/pf', '{origin}', $x${stanza}$x$) "
        f"RETURNING id) INSERT INTO archive (owner, message_id) SELECT '{b1.bare}', id FROM m RETURNING message_id"))
    await asyncio.to_thread(ctx.h.start_component, None)
    await asyncio.to_thread(ctx.h.wait_ready, 30.0)
    sid = sid.splitlines()[0].strip()
    s = await b1.wait_message(b1.is_fanout(stanza_id=sid), 10, what=f"pending fan-out of {sid} after restart")
    check(s.forwarded.get("id") == origin, "delivered the wrong message")
    deadline = time.monotonic() + 5
    marked = ""
    while time.monotonic() < deadline:
        marked = await asyncio.to_thread(psql, f"SELECT fanned_out FROM messages WHERE id = {sid}")
        if marked == "t":
            break
        await asyncio.sleep(0.2)
    check(marked == "t", "the delivered message was not marked fanned out")


@scenario("retention", timeout=60)
async def sc_retention(ctx: Ctx) -> None:
    """with retention_seconds 2 / interval 1, archived messages disappear within a few seconds."""
    await asyncio.to_thread(ctx.h.restart_component, {"retention_seconds": 2, "retention_interval_seconds": 1})
    try:
        a1, b1 = await ctx.clients_for(("alice", "rt1"), ("bob", "rt1"))
        A, B = random_device_id(), random_device_id()
        await ctx.set_devices(a1, [(A, synthetic_bundle(30))])
        await ctx.set_devices(b1, [(B, synthetic_bundle(30))])
        _, _, sid = await a1.send_and_wait(synthetic_encrypted(A, {b1.bare: [B]}))
        page = await a1.mam_query(ids=[sid])
        check(page.ids == [sid], "fresh message not in MAM")
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            page = await a1.mam_query(ids=[sid])
            if not page.messages:
                break
        check(not page.messages, "message still archived 8 s after a 2 s retention")
        check(await ctx.mam_count(a1) == 0, "older messages survived retention")
    finally:
        await ctx.close()
        await asyncio.to_thread(ctx.h.restart_component, None)


@scenario("retention_runs_at_start", timeout=60)
async def sc_retention_at_start(ctx: Ctx) -> None:
    """retention runs at start, not one interval later: a 40-day-old message is gone right after a restart."""
    b1 = await ctx.client("bob", "ras1")
    rc, _, killed = await asyncio.to_thread(ctx.h.stop_component)
    check(rc == 0 and not killed, f"the component exited with {rc} on SIGTERM{' (killed)' if killed else ''}")
    origin = new_id()
    stanza = (f"<message xmlns='jabber:client' from='alice@{ctx.env.user_domain}/ras' to='{ctx.comp}' type='normal' "
              f"id='{origin}'><encrypted xmlns='urn:xmpp:omemo:2'><header sid='7'><keys jid='{b1.bare}'>"
              f"<key rid='9'>AQ==</key></keys></header></encrypted><origin-id xmlns='urn:xmpp:sid:0' id='{origin}'/>"
              f"</message>")

    def psql(sql: str) -> str:
        r = subprocess.run(["psql", ctx.h.env.pg_url, "-v", "ON_ERROR_STOP=1", "-tAc", sql],
                           capture_output=True, text=True, timeout=20)
        check(r.returncode == 0, f"psql failed: {r.stderr.strip()}")
        return r.stdout.strip()

    # Stored 40 days ago (retention is 30 days), already delivered.
    sid = (await asyncio.to_thread(psql, (
        "WITH m AS (INSERT INTO messages (sender_bare, sender_full, origin_id, stanza, stored_at, fanned_out) VALUES "
        f"('alice@{ctx.env.user_domain}', 'alice@{ctx.env.user_domain}/ras', '{origin}', $x${stanza}$x$, "
        f"now() - interval '40 days', true) RETURNING id) "
        f"INSERT INTO archive (owner, message_id) SELECT '{b1.bare}', id FROM m RETURNING message_id"))).splitlines()[0]
    # Default intervals (retention hourly, pruning daily): only a run at start can delete it in time.
    await asyncio.to_thread(ctx.h.start_component, None)
    await asyncio.to_thread(ctx.h.wait_ready, 30.0)
    deadline = time.monotonic() + 10
    left = "1"
    while time.monotonic() < deadline:
        left = await asyncio.to_thread(psql, f"SELECT count(*) FROM messages WHERE id = {sid}")
        if left == "0":
            break
        await asyncio.sleep(0.3)
    check(left == "0", "a message past retention_seconds survived 10 s after a start (retention runs only later?)")


@scenario("cli_options_after_subcommand", timeout=60)
async def sc_cli(ctx: Ctx) -> None:
    """migrate/check take options before or after the subcommand; check reports a bad config in one line (exit 2)."""
    h = ctx.h
    argv = shlex.split(h.args.component_cmd.replace("{config}", shlex.quote(str(h.config_path))))
    exe, opts = argv[0], argv[1:]

    def run(args: List[str], secret: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(args, cwd=str(REPO), env=h.component_env(secret), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=30)

    # migrate needs no secret; the options work on either side of it.
    for args in ([exe, "migrate"] + opts, [exe] + opts + ["migrate"]):
        r = await asyncio.to_thread(run, args, False)
        check(r.returncode == 0, f"{' '.join(args[1:])}: exit {r.returncode}: {r.stderr.strip()[-300:]}")
        check("schema migrated from version" in r.stderr, f"{' '.join(args[1:])}: no migration report: {r.stderr[-300:]}")
    r = await asyncio.to_thread(run, [exe, "check"] + opts)
    check(r.returncode == 0 and "configuration OK" in r.stdout, f"check: exit {r.returncode}: {r.stderr.strip()}")
    r = await asyncio.to_thread(run, [exe, "migrate", "--help"])
    check(r.returncode == 0 and "--config" in r.stdout, f"migrate --help: exit {r.returncode}, no --config in it")

    assert h.config_path is not None and h.work is not None
    bad = json.loads(h.config_path.read_text())
    bad["log_level"] = "loud"
    bad_path = h.work / "bad-log-level.json"
    bad_path.write_text(json.dumps(bad))
    os.chmod(bad_path, 0o600)
    r = await asyncio.to_thread(run, [exe, "check", "--config", str(bad_path)])
    lines = r.stderr.strip().splitlines()
    check(r.returncode == 2, f"check of a bad log_level: exit {r.returncode} (want 2)")
    check(len(lines) == 1 and "log_level must be one of" in lines[0], f"check of a bad log_level said {lines}")
    check(h.env.component_secret not in r.stderr + r.stdout, "the secret appeared in the output")


if __name__ == "__main__":
    sys.exit(main(scenario, __doc__, USERS, TEST_CONFIG_EXTRA))
