#!/usr/bin/python3
"""Micro-benchmark of python-twomemo 1.0.3 (backend level), as a reference point for the C++ library.

    /usr/bin/python3 tests/interop/twomemo_bench.py --json        # one JSON object on stdout
    /usr/bin/python3 tests/interop/twomemo_bench.py               # human-readable table (plus extras)

All figures are medians in microseconds (time.perf_counter), single thread, in-memory storage:

  session_setup_active_us   encrypt_plaintext + build_session_active (X3DH + first DR message, verifies
                            spks) + store_session + <encrypted> XML serialization
  session_setup_passive_us  <encrypted> XML parse (incl. twomemo's schema validation) + build_session_passive
                            (X3DH + first DR decryption) + payload decryption + store_session + delete_pre_key
  encrypt_{1,10,100}_us     one message to N devices with existing, confirmed sessions: payload encryption,
                            per device load_session + encrypt_key_material + store_session, XML serialization
  decrypt_us                XML parse (incl. schema validation) + load_session + key decryption + payload
                            decryption + store_session, on an existing, confirmed session, in-order message
Extras (human-readable mode only, or --extras): the same without XML work, and the XML parse alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from typing import Callable, Dict, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import omemo  # noqa: E402
import twomemo  # noqa: E402
import twomemo.etree  # noqa: E402
import x3dh  # noqa: E402
from twomemo.twomemo import BundleImpl  # noqa: E402

from twomemo_peer import NAMESPACE, TwomemoPeer, to_xml  # noqa: E402

PLAINTEXT = (b"<envelope xmlns='urn:xmpp:sce:1'><content><body xmlns='jabber:client'>Hello, this is a "
             b"benchmark message of typical chat length.</body></content><rpad>" + b"r" * 60
             + b"</rpad><from jid='alice@example.org'/></envelope>")


def median_us(samples: List[float]) -> float:
    return round(statistics.median(samples) * 1e6, 1)


def single_pk_bundle(b: BundleImpl, pk: bytes) -> BundleImpl:
    """The bundle reduced to one pre key (to choose the OPK deterministically)."""
    return BundleImpl(b.bare_jid, b.device_id,
                      x3dh.Bundle(b.bundle.identity_key, b.bundle.signed_pre_key, b.bundle.signed_pre_key_sig,
                                  frozenset({pk})),
                      b.signed_pre_key_id, {pk: b.pre_key_ids[pk]})


async def bench_active(n: int, extras: Dict[str, float]) -> float:
    s = await TwomemoPeer.create("alice@example.org", 1001)
    r = await TwomemoPeer.create("bob@example.org", 2002)
    bundle = twomemo.etree.parse_bundle(ET.fromstring(await r.bundle_xml()), "bob@example.org", 2002)
    be = s.backend
    full, core = [], []
    for i in range(n):
        jid = f"bob{i}@example.org"            # a fresh address each time: no session yet
        t0 = time.perf_counter()
        content, pkm = await be.encrypt_plaintext(PLAINTEXT)
        sess, ekm = await be.build_session_active(jid, 2002, bundle, pkm)
        await be.store_session(sess)
        t1 = time.perf_counter()
        msg = omemo.Message(NAMESPACE, s.jid, s.device_id, content, frozenset({(ekm, sess.key_exchange)}))
        xml = to_xml(twomemo.etree.serialize_message(msg))
        t2 = time.perf_counter()
        full.append(t2 - t0)
        core.append(t1 - t0)
        assert xml
    extras["session_setup_active_no_xml_us"] = median_us(core)
    bundle_xml = await r.bundle_xml()
    extras["bundle_parse_us"] = median_us(timeit(
        lambda: twomemo.etree.parse_bundle(ET.fromstring(bundle_xml), "bob@example.org", 2002), 50))
    return median_us(full)


async def bench_passive(n: int, extras: Dict[str, float]) -> float:
    s = await TwomemoPeer.create("alice@example.org", 1001)
    r = await TwomemoPeer.create("bob@example.org", 2002, refill=False)
    full, core = [], []
    done = 0
    batch_no = 0
    while done < n:
        # top the receiver up to 100 pre keys, then craft up to 50 kex messages, each on its own pre key
        visible = await r.backend.get_num_visible_pre_keys()
        if visible < 100:
            await r.backend.generate_pre_keys(100 - visible)
        b = await r.bundle()
        pks = sorted(b.bundle.pre_keys)[:50]
        msgs = []
        for j, pk in enumerate(pks[: n - done]):
            content, pkm = await s.backend.encrypt_plaintext(PLAINTEXT)
            sess, ekm = await s.backend.build_session_active("bob@example.org", 2002, single_pk_bundle(b, pk), pkm)
            sid = 10000 + batch_no * 100 + j      # distinct sender devices
            m = omemo.Message(NAMESPACE, s.jid, sid, content, frozenset({(ekm, sess.key_exchange)}))
            msgs.append(to_xml(twomemo.etree.serialize_message(m)))
        batch_no += 1
        be = r.backend
        for xml in msgs:
            t0 = time.perf_counter()
            m = twomemo.etree.parse_message(ET.fromstring(xml), "alice@example.org")
            t1 = time.perf_counter()
            ekm, kex = next(iter(m.keys))
            sess, pkm = await be.build_session_passive(m.bare_jid, m.device_id, kex, ekm)
            pt = await be.decrypt_plaintext(m.content, pkm)
            await be.store_session(sess)
            await be.delete_pre_key(sess)
            t2 = time.perf_counter()
            assert pt == PLAINTEXT
            full.append(t2 - t0)
            core.append(t2 - t1)
        done += len(msgs)
    extras["session_setup_passive_no_xml_us"] = median_us(core)
    return median_us(full)


async def confirmed_pair(sender: TwomemoPeer, receiver: TwomemoPeer) -> None:
    """Sender builds an active session to receiver; receiver answers so the session is confirmed."""
    x = await sender.encrypt(b"hi", [(receiver.jid, receiver.device_id, await receiver.bundle_xml())])
    await receiver.decrypt(x, sender.jid)
    y = await receiver.encrypt(b"ho", [(sender.jid, sender.device_id, None)])
    await sender.decrypt(y, receiver.jid)


async def bench_encrypt(n_devices: int, iters: int, extras: Dict[str, float]) -> float:
    s = await TwomemoPeer.create("alice@example.org", 1001)
    rec = []
    for k in range(n_devices):
        r = await TwomemoPeer.create(f"user{k // 2}@example.org", 3000 + k, num_pre_keys=25, refill=False)
        await confirmed_pair(s, r)
        rec.append((r.jid, r.device_id))
    be = s.backend
    full, core = [], []
    for _ in range(iters):
        t0 = time.perf_counter()
        content, pkm = await be.encrypt_plaintext(PLAINTEXT)
        keys = set()
        for jid, did in rec:
            sess = await be.load_session(jid, did)
            ekm = await be.encrypt_key_material(sess, pkm)
            await be.store_session(sess)
            keys.add((ekm, None))          # confirmed sessions: no key exchange attached
        t1 = time.perf_counter()
        xml = to_xml(twomemo.etree.serialize_message(
            omemo.Message(NAMESPACE, s.jid, s.device_id, content, frozenset(keys))))
        t2 = time.perf_counter()
        assert xml
        full.append(t2 - t0)
        core.append(t1 - t0)
    extras[f"encrypt_{n_devices}_no_xml_us"] = median_us(core)
    return median_us(full)


async def bench_decrypt(n: int, extras: Dict[str, float]) -> float:
    s = await TwomemoPeer.create("alice@example.org", 1001)
    r = await TwomemoPeer.create("bob@example.org", 2002)
    await confirmed_pair(s, r)
    msgs = [await s.encrypt(PLAINTEXT, [(r.jid, r.device_id, None)]) for _ in range(n)]
    be = r.backend
    full, core, parse = [], [], []
    for xml in msgs:
        t0 = time.perf_counter()
        m = twomemo.etree.parse_message(ET.fromstring(xml), "alice@example.org")
        t1 = time.perf_counter()
        ekm, kex = next(k for k in m.keys if k[0].bare_jid == r.jid and k[0].device_id == r.device_id)
        sess = await be.load_session(m.bare_jid, m.device_id)
        pkm = await be.decrypt_key_material(sess, ekm)
        pt = await be.decrypt_plaintext(m.content, pkm)
        await be.store_session(sess)
        t2 = time.perf_counter()
        assert pt == PLAINTEXT and kex is None
        full.append(t2 - t0)
        core.append(t2 - t1)
        parse.append(t1 - t0)
    extras["decrypt_no_xml_us"] = median_us(core)
    extras["message_xml_parse_us"] = median_us(parse)
    return median_us(full)


def timeit(fn: Callable[[], object], n: int) -> List[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


async def run(scale: float) -> Dict[str, Dict[str, float]]:
    def it(n: int) -> int:
        return max(5, int(n * scale))

    extras: Dict[str, float] = {}
    t_start = time.perf_counter()
    res = {
        "session_setup_active_us": await bench_active(it(200), extras),
        "session_setup_passive_us": await bench_passive(it(200), extras),
        "encrypt_1_us": await bench_encrypt(1, it(600), extras),
        "encrypt_10_us": await bench_encrypt(10, it(200), extras),
        "encrypt_100_us": await bench_encrypt(100, it(30), extras),
        "decrypt_us": await bench_decrypt(it(600), extras),
    }
    extras["total_runtime_s"] = round(time.perf_counter() - t_start, 1)
    return {"main": res, "extras": extras}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print only the JSON object")
    ap.add_argument("--extras", action="store_true", help="with --json: include the extra figures")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply all iteration counts (default 1)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    out = asyncio.run(run(args.scale))
    if args.json:
        obj = dict(out["main"])
        if args.extras:
            obj.update(out["extras"])
        print(json.dumps(obj))
    else:
        for k, v in list(out["main"].items()) + list(out["extras"].items()):
            print(f"{k:36s} {v:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
