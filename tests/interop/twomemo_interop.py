#!/usr/bin/python3
"""OMEMO 2 interop test: the C++ omemo_interop_tool against python-twomemo 1.0.3 (Debian).

    /usr/bin/python3 tests/interop/twomemo_interop.py --tool build/tests/interop/omemo_interop_tool
    /usr/bin/python3 tests/interop/twomemo_interop.py --tool "/usr/bin/python3 tests/interop/fake_tool_twomemo.py"

Prints one line per check (``PASS name`` / ``FAIL name: reason``), then ``N passed, M failed``; exits 1 on any
failure. ``--only a,c`` runs a subset of the scenarios, ``-v`` prints details of passing checks too.

Scenarios
  a  C++ -> twomemo key exchange; kex on follow-ups until twomemo answers; no kex afterwards
  b  C++ -> 3 twomemo devices (own other device + 2 of another user) in one <encrypted>, and the reverse
  c  twomemo -> C++ key exchange, in-order and out-of-order delivery across a DH ratchet step; OPK deletion
  d  tampering (payload, mac, DR ciphertext, n, pn, dh_pub, pk_id, spk_id, ik, ek, first byte), both ways
  e  replay -> duplicate_message (C++) / DecryptionFailed (twomemo), both ways, kex and normal messages
  f  empty OMEMO messages both ways (incl. as key-exchange completion)
  g  save/load of the C++ device mid-conversation (skipped keys, unconfirmed session, unused OPKs)
  h  60+ messages in one direction (n passes 53), both ways, plus 20 delivered in reverse order
  i  error handling: not_for_this_device, no_session, malformed input, namespace prefixes, wrapped base64
The kex attribute rule (kex='true' only on key exchanges, otherwise no attribute) is checked on every
<encrypted> the C++ tool produces.
"""

from __future__ import annotations

import base64
import os
import sys
import xml.etree.ElementTree as ET
from typing import Dict, Iterable, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import omemo  # noqa: E402

from interop_runner import CheckContext, main  # noqa: E402
from twomemo_peer import (  # noqa: E402
    NS, CppDevice, TwomemoPeer, ToolError, bundle_info, describe_error, flip_byte, kex_header,
    key_field_offsets, parse_encrypted, replace_key, replace_payload, to_xml,
)

ALICE = "alice@example.org"
BOB = "bob@example.org"
CAROL = "carol@example.org"
C_DID = 1001


def acceptable_error(err: object) -> bool:
    """Generic rejections: any lower_snake error name except bad_request (the tool's catch-all for exceptions
    and unknown ops, which should not be how a decryption failure surfaces)."""
    return (isinstance(err, str) and err != "bad_request" and bool(err)
            and all(ch.islower() or ch.isdigit() or ch == "_" for ch in err) and err[0].isalpha())


class Ctx(CheckContext):
    def spawn(self, jid: str = ALICE, did: int = C_DID) -> CppDevice:
        return super().spawn(jid, did)

    # --- C++ encrypt + kex rule ----------------------------------------------------------------------------
    def check_cpp_xml(self, name: str, xml: str, expect: Dict[Tuple[str, int], bool], sender: CppDevice,
                      empty: bool = False) -> None:
        """Check an <encrypted> produced by the C++ tool: sid, the exact recipient set, <payload> presence, and
        the kex attribute rule (absent or exactly 'true'; 'true' exactly where a key exchange is expected)."""
        try:
            sid, keys, payload = parse_encrypted(xml)
        except Exception as e:
            self.must(f"{name}.xml", False, f"cannot parse <encrypted>: {describe_error(e)}: {xml[:200]!r}")
            return
        problems = []
        if sid != sender.device_id:
            problems.append(f"sid={sid}, expected {sender.device_id}")
        if set(keys) != set(expect):
            problems.append(f"recipients {sorted(keys)} != expected {sorted(expect)}")
        if (sender.jid, sender.device_id) in keys:
            problems.append("contains a <key> for the sender itself")
        if empty and payload is not None:
            problems.append("empty message has a <payload>")
        if not empty and payload is None:
            problems.append("no <payload>")
        self.ok(f"{name}.xml", not problems, "; ".join(problems))
        bad = []
        for addr, k in sorted(keys.items()):
            if k.kex_attr not in (None, "true"):
                bad.append(f"{addr[0]}/{addr[1]} kex={k.kex_attr!r} (must be 'true' or absent)")
            elif addr in expect and (k.kex_attr == "true") != expect[addr]:
                bad.append(f"{addr[0]}/{addr[1]} kex={k.kex_attr!r}, expected "
                           f"{'true' if expect[addr] else 'no attribute'}")
        self.ok(f"{name}.kex_attr", not bad, "; ".join(bad))

    def cpp_encrypt(self, name: str, dev: CppDevice, pt: Optional[bytes],
                    recipients: Iterable[Tuple[str, int, Optional[str]]],
                    expect_kex: Dict[Tuple[str, int], bool]) -> str:
        recipients = list(recipients)
        try:
            xml = dev.encrypt(pt, recipients) if pt is not None else dev.encrypt_empty(recipients)
        except ToolError as e:
            self.must(f"{name}.encrypt", False, str(e))
        self.check_cpp_xml(name, xml, expect_kex, dev, empty=pt is None)
        return xml

    # --- decrypt helpers ---------------------------------------------------------------------------------
    async def tm_decrypt(self, name: str, peer: TwomemoPeer, xml: str, sender: str, want: Optional[bytes],
                         want_kex: Optional[bool] = None, want_sid: Optional[int] = None,
                         critical: bool = True) -> bool:
        try:
            d = await peer.decrypt(xml, sender)
        except Exception as e:
            (self.must if critical else self.ok)(name, False, f"twomemo raised {describe_error(e)}")
            return False
        problems = []
        if d.plaintext != want:
            problems.append(f"plaintext {d.plaintext!r:.60} != {want!r:.60}")
        if want_kex is not None and d.kex != want_kex:
            problems.append(f"kex={d.kex}, expected {want_kex}")
        if want_sid is not None and d.sender_device != want_sid:
            problems.append(f"sender device {d.sender_device} != {want_sid}")
        (self.must if critical else self.ok)(name, not problems, "; ".join(problems))
        return not problems

    async def tm_reject(self, name: str, peer: TwomemoPeer, xml: str, sender: str,
                        exc_type: Optional[type] = None) -> None:
        try:
            d = await peer.decrypt(xml, sender)
        except Exception as e:
            if exc_type is not None and not isinstance(e, exc_type):
                self.ok(name, False, f"raised {describe_error(e)}, expected {exc_type.__name__}")
            else:
                self.ok(name, True, detail=describe_error(e))
            return
        self.ok(name, False, f"twomemo accepted it (plaintext {d.plaintext!r:.40})")

    def cpp_decrypt(self, name: str, dev: CppDevice, sender: str, xml: str, want: Optional[bytes],
                    want_kex: Optional[bool] = None, want_sid: Optional[int] = None,
                    critical: bool = True) -> bool:
        try:
            r = dev.decrypt(sender, xml)
        except ToolError as e:
            self.must(name, False, str(e))
        problems = []
        if not r["ok"]:
            problems.append(f"ok:false {r.get('error')}: {r.get('message')}")
        else:
            if "plaintext" not in r:
                problems.append("reply has no 'plaintext' member")
            elif r["plaintext_bytes"] != want:
                problems.append(f"plaintext {r['plaintext_bytes']!r:.60} != {want!r:.60}")
            if want_kex is not None and r.get("kex") is not want_kex:
                problems.append(f"kex={r.get('kex')!r}, expected {want_kex}")
            if want_sid is not None and r.get("sender_device") != want_sid:
                problems.append(f"sender_device={r.get('sender_device')!r}, expected {want_sid}")
        (self.must if critical else self.ok)(name, not problems, "; ".join(problems))
        return not problems

    def cpp_reject(self, name: str, dev: CppDevice, sender: str, xml: str,
                   want_error: Optional[Iterable[str]] = None) -> Optional[str]:
        try:
            r = dev.decrypt(sender, xml)
        except ToolError as e:
            self.must(name, False, str(e))
        if r["ok"]:
            self.ok(name, False, f"C++ accepted it (plaintext {r.get('plaintext')!r:.40})")
            return None
        err = r.get("error")
        if want_error is not None:
            allowed = set(want_error)
            self.ok(name, err in allowed, f"error {err!r} ({r.get('message')}), expected one of {sorted(allowed)}",
                    detail=f"{err}: {r.get('message')}")
        else:
            self.ok(name, acceptable_error(err), f"error {err!r} ({r.get('message')}), expected a lower_snake "
                    "error name other than bad_request", detail=f"{err}: {r.get('message')}")
        return err


def P(label: str, i: int = 0) -> bytes:
    """Distinct, recognisable plaintexts (with some non-ASCII and varying length)."""
    return f"{label} #{i} — ünïcödé ✓ ".encode() + bytes(range(i % 7)) + b"x" * (i * 13 % 50)


def safe_kex_header(k) -> Optional[tuple]:
    """(pk_id, spk_id, ik, ek) of a KeyElem that is a key exchange, else None."""
    try:
        return kex_header(k.data) if k.is_kex else None
    except Exception:
        return None


def restrict_bundle(bundle_xml: str, keep_pk_id: int) -> str:
    """The bundle with only one <pk> left (to force a given pre key)."""
    root = ET.fromstring(bundle_xml)
    prekeys = root.find(f"{NS}prekeys")
    for pk in list(prekeys):
        if int(pk.get("id")) != keep_pk_id:
            prekeys.remove(pk)
    if len(prekeys) != 1:
        raise ValueError(f"pk id {keep_pk_id} not in bundle")
    return to_xml(root)


def tamper_variants(xml: str, jid: str, rid: int) -> List[Tuple[str, str]]:
    """(label, tampered xml): one byte flipped in the payload or in the <key> for jid/rid."""
    _, keys, payload = parse_encrypted(xml)
    k = keys[(jid, rid)]
    offs = key_field_offsets(k.data, k.is_kex)
    out: List[Tuple[str, str]] = []
    if payload is not None:
        out.append(("payload", replace_payload(xml, flip_byte(payload, len(payload) // 2))))
        out.append(("payload_last_byte", replace_payload(xml, flip_byte(payload, len(payload) - 1))))

    def flip(label: str, field: str, rel: Optional[int] = None, mask: int = 0x01) -> None:
        s, e = offs[field]
        pos = s + ((e - s) // 2 if rel is None else rel)
        out.append((label, replace_key(xml, jid, rid, flip_byte(k.data, pos, mask))))

    flip("key_mac", "mac")
    flip("key_mac_first", "mac", 0, 0x80)
    flip("key_dr_ciphertext", "ciphertext")
    flip("key_dr_ciphertext_last", "ciphertext", offs["ciphertext"][1] - offs["ciphertext"][0] - 1)
    flip("key_n", "n", 0)
    flip("key_pn", "pn", 0)
    flip("key_dh_pub", "dh_pub", 5)
    if k.is_kex:
        flip("kex_pk_id", "pk_id", 0)
        flip("kex_spk_id", "spk_id", 0)
        flip("kex_ik", "ik", 5)
        flip("kex_ek", "ek", 5)
    out.append(("key_first_byte", replace_key(xml, jid, rid, flip_byte(k.data, 0))))
    return out


# =========================================================================================================
# Scenarios
# =========================================================================================================

async def scenario_a(ctx: Ctx) -> None:
    """C++ -> twomemo key exchange."""
    c = ctx.spawn()
    t = await TwomemoPeer.create(BOB, 2002)
    cb = c.bundle()
    try:
        spk_id, ik, pks = bundle_info(cb)
        ctx.ok("a.cpp_bundle_valid", len(pks) == 100, f"{len(pks)} prekeys, expected 100")
    except Exception as e:
        ctx.must("a.cpp_bundle_valid", False, f"twomemo rejects the C++ bundle: {describe_error(e)}")
    t.learn_bundle(ALICE, C_DID, cb)
    tb = await t.bundle_xml()
    me = (BOB, 2002)

    x1 = ctx.cpp_encrypt("a.msg1", c, P("a1"), [(BOB, 2002, tb)], {me: True})
    await ctx.tm_decrypt("a.twomemo_decrypts_kex", t, x1, ALICE, P("a1"), want_kex=True, want_sid=C_DID)
    s = await t.session(ALICE, C_DID)
    kx1 = kex_header(parse_encrypted(x1)[1][me].data)
    ctx.ok("a.kex_ik_matches_bundle", kx1[2] == ik, "ik in OMEMOKeyExchange != <ik> of the C++ bundle")
    tspk, _, tpks = bundle_info(tb)
    ctx.ok("a.kex_ids_from_bundle", kx1[1] == tspk and kx1[0] in tpks,
           f"pk_id={kx1[0]} spk_id={kx1[1]} not in twomemo's bundle (spk {tspk})")
    ctx.ok("a.twomemo_deleted_opk", kx1[0] not in bundle_info(await t.bundle_xml())[2], "used pk still in bundle")
    ctx.ok("a.twomemo_session_passive", s is not None and s.initiation is omemo.session.Initiation.PASSIVE)

    # follow-ups before twomemo answers: still kex, same key exchange header
    x2 = ctx.cpp_encrypt("a.msg2", c, P("a2"), [(BOB, 2002, None)], {me: True})
    x3 = ctx.cpp_encrypt("a.msg3", c, P("a3"), [(BOB, 2002, None)], {me: True})
    same = all(safe_kex_header(parse_encrypted(x)[1][me]) == kx1 for x in (x2, x3))
    ctx.ok("a.followups_repeat_same_kex", same, "pk_id/spk_id/ik/ek differ between kex messages of one session")
    await ctx.tm_decrypt("a.twomemo_decrypts_followup2", t, x2, ALICE, P("a2"), want_kex=True)

    # twomemo answers (passive: no kex), C++ decrypts -> session confirmed
    r1 = await t.encrypt(P("a-r1"), [(ALICE, C_DID, None)])
    ctx.ok("a.twomemo_reply_has_no_kex", not any(k.kex_attr for k in parse_encrypted(r1)[1].values()))
    ctx.cpp_decrypt("a.cpp_decrypts_reply", c, BOB, r1, P("a-r1"), want_kex=False, want_sid=2002)

    x4 = ctx.cpp_encrypt("a.msg4_after_confirm", c, P("a4"), [(BOB, 2002, None)], {me: False})
    await ctx.tm_decrypt("a.twomemo_decrypts_msg4", t, x4, ALICE, P("a4"), want_kex=False)
    # x3 (kex, sent before the reply) delivered late, after the ratchet step: skipped key of the old chain
    await ctx.tm_decrypt("a.twomemo_decrypts_late_kex_followup3", t, x3, ALICE, P("a3"), want_kex=True)
    for i in range(3):
        r = await t.encrypt(P("a-r", i), [(ALICE, C_DID, None)])
        ctx.cpp_decrypt(f"a.pingpong{i}.cpp", c, BOB, r, P("a-r", i), want_kex=False)
        x = ctx.cpp_encrypt(f"a.pingpong{i}", c, P("a-x", i), [(BOB, 2002, None)], {me: False})
        await ctx.tm_decrypt(f"a.pingpong{i}.twomemo", t, x, ALICE, P("a-x", i), want_kex=False)
    rc = c.quit()
    ctx.ok("a.quit_exit_0", rc == 0, f"exit code {rc}")


async def scenario_b(ctx: Ctx) -> None:
    """C++ -> several twomemo devices in one <encrypted> (and twomemo fan-out including the C++ device)."""
    c = ctx.spawn()
    cb = c.bundle()
    own = await TwomemoPeer.create(ALICE, 1002)
    b1 = await TwomemoPeer.create(BOB, 2002)
    b2 = await TwomemoPeer.create(BOB, 2003)
    peers = [own, b1, b2]
    for p in peers:
        p.learn_bundle(ALICE, C_DID, cb)
    rec = [(p.jid, p.device_id, await p.bundle_xml()) for p in peers]
    addrs = [(p.jid, p.device_id) for p in peers]

    x = ctx.cpp_encrypt("b.fanout1", c, P("b1"), rec, {a: True for a in addrs})
    root = ET.fromstring(x)
    keys_jids = sorted(k.get("jid") for k in root.iter(f"{NS}keys"))
    ctx.ok("b.fanout1.one_keys_per_jid", keys_jids == sorted({ALICE, BOB}), f"<keys jid> = {keys_jids}")
    for p in peers:
        await ctx.tm_decrypt(f"b.fanout1.{p.jid.split('@')[0]}_{p.device_id}", p, x, ALICE, P("b1"),
                             want_kex=True, want_sid=C_DID, critical=False)

    # own device and bob/2002 answer; bob/2003 stays silent -> mixed kex in one message
    for p in (own, b1):
        r = await p.encrypt(P("b-r", p.device_id), [(ALICE, C_DID, None)])
        ctx.cpp_decrypt(f"b.cpp_decrypts_reply_{p.device_id}", c, p.jid, r, P("b-r", p.device_id),
                        want_kex=False, want_sid=p.device_id)
    x2 = ctx.cpp_encrypt("b.fanout2_mixed", c, P("b2"), [(a[0], a[1], None) for a in addrs],
                         {addrs[0]: False, addrs[1]: False, addrs[2]: True})
    for p in peers:
        await ctx.tm_decrypt(f"b.fanout2.{p.jid.split('@')[0]}_{p.device_id}", p, x2, ALICE, P("b2"),
                             want_kex=p is b2, critical=False)

    # twomemo bob/2002 -> C++ (alice/1001) + alice/1002 + its own other device bob/2003, in one <encrypted>
    tb_own = await own.bundle_xml()
    tb_b2 = await b2.bundle_xml()
    y = await b1.encrypt(P("b-y"), [(ALICE, C_DID, None), (ALICE, 1002, tb_own), (BOB, 2003, tb_b2)])
    ctx.cpp_decrypt("b.twomemo_fanout_to_cpp", c, BOB, y, P("b-y"), want_kex=False, want_sid=2002)
    await ctx.tm_decrypt("b.twomemo_fanout_to_alice_1002", own, y, BOB, P("b-y"), want_kex=True, critical=False)
    await ctx.tm_decrypt("b.twomemo_fanout_to_bob_2003", b2, y, BOB, P("b-y"), want_kex=True, critical=False)


async def scenario_c(ctx: Ctx) -> None:
    """twomemo -> C++ key exchange; in-order, then out-of-order across a DH ratchet step."""
    c = ctx.spawn()
    cb0 = c.bundle()
    t = await TwomemoPeer.create(BOB, 2002)
    t.learn_bundle(ALICE, C_DID, cb0)
    cme = (BOB, 2002)

    ks = []
    for i in range(3):
        ks.append(await t.encrypt(P("c-k", i), [(ALICE, C_DID, cb0 if i == 0 else None)]))
    ctx.ok("c.twomemo_sends_kex", all(parse_encrypted(k)[1][(ALICE, C_DID)].is_kex for k in ks))
    for i, k in enumerate(ks):
        ctx.cpp_decrypt(f"c.cpp_decrypts_kex{i}", c, BOB, k, P("c-k", i), want_kex=True, want_sid=2002)

    used_pk = (await t.session(ALICE, C_DID)).key_exchange.pre_key_id
    try:
        spk1, ik1, pks1 = bundle_info(c.bundle())
        ctx.ok("c.cpp_deleted_used_opk", used_pk not in pks1, f"used pk id {used_pk} still in the C++ bundle")
        ctx.ok("c.cpp_bundle_still_has_prekeys", len(pks1) >= 25, f"{len(pks1)} prekeys")
    except Exception as e:
        ctx.ok("c.cpp_deleted_used_opk", False, f"bundle after kex not valid: {describe_error(e)}")

    # C++ answers (passive: no kex); twomemo decrypts -> confirmed, DH ratchet step (chain A)
    r1 = ctx.cpp_encrypt("c.cpp_reply1", c, P("c-r1"), [(BOB, 2002, None)], {cme: False})
    await ctx.tm_decrypt("c.twomemo_decrypts_reply1", t, r1, ALICE, P("c-r1"), want_kex=False)
    o1 = await t.encrypt(P("c-o1"), [(ALICE, C_DID, None)])
    ctx.ok("c.twomemo_no_kex_after_confirm", not parse_encrypted(o1)[1][(ALICE, C_DID)].kex_attr)
    ctx.cpp_decrypt("c.cpp_decrypts_o1", c, BOB, o1, P("c-o1"), want_kex=False)

    # batch: m1, m2 in chain A; C++ replies; twomemo ratchets (chain B); m3..m5 in chain B
    m = {}
    for i in (1, 2):
        m[i] = await t.encrypt(P("c-m", i), [(ALICE, C_DID, None)])
    r2 = ctx.cpp_encrypt("c.cpp_reply2", c, P("c-r2"), [(BOB, 2002, None)], {cme: False})
    await ctx.tm_decrypt("c.twomemo_decrypts_reply2", t, r2, ALICE, P("c-r2"))
    for i in (3, 4, 5):
        m[i] = await t.encrypt(P("c-m", i), [(ALICE, C_DID, None)])
    dh = {i: key_field_offsets(parse_encrypted(m[i])[1][(ALICE, C_DID)].data, False)["dh_pub"] for i in m}
    dhs = {i: parse_encrypted(m[i])[1][(ALICE, C_DID)].data[dh[i][0]:dh[i][1]] for i in m}
    ctx.ok("c.batch_crosses_ratchet_step", dhs[1] == dhs[2] != dhs[3] == dhs[4] == dhs[5],
           "expected m1,m2 on one ratchet key and m3..m5 on another")
    for i in (3, 1, 5, 2, 4):
        ctx.cpp_decrypt(f"c.out_of_order_m{i}", c, BOB, m[i], P("c-m", i), want_kex=False, critical=False)

    # the conversation goes on
    r3 = ctx.cpp_encrypt("c.cpp_reply3", c, P("c-r3"), [(BOB, 2002, None)], {cme: False})
    await ctx.tm_decrypt("c.twomemo_decrypts_reply3", t, r3, ALICE, P("c-r3"))
    o2 = await t.encrypt(P("c-o2"), [(ALICE, C_DID, None)])
    ctx.cpp_decrypt("c.cpp_decrypts_o2", c, BOB, o2, P("c-o2"))

    # another device tries to reuse the consumed pre key -> rejected
    t3 = await TwomemoPeer.create(CAROL, 3003)
    stale = restrict_bundle(cb0, used_pk)
    k3 = await t3.encrypt(P("c-stale"), [(ALICE, C_DID, stale)])
    ctx.cpp_reject("c.reused_opk_rejected", c, CAROL, k3, {"unknown_prekey"})
    # and a fresh key exchange from that device works
    t3b = await TwomemoPeer.create(CAROL, 3004)
    k4 = await t3b.encrypt(P("c-fresh"), [(ALICE, C_DID, c.bundle())])
    ctx.cpp_decrypt("c.second_kex_from_other_user", c, CAROL, k4, P("c-fresh"), want_kex=True, want_sid=3004)
    o3 = await t.encrypt(P("c-o3"), [(ALICE, C_DID, None)])
    ctx.cpp_decrypt("c.first_session_unaffected", c, BOB, o3, P("c-o3"))


async def scenario_d(ctx: Ctx) -> None:
    """Tampering both ways; each tampered copy rejected, then the original still decrypts."""
    c = ctx.spawn()
    cb = c.bundle()
    t = await TwomemoPeer.create(BOB, 2002)            # deliberately not told C++'s ik: X3DH must catch it
    me_t = (BOB, 2002)
    me_c = (ALICE, C_DID)

    async def to_twomemo(label: str, xml: str, pt: bytes, kex: bool) -> None:
        for vname, bad in tamper_variants(xml, *me_t):
            await ctx.tm_reject(f"d.{label}.{vname}", t, bad, ALICE)
        await ctx.tm_decrypt(f"d.{label}.original_after_tampering", t, xml, ALICE, pt, want_kex=kex)

    def to_cpp(label: str, dev: CppDevice, sender: str, xml: str, pt: bytes, kex: bool) -> None:
        for vname, bad in tamper_variants(xml, *me_c):
            ctx.cpp_reject(f"d.{label}.{vname}", dev, sender, bad)
        ctx.cpp_decrypt(f"d.{label}.original_after_tampering", dev, sender, xml, pt, want_kex=kex)

    # C++ -> twomemo, key exchange message
    x1 = ctx.cpp_encrypt("d.cpp_kex", c, P("d1"), [(BOB, 2002, await t.bundle_xml())], {me_t: True})
    await to_twomemo("cpp_to_tm_kex", x1, P("d1"), True)
    # twomemo -> C++, normal message on the passive session
    y1 = await t.encrypt(P("d-y1"), [(ALICE, C_DID, None)])
    to_cpp("tm_to_cpp_msg", c, BOB, y1, P("d-y1"), False)
    # C++ -> twomemo, normal message (C++ confirmed now)
    x2 = ctx.cpp_encrypt("d.cpp_msg", c, P("d2"), [(BOB, 2002, None)], {me_t: False})
    await to_twomemo("cpp_to_tm_msg", x2, P("d2"), False)
    # empty message C++ -> twomemo (no payload: only <key> tampering)
    x3 = ctx.cpp_encrypt("d.cpp_empty", c, None, [(BOB, 2002, None)], {me_t: False})
    await to_twomemo("cpp_to_tm_empty", x3, None, False)

    # twomemo -> C++, key exchange message (another twomemo device initiates)
    t2 = await TwomemoPeer.create(CAROL, 3003)
    z1 = await t2.encrypt(P("d-z1"), [(ALICE, C_DID, c.bundle())])
    to_cpp("tm_to_cpp_kex", c, CAROL, z1, P("d-z1"), True)
    # C++ -> twomemo on the passive side of that session, and one more round both ways
    x4 = ctx.cpp_encrypt("d.cpp_to_t2", c, P("d4"), [(CAROL, 3003, None)], {(CAROL, 3003): False})
    await ctx.tm_decrypt("d.t2_session_ok", t2, x4, ALICE, P("d4"))
    z2 = await t2.encrypt(P("d-z2"), [(ALICE, C_DID, None)])
    to_cpp("tm_to_cpp_msg_after_ratchet", c, CAROL, z2, P("d-z2"), False)
    y2 = await t.encrypt(P("d-y2"), [(ALICE, C_DID, None)])
    ctx.cpp_decrypt("d.first_session_still_ok", c, BOB, y2, P("d-y2"))
    x5 = ctx.cpp_encrypt("d.cpp_msg5", c, P("d5"), [(BOB, 2002, None)], {me_t: False})
    await ctx.tm_decrypt("d.twomemo_session_still_ok", t, x5, ALICE, P("d5"))
    _ = cb


async def scenario_e(ctx: Ctx) -> None:
    """Replays."""
    c = ctx.spawn()
    t = await TwomemoPeer.create(BOB, 2002)
    t.learn_bundle(ALICE, C_DID, c.bundle())
    me_t = (BOB, 2002)
    x1 = ctx.cpp_encrypt("e.cpp_kex", c, P("e1"), [(BOB, 2002, await t.bundle_xml())], {me_t: True})
    await ctx.tm_decrypt("e.twomemo_decrypts_kex", t, x1, ALICE, P("e1"))
    await ctx.tm_reject("e.twomemo_replay_kex", t, x1, ALICE, omemo.DecryptionFailed)
    r1 = await t.encrypt(P("e-r1"), [(ALICE, C_DID, None)])
    ctx.cpp_decrypt("e.cpp_decrypts_r1", c, BOB, r1, P("e-r1"))
    ctx.cpp_reject("e.cpp_replay_msg", c, BOB, r1, {"duplicate_message"})
    x2 = ctx.cpp_encrypt("e.cpp_msg", c, P("e2"), [(BOB, 2002, None)], {me_t: False})
    await ctx.tm_decrypt("e.twomemo_decrypts_msg", t, x2, ALICE, P("e2"))
    await ctx.tm_reject("e.twomemo_replay_msg", t, x2, ALICE, omemo.DecryptionFailed)
    # replay of a message from a skipped key (out-of-order) after it was used
    a = await t.encrypt(P("e-a"), [(ALICE, C_DID, None)])
    b = await t.encrypt(P("e-b"), [(ALICE, C_DID, None)])
    ctx.cpp_decrypt("e.cpp_decrypts_b_first", c, BOB, b, P("e-b"))
    ctx.cpp_decrypt("e.cpp_decrypts_a_skipped", c, BOB, a, P("e-a"))
    ctx.cpp_reject("e.cpp_replay_skipped", c, BOB, a, {"duplicate_message"})
    ctx.cpp_reject("e.cpp_replay_b", c, BOB, b, {"duplicate_message"})

    # key exchange initiated by twomemo, replayed to C++
    t2 = await TwomemoPeer.create(CAROL, 3003)
    k1 = await t2.encrypt(P("e-k1"), [(ALICE, C_DID, c.bundle())])
    ctx.cpp_decrypt("e.cpp_decrypts_kex", c, CAROL, k1, P("e-k1"), want_kex=True)
    ctx.cpp_reject("e.cpp_replay_kex", c, CAROL, k1, {"duplicate_message"})
    k2 = await t2.encrypt(P("e-k2"), [(ALICE, C_DID, None)])
    ctx.cpp_decrypt("e.cpp_decrypts_kex_followup", c, CAROL, k2, P("e-k2"), want_kex=True)
    ctx.cpp_reject("e.cpp_replay_kex_again", c, CAROL, k1, {"duplicate_message"})

    # sessions still fine
    x3 = ctx.cpp_encrypt("e.cpp_msg3", c, P("e3"), [(BOB, 2002, None), (CAROL, 3003, None)],
                         {me_t: False, (CAROL, 3003): False})
    await ctx.tm_decrypt("e.after_replays_bob", t, x3, ALICE, P("e3"))
    await ctx.tm_decrypt("e.after_replays_carol", t2, x3, ALICE, P("e3"))
    r2 = await t.encrypt(P("e-r2"), [(ALICE, C_DID, None)])
    ctx.cpp_decrypt("e.after_replays_cpp", c, BOB, r2, P("e-r2"))


async def scenario_f(ctx: Ctx) -> None:
    """Empty OMEMO messages."""
    c = ctx.spawn()
    t = await TwomemoPeer.create(BOB, 2002)
    t.learn_bundle(ALICE, C_DID, c.bundle())
    me_t = (BOB, 2002)
    # C++ starts the session with an empty message (kex)
    e1 = ctx.cpp_encrypt("f.cpp_empty_kex", c, None, [(BOB, 2002, await t.bundle_xml())], {me_t: True})
    await ctx.tm_decrypt("f.twomemo_gets_none_from_empty_kex", t, e1, ALICE, None, want_kex=True)
    # twomemo completes the key exchange with an empty message
    e2 = await t.encrypt_empty([(ALICE, C_DID, None)])
    ctx.ok("f.twomemo_empty_has_no_payload", parse_encrypted(e2)[2] is None)
    ctx.cpp_decrypt("f.cpp_gets_null_from_empty", c, BOB, e2, None, want_kex=False, want_sid=2002)
    x = ctx.cpp_encrypt("f.cpp_msg_after_empty_ack", c, P("f1"), [(BOB, 2002, None)], {me_t: False})
    await ctx.tm_decrypt("f.twomemo_decrypts_after_empty", t, x, ALICE, P("f1"))
    e3 = ctx.cpp_encrypt("f.cpp_empty_plain", c, None, [(BOB, 2002, None)], {me_t: False})
    await ctx.tm_decrypt("f.twomemo_gets_none_from_empty", t, e3, ALICE, None, want_kex=False)

    # twomemo starts a session with an empty message; C++ acks with an empty message
    t2 = await TwomemoPeer.create(CAROL, 3003)
    e4 = await t2.encrypt_empty([(ALICE, C_DID, c.bundle())])
    ctx.cpp_decrypt("f.cpp_gets_null_from_empty_kex", c, CAROL, e4, None, want_kex=True, want_sid=3003)
    e5 = ctx.cpp_encrypt("f.cpp_empty_ack", c, None, [(CAROL, 3003, None)], {(CAROL, 3003): False})
    await ctx.tm_decrypt("f.twomemo_decrypts_empty_ack", t2, e5, ALICE, None, want_kex=False)
    s = await t2.session(ALICE, C_DID)
    ctx.ok("f.empty_ack_confirms_twomemo_session", s is not None and s.confirmed)
    y = await t2.encrypt(P("f-y"), [(ALICE, C_DID, None)])
    ctx.ok("f.twomemo_no_kex_after_empty_ack", not parse_encrypted(y)[1][(ALICE, C_DID)].kex_attr)
    ctx.cpp_decrypt("f.cpp_decrypts_after_empty_ack", c, CAROL, y, P("f-y"), want_kex=False)
    # mixed fan-out: empty message to both
    e6 = ctx.cpp_encrypt("f.cpp_empty_fanout", c, None, [(BOB, 2002, None), (CAROL, 3003, None)],
                         {me_t: False, (CAROL, 3003): False})
    await ctx.tm_decrypt("f.fanout_empty_bob", t, e6, ALICE, None)
    await ctx.tm_decrypt("f.fanout_empty_carol", t2, e6, ALICE, None)
    # zero-length plaintext is not an empty OMEMO message
    z = ctx.cpp_encrypt("f.cpp_zero_length_plaintext", c, b"", [(BOB, 2002, None)], {me_t: False})
    await ctx.tm_decrypt("f.twomemo_gets_zero_length", t, z, ALICE, b"")
    z2 = await t.encrypt(b"", [(ALICE, C_DID, None)])
    ctx.cpp_decrypt("f.cpp_gets_zero_length", c, BOB, z2, b"")


async def scenario_g(ctx: Ctx) -> None:
    """Save/load of the C++ device mid-conversation."""
    c = ctx.spawn()
    cb = c.bundle()
    t = await TwomemoPeer.create(BOB, 2002)
    t2 = await TwomemoPeer.create(CAROL, 3003)
    t3 = await TwomemoPeer.create(BOB, 2003)
    for p in (t, t2, t3):
        p.learn_bundle(ALICE, C_DID, cb)
    me_t, me_t2 = (BOB, 2002), (CAROL, 3003)

    x1 = ctx.cpp_encrypt("g.cpp_kex", c, P("g1"), [(BOB, 2002, await t.bundle_xml())], {me_t: True})
    await ctx.tm_decrypt("g.twomemo_decrypts_kex", t, x1, ALICE, P("g1"))
    r1 = await t.encrypt(P("g-r1"), [(ALICE, C_DID, None)])
    ctx.cpp_decrypt("g.cpp_decrypts_r1", c, BOB, r1, P("g-r1"))
    # pending skipped key: m1 not delivered yet, m2 delivered
    m1 = await t.encrypt(P("g-m1"), [(ALICE, C_DID, None)])
    m2 = await t.encrypt(P("g-m2"), [(ALICE, C_DID, None)])
    ctx.cpp_decrypt("g.cpp_decrypts_m2_before_save", c, BOB, m2, P("g-m2"))
    # unconfirmed active session with carol
    k1 = ctx.cpp_encrypt("g.cpp_kex_carol", c, P("g-k1"), [(CAROL, 3003, await t2.bundle_xml())], {me_t2: True})
    kx_before = safe_kex_header(parse_encrypted(k1)[1][me_t2])

    try:
        state = c.save()
    except ToolError as e:
        ctx.must("g.save", False, str(e))
    ctx.ok("g.save_returns_base64", _is_b64(state), "state is not base64")
    try:
        c.load(state)
        ctx.ok("g.load_same_process", True)
    except ToolError as e:
        ctx.ok("g.load_same_process", False, str(e))
    rc = c.quit()
    ctx.ok("g.old_process_quit_0", rc == 0, f"exit code {rc}")

    c2 = ctx.spawn()
    try:
        c2.load(state)
    except ToolError as e:
        ctx.must("g.load_new_process", False, str(e))
    ctx.ok("g.load_new_process", True)
    try:
        _, ik2, pks2 = bundle_info(c2.bundle())
        ctx.ok("g.identity_persisted", ik2 == bundle_info(cb)[1], "ik changed after load")
    except Exception as e:
        ctx.ok("g.identity_persisted", False, describe_error(e))
    ctx.cpp_decrypt("g.skipped_key_survives_load", c2, BOB, m1, P("g-m1"))
    ctx.cpp_reject("g.replay_protection_survives_load", c2, BOB, m2, {"duplicate_message"})
    x2 = ctx.cpp_encrypt("g.cpp_msg_after_load", c2, P("g2"), [(BOB, 2002, None)], {me_t: False})
    await ctx.tm_decrypt("g.twomemo_decrypts_after_load", t, x2, ALICE, P("g2"))
    k2 = ctx.cpp_encrypt("g.unconfirmed_still_kex_after_load", c2, P("g-k2"), [(CAROL, 3003, None)], {me_t2: True})
    ctx.ok("g.same_kex_after_load",
           kx_before is not None and safe_kex_header(parse_encrypted(k2)[1][me_t2]) == kx_before,
           "key exchange header (pk_id, spk_id, ik, ek) changed across save/load")
    await ctx.tm_decrypt("g.carol_decrypts_pre_save_kex", t2, k1, ALICE, P("g-k1"), want_kex=True)
    await ctx.tm_decrypt("g.carol_decrypts_post_load_kex", t2, k2, ALICE, P("g-k2"), want_kex=True)
    # a key exchange using the pre-save bundle (OPKs and SPK persisted)
    k3 = await t3.encrypt(P("g-k3"), [(ALICE, C_DID, cb)])
    ctx.cpp_decrypt("g.kex_with_pre_save_bundle", c2, BOB, k3, P("g-k3"), want_kex=True, want_sid=2003)
    r2 = await t.encrypt(P("g-r2"), [(ALICE, C_DID, None)])
    ctx.cpp_decrypt("g.cpp_decrypts_after_load", c2, BOB, r2, P("g-r2"))
    # save/load twice more in the same process, continuing each time
    for i in range(2):
        c2.load(c2.save())
        x = ctx.cpp_encrypt(f"g.reload{i}.cpp", c2, P("g-x", i), [(BOB, 2002, None), (BOB, 2003, None)],
                            {me_t: False, (BOB, 2003): False})
        await ctx.tm_decrypt(f"g.reload{i}.twomemo_2002", t, x, ALICE, P("g-x", i))
        await ctx.tm_decrypt(f"g.reload{i}.twomemo_2003", t3, x, ALICE, P("g-x", i))
        r = await t.encrypt(P("g-r", i), [(ALICE, C_DID, None)])
        ctx.cpp_decrypt(f"g.reload{i}.cpp_decrypts", c2, BOB, r, P("g-r", i))


def _is_b64(s: str) -> bool:
    try:
        base64.b64decode(s, validate=True)
        return bool(s)
    except Exception:
        return False


async def scenario_h(ctx: Ctx) -> None:
    """Long runs in one direction (n passes 53)."""
    c = ctx.spawn()
    t = await TwomemoPeer.create(BOB, 2002)
    t.learn_bundle(ALICE, C_DID, c.bundle())
    me_t = (BOB, 2002)
    x = ctx.cpp_encrypt("h.cpp_kex", c, P("h0"), [(BOB, 2002, await t.bundle_xml())], {me_t: True})
    await ctx.tm_decrypt("h.twomemo_decrypts_kex", t, x, ALICE, P("h0"))
    r = await t.encrypt(P("h-r0"), [(ALICE, C_DID, None)])
    ctx.cpp_decrypt("h.cpp_decrypts_r0", c, BOB, r, P("h-r0"))

    N = 60
    bad = []
    last_n = None
    for i in range(N):
        try:
            xi = c.encrypt(P("h-c", i), [(BOB, 2002, None)])
            kd = parse_encrypted(xi)[1][me_t]
            if kd.kex_attr is not None:
                bad.append(f"#{i}: kex attribute {kd.kex_attr!r}")
            n_off = key_field_offsets(kd.data, False)["n"]
            last_n = kd.data[n_off[0]]
            d = await t.decrypt(xi, ALICE)
            if d.plaintext != P("h-c", i):
                bad.append(f"#{i}: wrong plaintext")
        except Exception as e:
            bad.append(f"#{i}: {describe_error(e)}")
            break
    ctx.ok(f"h.cpp_to_twomemo_{N}_in_order", not bad, "; ".join(bad[:3]))
    ctx.ok("h.cpp_counter_passed_53", last_n is not None and 53 <= last_n < 128, f"last n = {last_n}")

    bad = []
    for i in range(N):
        ri = await t.encrypt(P("h-t", i), [(ALICE, C_DID, None)])
        resp = c.decrypt(BOB, ri)
        if not resp["ok"] or resp["plaintext_bytes"] != P("h-t", i):
            bad.append(f"#{i}: {resp.get('error') or 'wrong plaintext'} {resp.get('message') or ''}")
            break
    ctx.ok(f"h.twomemo_to_cpp_{N}_in_order", not bad, "; ".join(bad))

    msgs = [await t.encrypt(P("h-rev", i), [(ALICE, C_DID, None)]) for i in range(20)]
    bad = []
    for i in reversed(range(20)):
        resp = c.decrypt(BOB, msgs[i])
        if not resp["ok"] or resp["plaintext_bytes"] != P("h-rev", i):
            bad.append(f"#{i}: {resp.get('error') or 'wrong plaintext'} {resp.get('message') or ''}")
    ctx.ok("h.twomemo_to_cpp_20_reversed", not bad, "; ".join(bad[:3]))

    x = ctx.cpp_encrypt("h.cpp_after_runs", c, P("h-end"), [(BOB, 2002, None)], {me_t: False})
    await ctx.tm_decrypt("h.twomemo_decrypts_after_runs", t, x, ALICE, P("h-end"))
    r = await t.encrypt(P("h-r-end"), [(ALICE, C_DID, None)])
    ctx.cpp_decrypt("h.cpp_decrypts_after_runs", c, BOB, r, P("h-r-end"))


async def scenario_i(ctx: Ctx) -> None:
    """Error handling and XML tolerance."""
    c = ctx.spawn()
    t = await TwomemoPeer.create(BOB, 2002)
    t2 = await TwomemoPeer.create(CAROL, 3003)
    cb = c.bundle()
    t.learn_bundle(ALICE, C_DID, cb)
    try:
        ctx.ok("i.bundle_stable", bundle_info(c.bundle())[:2] == bundle_info(cb)[:2], "ik/spk changed")
    except Exception as e:
        ctx.ok("i.bundle_stable", False, describe_error(e))
    k = await t.encrypt(P("i-k"), [(ALICE, C_DID, cb)])
    ctx.cpp_decrypt("i.setup", c, BOB, k, P("i-k"))

    # not for this device
    other = await t.encrypt(P("i-other"), [(CAROL, 3003, await t2.bundle_xml())])
    ctx.cpp_reject("i.not_for_this_device", c, BOB, other, {"not_for_this_device"})
    # no session: a non-kex message for alice/1001 arriving at a device that never saw bob/2002
    x = ctx.cpp_encrypt("i.cpp_reply", c, P("i-x"), [(BOB, 2002, None)], {(BOB, 2002): False})
    await ctx.tm_decrypt("i.twomemo_decrypts_reply", t, x, ALICE, P("i-x"))
    plain = await t.encrypt(P("i-plain"), [(ALICE, C_DID, None)])
    fresh = ctx.spawn()
    ctx.cpp_reject("i.no_session", fresh, BOB, plain, {"no_session"})
    ctx.cpp_decrypt("i.same_message_on_right_device", c, BOB, plain, P("i-plain"))

    # XML tolerance: namespace prefixes, wrapped base64, header after payload
    pref = await t.encrypt(P("i-pref"), [(ALICE, C_DID, None)], prefixed=True)
    ctx.ok("i.prefixed_xml_is_prefixed", pref.startswith("<ns0:encrypted"), pref[:40])
    ctx.cpp_decrypt("i.accepts_namespace_prefix", c, BOB, pref, P("i-pref"), critical=False)
    wrapped = await t.encrypt(P("i-wrap", 9) * 5, [(ALICE, C_DID, None)])
    root = ET.fromstring(wrapped)
    for el in list(root.iter(f"{NS}key")) + list(root.iter(f"{NS}payload")):
        s = el.text
        el.text = "\n" + "\n".join(s[i:i + 40] for i in range(0, len(s), 40)) + "\n"
    ctx.cpp_decrypt("i.accepts_wrapped_base64", c, BOB, to_xml(root), P("i-wrap", 9) * 5, critical=False)
    reord = await t.encrypt(P("i-reord"), [(ALICE, C_DID, None)])
    root = ET.fromstring(reord)
    header = root.find(f"{NS}header")
    root.remove(header)
    root.append(header)
    ctx.cpp_decrypt("i.accepts_payload_before_header", c, BOB, to_xml(root), P("i-reord"), critical=False)

    # malformed input: rejected with a known error name, tool keeps running
    good = await t.encrypt(P("i-good"), [(ALICE, C_DID, None)])
    _, keys, payload = parse_encrypted(good)
    kdata = keys[(ALICE, C_DID)].data
    bad_inputs = {
        "not_xml": "this is not xml <",
        "wrong_root": "<message xmlns='jabber:client'/>",
        "no_header": f"<encrypted xmlns='urn:xmpp:omemo:2'><payload>{base64.b64encode(payload).decode()}"
                     "</payload></encrypted>",
        "bad_base64_key": good.replace(base64.b64encode(kdata).decode(), "!!!not*base64!!!"),
        "random_protobuf": replace_key(good, ALICE, C_DID, os.urandom(60)),
        "truncated_protobuf": replace_key(good, ALICE, C_DID, kdata[:len(kdata) // 2]),
        "kex_flag_on_plain_message": good.replace(f"rid=\"{C_DID}\"", f"rid=\"{C_DID}\" kex=\"true\""),
        "short_payload": replace_payload(good, payload[:len(payload) - 5]),
        "wrong_sender_jid": None,
    }
    for name, bad in bad_inputs.items():
        if name == "wrong_sender_jid":
            ctx.cpp_reject("i.malformed.wrong_sender_jid", c, CAROL, good)
            continue
        ctx.cpp_reject(f"i.malformed.{name}", c, BOB, bad)
    ctx.ok("i.tool_alive_after_malformed", c.alive(), c.stderr_tail())
    ctx.cpp_decrypt("i.good_after_malformed", c, BOB, good, P("i-good"))


SCENARIOS = {
    "a": scenario_a, "b": scenario_b, "c": scenario_c, "d": scenario_d, "e": scenario_e,
    "f": scenario_f, "g": scenario_g, "h": scenario_h, "i": scenario_i,
}


if __name__ == "__main__":
    sys.exit(main(__doc__, SCENARIOS, Ctx))
