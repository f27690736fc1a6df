#!/usr/bin/python3
"""Legacy OMEMO interop test: the C++ oldmemo_interop_tool against python3-oldmemo 1.0.3 (Debian).

    /usr/bin/python3 tests/interop/oldmemo_interop.py --tool build/tests/interop/oldmemo_interop_tool

Prints one line per check (``PASS name`` / ``FAIL name: reason``), then ``N passed, M failed``; exits 1 on
any failure. ``--only a,c`` runs a subset, ``-v`` prints details of passing checks too.

Scenarios
  a  oldmemo -> C++ key exchange; the kex repeated until C++ answers (same session); no kex afterwards
  b  C++ -> oldmemo key exchange (oldmemo verifies our bundle: the Ed25519 sign bit in the SPK signature),
     repeated until answered, then plain SignalMessages; one <encrypted> for two oldmemo devices
  c  out-of-order delivery across DH ratchet steps, both ways; a replay is refused
  d  tampering (payload, GCM tag in the key, SignalMessage MAC, ratchet key, counter) both ways: refused,
     and the untampered message still decrypts afterwards (nothing was committed)
  e  empty (KeyTransport) messages both ways
  f  60 messages in one direction and a long ping-pong (many DH steps)
The prekey attribute rule (prekey='true' only on PreKeySignalMessages) is checked on every <encrypted> the
C++ tool produces, and every one is validated by oldmemo's own schema when it parses it.
"""

from __future__ import annotations

import base64
import os
import random
import sys
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from interop_runner import CheckContext, main  # noqa: E402
from oldmemo_peer import NAMESPACE, OldmemoPeer  # noqa: E402
from twomemo_peer import CppDevice, describe_error, flip_byte, to_xml  # noqa: E402

NS = "{%s}" % NAMESPACE
ALICE = "alice@example.org"
BOB = "bob@example.org"
C_DID = 1001


def keys_of(xml: str) -> List[ET.Element]:
    return list(ET.fromstring(xml).iter(f"{NS}key"))


def prekey_flags(xml: str, rid: int) -> List[Optional[str]]:
    return [k.get("prekey") for k in keys_of(xml) if int(k.get("rid")) == rid]


def with_key(xml: str, rid: int, data: bytes) -> str:
    root = ET.fromstring(xml)
    for k in root.iter(f"{NS}key"):
        if int(k.get("rid")) == rid:
            k.text = base64.b64encode(data).decode()
    return to_xml(root)


def key_bytes(xml: str, rid: int) -> bytes:
    return next(base64.b64decode(k.text) for k in keys_of(xml) if int(k.get("rid")) == rid)


def with_payload(xml: str, data: bytes) -> str:
    root = ET.fromstring(xml)
    root.find(f"{NS}payload").text = base64.b64encode(data).decode()
    return to_xml(root)


def payload_bytes(xml: str) -> bytes:
    return base64.b64decode(ET.fromstring(xml).find(f"{NS}payload").text)


def P(label: str, i: int = 0) -> bytes:
    return f"{label} #{i} \u2013 \u00e9t\u00e9 \U0001F510".encode()


class Ctx(CheckContext):
    def cpp(self, jid: str = ALICE, did: int = C_DID) -> CppDevice:
        return self.spawn(jid, did)

    def check_prekey_rule(self, name: str, xml: str, rid: int, want_kex: bool) -> None:
        flags = prekey_flags(xml, rid)
        self.ok(f"{name}.prekey_attribute", flags == (["true"] if want_kex else [None]), f"prekey attrs {flags}")

    def cpp_decrypt(self, name: str, c: CppDevice, sender: str, xml: str, want: Optional[bytes],
                    critical: bool = True) -> Dict:
        r = c.decrypt(sender, xml)
        (self.must if critical else self.ok)(
            name, r["ok"] and r["plaintext_bytes"] == want,
            f"{r.get('error')}: {r.get('message')}" if not r["ok"] else f"got {r['plaintext_bytes']!r}")
        return r

    def cpp_reject(self, name: str, c: CppDevice, sender: str, xml: str) -> None:
        r = c.decrypt(sender, xml)
        self.ok(name, not r["ok"] and r.get("error") not in (None, "bad_request"), f"answered {r}")

    async def py_decrypt(self, name: str, p: OldmemoPeer, sender: str, xml: str, want: Optional[bytes],
                         critical: bool = True) -> None:
        check = self.must if critical else self.ok
        try:
            pt = (await p.decrypt(xml, sender)).plaintext
        except Exception as e:
            check(name, False, describe_error(e))
            return
        check(name, pt == want, f"got {pt!r}")

    async def py_reject(self, name: str, p: OldmemoPeer, sender: str, xml: str) -> None:
        try:
            await p.decrypt(xml, sender)
            self.ok(name, False, "oldmemo accepted it")
        except Exception as e:
            self.ok(name, True, detail=describe_error(e))


async def pair(ctx: Ctx) -> Tuple[CppDevice, OldmemoPeer, str]:
    """C++ device ALICE/1001 and oldmemo BOB/2002 with an established, confirmed session (oldmemo initiated)."""
    c = ctx.cpp()
    b = await OldmemoPeer.create(BOB, 2002)
    c_bundle = c.bundle()
    x = await b.encrypt(P("hello"), [(ALICE, C_DID, c_bundle)])
    ctx.cpp_decrypt("setup.kex", c, BOB, x, P("hello"))
    b.learn_bundle(ALICE, C_DID, c_bundle)
    y = c.encrypt(P("answer"), [(BOB, 2002, None)])
    await ctx.py_decrypt("setup.answer", b, ALICE, y, P("answer"))
    return c, b, c_bundle


async def scenario_a(ctx: Ctx) -> None:
    c = ctx.cpp()
    b = await OldmemoPeer.create(BOB, 2002)
    c_bundle = c.bundle()
    first = [await b.encrypt(P("a", i), [(ALICE, C_DID, c_bundle)]) for i in range(3)]
    for i, x in enumerate(first):
        ctx.ok(f"a.oldmemo_sends_kex_{i}", prekey_flags(x, C_DID) == ["true"], str(prekey_flags(x, C_DID)))
    r = ctx.cpp_decrypt("a.kex_0", c, BOB, first[0], P("a", 0))
    ctx.ok("a.kex_reported", r.get("kex") is True, str(r))
    ctx.cpp_decrypt("a.kex_2_out_of_order_same_session", c, BOB, first[2], P("a", 2))
    ctx.cpp_decrypt("a.kex_1", c, BOB, first[1], P("a", 1))
    b.learn_bundle(ALICE, C_DID, c_bundle)
    reply = c.encrypt(P("a-reply"), [(BOB, 2002, None)])
    ctx.check_prekey_rule("a.reply", reply, 2002, want_kex=False)
    await ctx.py_decrypt("a.oldmemo_reads_reply", b, ALICE, reply, P("a-reply"))
    after = await b.encrypt(P("a-after"), [(ALICE, C_DID, None)])
    ctx.ok("a.no_kex_after_answer", prekey_flags(after, C_DID) == [None], str(prekey_flags(after, C_DID)))
    ctx.cpp_decrypt("a.after", c, BOB, after, P("a-after"))


async def scenario_b(ctx: Ctx) -> None:
    c = ctx.cpp()
    b1 = await OldmemoPeer.create(BOB, 2002)
    b2 = await OldmemoPeer.create(BOB, 2003)
    c_bundle = c.bundle()
    # oldmemo's schema and signature check accept our bundle, and see our Ed25519 sign bit
    for p in (b1, b2):
        bundle = p.learn_bundle(ALICE, C_DID, c_bundle)
    ctx.ok("b.bundle_parsed_by_oldmemo", len(bundle.identity_key) == 32)
    # Both values of the Ed25519 sign bit (it rides in the SPK signature): devices until each was seen.
    seen = {bundle.identity_key[31] >> 7}
    for _ in range(40):
        if len(seen) == 2:
            break
        extra = ctx.cpp(ALICE, 1500 + len(ctx.devices))
        seen.add(b1.learn_bundle(ALICE, extra.device_id, extra.bundle()).identity_key[31] >> 7)
    ctx.ok("b.both_sign_bits_accepted_by_oldmemo", seen == {0, 1}, f"sign bits seen {seen}")
    bx = {2002: await b1.bundle_xml(), 2003: await b2.bundle_xml()}
    x1 = c.encrypt(P("b", 1), [(BOB, 2002, bx[2002]), (BOB, 2003, bx[2003])])
    x2 = c.encrypt(P("b", 2), [(BOB, 2002, None), (BOB, 2003, None)])
    for rid in (2002, 2003):
        ctx.check_prekey_rule(f"b.first_{rid}", x1, rid, want_kex=True)
        ctx.check_prekey_rule(f"b.second_{rid}", x2, rid, want_kex=True)
    await ctx.py_decrypt("b.dev2002_first", b1, ALICE, x1, P("b", 1))
    await ctx.py_decrypt("b.dev2003_first", b2, ALICE, x1, P("b", 1))
    await ctx.py_decrypt("b.dev2002_repeated_kex_same_session", b1, ALICE, x2, P("b", 2))
    await ctx.py_decrypt("b.dev2003_repeated_kex_same_session", b2, ALICE, x2, P("b", 2))
    ans = await b1.encrypt(P("b-answer"), [(ALICE, C_DID, None)])
    ctx.ok("b.oldmemo_answer_has_no_kex", prekey_flags(ans, C_DID) == [None], str(prekey_flags(ans, C_DID)))
    ctx.cpp_decrypt("b.cpp_reads_answer", c, BOB, ans, P("b-answer"))
    x3 = c.encrypt(P("b", 3), [(BOB, 2002, None), (BOB, 2003, None)])
    ctx.check_prekey_rule("b.confirmed_2002", x3, 2002, want_kex=False)
    ctx.check_prekey_rule("b.unconfirmed_2003", x3, 2003, want_kex=True)
    await ctx.py_decrypt("b.dev2002_third", b1, ALICE, x3, P("b", 3))
    await ctx.py_decrypt("b.dev2003_third", b2, ALICE, x3, P("b", 3))


async def scenario_c(ctx: Ctx) -> None:
    c, b, _ = await pair(ctx)
    # oldmemo -> C++: two chains (a DH step in between), delivered shuffled
    burst = [await b.encrypt(P("c1", i), [(ALICE, C_DID, None)]) for i in range(4)]
    mid = c.encrypt(P("c-mid"), [(BOB, 2002, None)])
    await ctx.py_decrypt("c.mid", b, ALICE, mid, P("c-mid"))
    burst += [await b.encrypt(P("c1", i), [(ALICE, C_DID, None)]) for i in range(4, 8)]
    for i in [6, 1, 0, 7, 3, 5, 2, 4]:
        ctx.cpp_decrypt(f"c.cpp_shuffled_{i}", c, BOB, burst[i], P("c1", i), critical=False)
    r = c.decrypt(BOB, burst[3])
    ctx.ok("c.cpp_replay_refused", not r["ok"] and r.get("error") == "duplicate_message", str(r))
    # C++ -> oldmemo, the same
    out = [c.encrypt(P("c2", i), [(BOB, 2002, None)]) for i in range(4)]
    back = await b.encrypt(P("c-back"), [(ALICE, C_DID, None)])
    ctx.cpp_decrypt("c.back", c, BOB, back, P("c-back"))
    out += [c.encrypt(P("c2", i), [(BOB, 2002, None)]) for i in range(4, 8)]
    for i in [5, 0, 7, 2, 1, 6, 4, 3]:
        await ctx.py_decrypt(f"c.oldmemo_shuffled_{i}", b, ALICE, out[i], P("c2", i), critical=False)
    await ctx.py_reject("c.oldmemo_replay_refused", b, ALICE, out[2])


async def scenario_d(ctx: Ctx) -> None:
    c, b, _ = await pair(ctx)
    x = await b.encrypt(P("d"), [(ALICE, C_DID, None)])
    k = key_bytes(x, C_DID)   # 0x33 ‖ protobuf ‖ mac8
    variants = {
        "payload": with_payload(x, flip_byte(payload_bytes(x), 3)),
        "mac": with_key(x, C_DID, flip_byte(k, len(k) - 1)),
        "ciphertext": with_key(x, C_DID, flip_byte(k, len(k) - 12)),
        "ratchet_key": with_key(x, C_DID, flip_byte(k, 10)),
        "version": with_key(x, C_DID, bytes([0x32]) + k[1:]),
        "truncated": with_key(x, C_DID, k[:20]),
    }
    for name, bad in variants.items():
        ctx.cpp_reject(f"d.cpp_refuses_{name}", c, BOB, bad)
    ctx.cpp_decrypt("d.cpp_untampered_after", c, BOB, x, P("d"))
    y = c.encrypt(P("d2"), [(BOB, 2002, None)])
    k2 = key_bytes(y, 2002)
    for name, bad in {"payload": with_payload(y, flip_byte(payload_bytes(y), 0)),
                      "mac": with_key(y, 2002, flip_byte(k2, len(k2) - 3)),
                      "ciphertext": with_key(y, 2002, flip_byte(k2, len(k2) - 10))}.items():
        await ctx.py_reject(f"d.oldmemo_refuses_{name}", b, ALICE, bad)
    await ctx.py_decrypt("d.oldmemo_untampered_after", b, ALICE, y, P("d2"))


async def scenario_e(ctx: Ctx) -> None:
    c, b, _ = await pair(ctx)
    e = await b.encrypt(None, [(ALICE, C_DID, None)])
    ctx.ok("e.oldmemo_empty_has_no_payload", ET.fromstring(e).find(f"{NS}payload") is None)
    ctx.cpp_decrypt("e.cpp_reads_empty", c, BOB, e, None)
    ce = c.encrypt_empty([(BOB, 2002, None)])
    root = ET.fromstring(ce)
    ctx.ok("e.cpp_empty_shape", root.find(f"{NS}payload") is None and root.find(f"{NS}header/{NS}iv") is not None,
           ce)
    ctx.ok("e.cpp_empty_dr_size", len(key_bytes(ce, 2002)) == 82, f"{len(key_bytes(ce, 2002))} bytes")
    await ctx.py_decrypt("e.oldmemo_reads_empty", b, ALICE, ce, None)
    # after the empties the conversation goes on
    x = await b.encrypt(P("e-after"), [(ALICE, C_DID, None)])
    ctx.cpp_decrypt("e.after", c, BOB, x, P("e-after"))


async def scenario_f(ctx: Ctx) -> None:
    c, b, _ = await pair(ctx)
    many = [await b.encrypt(P("f", i), [(ALICE, C_DID, None)]) for i in range(60)]
    ok = sum(1 for i, x in enumerate(many) if c.decrypt(BOB, x).get("plaintext_bytes") == P("f", i))
    ctx.ok("f.sixty_oldmemo_to_cpp", ok == 60, f"{ok}/60")
    many = [c.encrypt(P("g", i), [(BOB, 2002, None)]) for i in range(60)]
    got = 0
    for i, x in enumerate(many):
        got += (await b.decrypt(x, ALICE)).plaintext == P("g", i)
    ctx.ok("f.sixty_cpp_to_oldmemo", got == 60, f"{got}/60")
    rng = random.Random(ctx.seed)
    good = 0
    for rnd in range(30):
        for _ in range(rng.randrange(1, 4)):
            x = await b.encrypt(P("pp-b", rnd), [(ALICE, C_DID, None)])
            good += c.decrypt(BOB, x).get("plaintext_bytes") == P("pp-b", rnd)
        for _ in range(rng.randrange(1, 4)):
            y = c.encrypt(P("pp-c", rnd), [(BOB, 2002, None)])
            good += (await b.decrypt(y, ALICE)).plaintext == P("pp-c", rnd)
    ctx.ok("f.ping_pong_with_dh_steps", good > 0 and ctx.failed == 0, f"{good} messages")


SCENARIOS = {"a": scenario_a, "b": scenario_b, "c": scenario_c, "d": scenario_d, "e": scenario_e, "f": scenario_f}


if __name__ == "__main__":
    sys.exit(main(__doc__, SCENARIOS, Ctx))
