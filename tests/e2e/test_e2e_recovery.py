#!/usr/bin/python3
"""End-to-end: the client against a lying server and lost history, through a real Prosody (or
ejabberd), PostgreSQL and the archive component (the harness of test_e2e.py).

    tests/e2e/test_e2e_recovery.py --cli build/client/multiend --component build/server/multiend-component
                                   [--server prosody|ejabberd] [--only a,b] [--keep] [-v]

* repair_attack_by_lying_server: an injected key exchange naming an unknown prekey plus a
  bundle for the victim's contact that the server swapped for an attacker's keys: the verified
  session is kept, the next message is readable only by the real device, the event is reported,
  and reset-session refuses the swapped bundle.
* trust_on_receive: every message line says how far its sending device is trusted; distrusted
  and unlisted devices are not shown, and no session is built for an unlisted device id.
* lying_archive_is_bounded: an archive that answers every page with "not complete" and no
  progress (the same page, or a cycle of pages), with more results than asked, or "expired"
  forever ends the catch-up with an error instead of a loop or an unbounded buffer; a device
  list that cannot be fetched fails the catch-up instead of writing a message off as unlisted;
  a query the archive never answers is asked again well within the timeout.
* expired_history_recovers: a device that missed 1,100 messages the archive then expired reads
  the next ones (an authenticated jump past the skip cap).
* sends_ride_through_restarts: the component killed and restarted twice during 30 sends; every
  send succeeds and each message arrives once.
"""
from __future__ import annotations

import asyncio
import base64
import os
import sqlite3
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Dict, List

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import test_e2e  # noqa: E402
from lying_component import LyingComponent  # noqa: E402
from test_e2e import Bed, Cli, check, xmpp_client  # noqa: E402

from twomemo import twomemo_pb2  # noqa: E402  (python3-twomemo: the OMEMO 2 protobuf messages)

NS_OMEMO = "urn:xmpp:omemo:2"


def by_id(lines: List[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    return {e["id"]: e for e in lines}


def archived_key(bed: Bed, stanza_id: str, jid: str, device: int) -> ET.Element:
    """The <key> for (jid, device) in the archived stanza, as the component stored it."""
    root = ET.fromstring(bed.psql(f"SELECT stanza FROM messages WHERE id = {int(stanza_id)}").strip())
    for keys in root.iter(f"{{{NS_OMEMO}}}keys"):
        if keys.get("jid") == jid:
            for k in keys.findall(f"{{{NS_OMEMO}}}key"):
                if int(k.get("rid", "0")) == device:
                    return k
    raise test_e2e.Failure(f"no key for {jid}/{device} in archived message {stanza_id}")


def forged_key_exchange(sender_ik: bytes) -> str:
    """An OMEMOKeyExchange naming a one-time prekey that does not exist (0x7ffffffe): anyone who
    can put a stanza in the archive can write one. Nothing in it is authenticated."""
    inner = twomemo_pb2.OMEMOMessage(n=0, pn=0, dh_pub=os.urandom(32), ciphertext=os.urandom(48))
    auth = twomemo_pb2.OMEMOAuthenticatedMessage(mac=os.urandom(16), message=inner.SerializeToString())
    kex = twomemo_pb2.OMEMOKeyExchange(pk_id=0x7FFFFFFE, spk_id=1, ik=sender_ik, ek=os.urandom(32),
                                       message=auth)
    return base64.b64encode(kex.SerializeToString()).decode()


def scenario_repair_attack_by_lying_server(bed: Bed) -> None:
    a, b, m = Cli(bed, "alice1", "alice"), Cli(bed, "bob1", "bob"), Cli(bed, "mallory1", "mallory")
    for d in (a, b, m):
        d.init()
    bed.alice = a
    a.send(["bob"], "hello bob")
    b.sync()
    b.send(["alice"], "hello alice")
    a.sync()
    fp = b.run("fingerprint")[0]["fingerprint"]
    a.run("trust", b.jid, str(b.device), "--fingerprint", fp)

    # 1. A key exchange "from bob1" naming an unknown prekey lands in alice's archive.
    bob_ik = bytes.fromhex(bed.psql(f"SELECT encode(ik, 'hex') FROM devices WHERE owner = '{b.jid}' "
                                    f"AND device_id = {b.device}").strip())
    check(len(bob_ik) == 32, "bob1's identity key is not in the component's database")
    enc = (f"<encrypted xmlns='{NS_OMEMO}'><header sid='{b.device}'><keys jid='{a.jid}'>"
           f"<key rid='{a.device}' kex='true'>{forged_key_exchange(bob_ik)}</key></keys></header>"
           f"<payload>{base64.b64encode(os.urandom(48)).decode()}</payload></encrypted>")

    async def inject() -> str:
        async with xmpp_client.Client(bed.env, "bob", "injector") as c:
            _, _, stanza_id = await c.send_and_wait(enc)
            return stanza_id

    forged_id = asyncio.run(inject())

    # 2. The server now answers bundle requests for bob1 with mallory's keys.
    bed.psql(f"""
        UPDATE devices d SET ik = x.ik, spk_id = x.spk_id, spk = x.spk, spks = x.spks FROM devices x
         WHERE d.owner = '{b.jid}' AND d.device_id = {b.device} AND x.owner = '{m.jid}' AND x.device_id = {m.device};
        DELETE FROM prekeys WHERE owner = '{b.jid}' AND device_id = {b.device};
        INSERT INTO prekeys (owner, device_id, pk_id, pk)
             SELECT '{b.jid}', {b.device}, pk_id, pk FROM prekeys WHERE owner = '{m.jid}' AND device_id = {m.device};""")

    # 3. alice reads it: reported, and the verified session stays.
    got = by_id(a.sync())
    check(forged_id in got and got[forged_id]["type"] == "undecryptable"
          and got[forged_id]["reason"].startswith("prekey-gone"), f"the forged key exchange: {got.get(forged_id)}")

    # 4. alice's next message goes out in the old session: no key exchange, readable by bob1.
    s = a.send(["bob"], "for the real bob only")
    check((b.jid, b.device) in {(x["jid"], x["device"]) for x in s["devices"]}, f"sent {s}")
    key = archived_key(bed, s["id"], b.jid, b.device)
    check(key.get("kex") not in ("true", "1"), "alice started a new session from the swapped bundle")
    check([e["body"] for e in b.sync() if e["id"] == s["id"]] == ["for the real bob only"], "bob1 cannot read it")
    with sqlite3.connect(a.state) as db:
        pinned = db.execute("SELECT hex(identity_key), trust FROM devices WHERE jid = ? AND device = ?",
                            (b.jid, b.device)).fetchone()
    check(pinned is not None and bytes.fromhex(pinned[0]) == bob_ik and pinned[1] == "verified",
          f"alice's pinned key for bob1 changed: {pinned}")

    # 5. The manual way out checks the identity too: the swapped bundle is refused.
    a.run("reset-session", b.jid, str(b.device), expect=3)
    check("identity-changed" in a.last_error, a.last_error)
    s = a.send(["bob"], "still the real bob")
    check([e["body"] for e in b.sync() if e["id"] == s["id"]] == ["still the real bob"], "session lost after reset")


def scenario_trust_on_receive(bed: Bed) -> None:
    a = getattr(bed, "alice", None)
    if a is None:
        a = Cli(bed, "alice1", "alice")
        a.init()
    c1, c2 = Cli(bed, "carol1", "carol"), Cli(bed, "carol2", "carol")
    c1.init()
    c2.init()
    s = c1.send(["alice"], "first contact")
    got = by_id(a.sync())
    check(got[s["id"]]["type"] == "message" and got[s["id"]]["trust"] == "blind", f"blind: {got.get(s['id'])}")
    own = [e for e in a.history() if e["direction"] == "out"]
    check(own and all(e["trust"] == "own" for e in own), f"own messages: {own[:2]}")
    fp = c1.run("fingerprint")[0]["fingerprint"]
    a.run("trust", c1.jid, str(c1.device), "--fingerprint", fp)
    s1, s2 = c1.send(["alice"], "verified now"), c2.send(["alice"], "from an unverified device")
    got = by_id(a.sync())
    check(got[s1["id"]]["trust"] == "verified", f"verified: {got.get(s1['id'])}")
    check(got[s2["id"]]["type"] == "message" and got[s2["id"]]["trust"] == "undecided", f"undecided: {got.get(s2['id'])}")
    a.run("distrust", c2.jid, str(c2.device))
    s3 = c2.send(["alice"], "from a distrusted device")
    got = by_id(a.sync())
    e = got[s3["id"]]
    check(e["type"] == "undecryptable" and e["trust"] == "distrusted" and e["reason"].startswith("distrusted")
          and e["body"] is None, f"distrusted: {e}")

    # A device id carol's account never listed: not decrypted, no session, no prekey spent.
    async def rogue() -> str:
        async with xmpp_client.Client(bed.env, "carol", "rogue") as c:
            d = await xmpp_client.Device.create(c, device_id=777)
            enc = await d.encrypt(b"from nowhere", [(a.jid, a.device), (c1.jid, c1.device), (c2.jid, c2.device)])
            _, _, stanza_id = await c.send_and_wait(enc)
            return stanza_id

    sid = asyncio.run(rogue())
    got = by_id(a.sync())
    e = got[sid]
    check(e["type"] == "undecryptable" and e["trust"] == "unlisted" and e["reason"].startswith("unlisted"),
          f"unlisted: {e}")
    with sqlite3.connect(a.state) as db:
        n = db.execute("SELECT count(*) FROM sessions WHERE jid = ? AND device = 777", (c1.jid,)).fetchone()[0]
    check(n == 0, "a session was built for an unlisted device")
    check([x["trust"] for x in a.run("history") if x["id"] == sid] == ["unlisted"], "history lost the trust field")


def scenario_expired_history_recovers(bed: Bed) -> None:
    bed.restart_component(retention_seconds=3, retention_interval_seconds=1)
    try:
        d1, e1, e2 = Cli(bed, "dave1", "dave"), Cli(bed, "eve1", "eve"), Cli(bed, "eve2", "eve")
        for d in (d1, e1, e2):
            d.init()
        d1.send(["eve"], "hello eve")
        e2.sync()  # eve2 answers the key exchange: the session is confirmed
        d1.sync()
        # eve2 goes offline; dave sends 1,100 messages over one connection.
        t0 = time.time()
        out = d1.run("send", "--to", e1.jid, "--lines", stdin="".join(f"missed {i}\n" for i in range(1100)),
                     timeout=600)
        check(len(out) == 1100 and all(o["type"] == "sent" and o["id"] for o in out), f"send --lines printed {len(out)}")
        bed.log(f"send --lines: 1,100 messages in {time.time() - t0:.1f} s")
        deadline = time.time() + 60
        while time.time() < deadline and int(bed.psql(f"SELECT count(*) FROM messages WHERE sender_bare = '{d1.jid}'")):
            time.sleep(0.5)
        check(int(bed.psql(f"SELECT count(*) FROM messages WHERE sender_bare = '{d1.jid}'")) == 0,
              "the archive did not expire the messages")
        after = [d1.send(["eve"], f"after the expiry {i}")["id"] for i in range(3)]
        got = by_id(e2.sync())
        for i, sid in enumerate(after):
            check(sid in got and got[sid]["type"] == "message" and got[sid]["body"] == f"after the expiry {i}",
                  f"eve2 after the expiry: {got.get(sid)}")
        s = e2.send(["dave"], "I am back")
        check([x["body"] for x in d1.sync() if x["id"] == s["id"]] == ["I am back"], "dave cannot read eve2")
        # The manual way out: a fresh session by hand, identity checked; both sides go on.
        out = e2.run("reset-session", d1.jid, str(d1.device))
        check(out and out[0]["type"] == "reset" and out[0]["device"] == d1.device, f"reset-session printed {out}")
        s = e2.send(["dave"], "after a reset")
        check(archived_key(bed, s["id"], d1.jid, d1.device).get("kex") in ("true", "1"), "no new key exchange")
        check([x["body"] for x in d1.sync() if x["id"] == s["id"]] == ["after a reset"], "dave cannot read the reset")
        s = d1.send(["eve"], "reply after the reset")
        check([x["body"] for x in e2.sync() if x["id"] == s["id"]] == ["reply after the reset"], "eve2 cannot read dave")
    finally:
        bed.restart_component()


def scenario_lying_archive_is_bounded(bed: Bed) -> None:
    a = getattr(bed, "alice", None)
    if a is None:
        a = Cli(bed, "alice1", "alice")
        a.init()
    bed.stop_component()
    try:
        for mode, error in (("no-progress", "no progress"), ("flood", "more results than asked"),
                            ("cycle", "no progress"), ("expired", "item-not-found"), ("no-list", "device list of bob@")):
            with LyingComponent(bed.env, mode, {a.jid: [a.device]}, a.jid, a.device) as liar:
                t0 = time.time()
                a.run("sync", expect=3, timeout=60)
                check(error in a.last_error, f"{mode}: {a.last_error}")
                check(liar.mam_queries <= 3, f"{mode}: {liar.mam_queries} archive queries before giving up")
                bed.log(f"{mode}: refused after {liar.mam_queries} queries in {time.time() - t0:.1f} s")
        # A query the archive read and never answered (it died holding it) is asked again, with
        # a fresh queryid, long before the 20 s timeout: the sync succeeds.
        with LyingComponent(bed.env, "silent-once", {a.jid: [a.device]}, a.jid, a.device) as liar:
            t0 = time.time()
            a.run("sync", timeout=60)
            check(liar.mam_queries == 2, f"silent-once: {liar.mam_queries} archive queries, expected 2")
            took = time.time() - t0
            check(took < 15, f"silent-once: the sync took {took:.1f} s: it waited out the timeout")
            bed.log(f"silent-once: asked again, done in {took:.1f} s")
        # bob's message whose device list could not be fetched is not written off as "unlisted"
        # (its page was not committed): it is read again next time.
        check(all(e["from_device"] != 7 for e in a.history()),
              "bob's message was stored although his device list could not be fetched")
        # ~9.6 MiB of fan-out while catching up: the client holds at most 8 MiB of it and reads
        # the rest from the archive afterwards (a second query) instead of holding it all.
        with LyingComponent(bed.env, "overflow", {a.jid: [a.device]}, a.jid, a.device) as liar:
            a.run("sync", timeout=60)
            check(liar.mam_queries == 2, f"overflow: {liar.mam_queries} archive queries (want 2: the overflow re-read)")
    finally:
        bed.start_component()
    a.sync()  # the real archive again: no error


def scenario_sends_ride_through_restarts(bed: Bed) -> None:
    """Two component restarts (kill -9, down for a second) during 30 one-shot sends: every send
    exits 0 — `wait` answers (Prosody's while the component is away) and lost receipts are
    retried with the same origin-id within --timeout — and bob reads each message exactly once."""
    import signal
    import threading
    a, b = Cli(bed, "alice-rt", "alice"), Cli(bed, "bob-rt", "bob")
    a.init()
    b.init()
    a.send(["bob"], "warm-up")
    b.sync()
    problems: List[str] = []

    def restarter() -> None:
        try:
            for _ in range(2):
                time.sleep(1.5)
                bed.signal_component(signal.SIGKILL)
                bed.proc.wait(10)
                time.sleep(1.0)
                bed.start_component()
        except Exception as e:  # noqa: BLE001 — reported below
            problems.append(repr(e))

    t = threading.Thread(target=restarter)
    t.start()
    try:
        for i in range(30):
            a.send(["bob"], f"through restarts {i}")  # expect=0: a failure raises
    finally:
        t.join()
    check(not problems, f"restarting the component: {problems}")
    got = [e["body"] for e in b.sync() if e.get("body", "").startswith("through restarts")]
    check(got == [f"through restarts {i}" for i in range(30)], f"bob read {got}")
    with sqlite3.connect(a.state) as db:
        check(db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0, "the outbox is not empty")


SCENARIOS = [scenario_repair_attack_by_lying_server, scenario_trust_on_receive, scenario_lying_archive_is_bounded,
             scenario_expired_history_recovers, scenario_sends_ride_through_restarts]

if __name__ == "__main__":
    sys.exit(test_e2e.run(SCENARIOS, __doc__))
