#!/usr/bin/python3
"""What the XMPP server does around an external component: Prosody and ejabberd, side by side.

    /usr/bin/python3 tests/integration/xmpp_server_behaviour.py --server ejabberd      # or prosody
    /usr/bin/python3 tests/integration/xmpp_server_behaviour.py --server prosody --observe

Brings up a testbed (deploy/testbed up --server …), attaches a scripted XEP-0114 component (not
multiend-component: this one sends exactly the bytes each probe needs) and real c2s clients, and checks
each behaviour the component and its clients depend on against the value recorded for that server in
EXPECTED below. docs/operations.md ("Prosody and ejabberd") describes the same table; this script keeps it
true. ``--observe`` only prints what each probe saw (to record a new server version).

Output: one ``PASS probe  (observed)`` / ``FAIL probe: …`` line per probe, then ``N passed, M failed``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from xmpp_client import Client, Disconnected, TestbedEnv, close_all, new_id  # noqa: E402

REPO = HERE.parent.parent
TESTBED = REPO / "deploy" / "testbed"
USERS = "alice bob carol"
NS_STREAM = "http://etherx.jabber.org/streams"
NS_COMPONENT = "jabber:component:accept"
NS_XML = "http://www.w3.org/XML/1998/namespace"

# Per probe: what Prosody 0.12.3 and ejabberd 23.01 (the testbed's configs) do. A string each, built by
# the probe from what it saw.
EXPECTED: Dict[str, Dict[str, str]] = {
    "bounce_while_no_component": {
        "prosody": "message: wait/remote-server-timeout; iq: wait/remote-server-timeout",
        "ejabberd": "message: auth/forbidden; iq: auth/forbidden",
    },
    "second_component_connection": {
        "prosody": "refused: conflict",
        "ejabberd": "accepted; stanzas split between both connections",
    },
    "component_from_other_domain": {
        "prosody": "stream closed: invalid-from",
        "ejabberd": "stream closed: invalid-from",
    },
    "component_stanza_without_from": {
        "prosody": "delivered, from=archive.localhost",
        "ejabberd": "stream closed: improper-addressing",
    },
    "component_stanza_without_to": {
        "prosody": "stream open",
        "ejabberd": "stream closed: improper-addressing",
    },
    "client_forged_from": {
        "prosody": "rewritten to the sender's full JID",
        "ejabberd": "client stream closed: invalid-from",
    },
    "stamping_on_client_stanzas": {
        "prosody": "from=full JID; xml:lang=en",
        "ejabberd": "from=full JID; xml:lang=en",
    },
    "routing_to_component_jids": {
        "prosody": "user@component/res: routed, to kept; sub.component: not routed",
        "ejabberd": "user@component/res: routed, to kept; sub.component: not routed",
    },
    "headline_to_bare_jid": {
        "prosody": "to resources with priority >= 0 (3 of 4)",
        "ejabberd": "to resources with priority >= 0 (3 of 4)",
    },
    "normal_to_bare_jid": {
        "prosody": "to the highest-priority resource (1 of 4)",
        "ejabberd": "to the highest-priority resource (1 of 4)",
    },
    "offline_user": {
        "prosody": "headline: dropped; normal: stored offline",
        "ejabberd": "headline: dropped; normal: stored offline",
    },
    "to_unavailable_full_jid": {
        "prosody": "headline: dropped; normal: to the bare JID (online resource)",
        "ejabberd": "headline: dropped; normal: to the bare JID (online resource)",
    },
    "to_unknown_user": {
        "prosody": "headline: no answer; normal: cancel/service-unavailable back to the component",
        "ejabberd": "headline: cancel/service-unavailable back to the component; "
                    "normal: cancel/service-unavailable back to the component",
    },
    "chat_to_component_carbon": {
        "prosody": "copied: chat, normal with body; not copied: normal archive message",
        "ejabberd": "copied: chat, normal with body; not copied: normal archive message",
    },
    "client_stanza_size_limit": {
        "prosody": "250 KiB: delivered; 300 KiB: stream closed: policy-violation",
        "ejabberd": "250 KiB: delivered; 300 KiB: stream closed: policy-violation",
    },
    "component_stanza_size_limit": {
        "prosody": "500 KiB: delivered; 600 KiB: stream closed: not-well-formed",
        "ejabberd": "500 KiB: delivered; 600 KiB: stream closed: policy-violation",
    },
}


# ---------------------------------------------------------------------------------------------------------
# A scripted XEP-0114 component
# ---------------------------------------------------------------------------------------------------------

class RawComponent:
    """One XEP-0114 connection that sends what it is told and keeps every stanza it gets."""

    def __init__(self, env: TestbedEnv) -> None:
        self.env = env
        self.reader: Optional[asyncio.StreamReader] = None
        self.writer: Optional[asyncio.StreamWriter] = None
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.stream_id = ""
        self.inbox: List[ET.Element] = []
        self.stream_error: Optional[str] = None
        self.closed = False
        self._task: Optional[asyncio.Task] = None
        self._event = asyncio.Event()

    async def connect(self, timeout: float = 10.0) -> "RawComponent":
        """Opens the stream and handshakes; raises Disconnected with the stream error if refused."""
        self.reader, self.writer = await asyncio.open_connection(self.env.host, self.env.component_port)
        self.writer.write((f"<stream:stream xmlns='{NS_COMPONENT}' xmlns:stream='{NS_STREAM}' "
                           f"to='{self.env.component_domain}'>").encode())
        self._task = asyncio.create_task(self._read())
        await self._wait(lambda: bool(self.stream_id), timeout, "stream header")
        digest = hashlib.sha1((self.stream_id + self.env.component_secret).encode()).hexdigest()
        self.writer.write(f"<handshake>{digest}</handshake>".encode())
        await self._wait(lambda: any(e.tag == f"{{{NS_COMPONENT}}}handshake" for e in self.inbox), timeout,
                         "handshake answer")
        self.inbox = [e for e in self.inbox if e.tag != f"{{{NS_COMPONENT}}}handshake"]
        return self

    async def _wait(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not cond():
            if self.closed:
                raise Disconnected(f"component stream closed before {what}: {self.stream_error or 'no stream error'}")
            left = deadline - loop.time()
            if left <= 0:
                raise asyncio.TimeoutError(f"no {what} within {timeout}s")
            self._event.clear()
            try:
                await asyncio.wait_for(self._event.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def _read(self) -> None:
        assert self.reader is not None
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                self.parser.feed(data)
                for ev, el in self.parser.read_events():
                    if ev == "start":
                        self.depth += 1
                        if self.depth == 1:
                            self.stream_id = el.get("id", "")
                    else:
                        self.depth -= 1
                        if self.depth == 1:
                            if el.tag == f"{{{NS_STREAM}}}error":
                                conds = [c.tag.split("}")[-1] for c in el if not c.tag.endswith("}text")]
                                self.stream_error = conds[0] if conds else "?"
                            else:
                                self.inbox.append(el)
                        elif self.depth == 0:
                            break
                self._event.set()
        except (ConnectionError, ET.ParseError):
            pass
        finally:
            self.closed = True
            self._event.set()

    def send(self, xml: str) -> None:
        assert self.writer is not None
        if not self.writer.is_closing():
            self.writer.write(xml.encode())

    async def wait_for(self, pred: Callable[[ET.Element], bool], timeout: float = 5.0,
                       what: str = "stanza") -> Optional[ET.Element]:
        """The first stanza matching ``pred`` (removed from the inbox), or None after ``timeout``."""
        def found() -> bool:
            return any(pred(e) for e in self.inbox)
        try:
            await self._wait(found, timeout, what)
        except (asyncio.TimeoutError, Disconnected):
            return None
        for i, e in enumerate(self.inbox):
            if pred(e):
                del self.inbox[i]
                return e
        return None

    async def wait_closed(self, timeout: float = 5.0) -> bool:
        try:
            await self._wait(lambda: False, timeout, "close")
        except Disconnected:
            return True
        except asyncio.TimeoutError:
            return False
        return True

    async def close(self) -> None:
        if self.writer is not None:
            try:
                if not self.closed:
                    self.writer.write(b"</stream:stream>")
                self.writer.close()
                await asyncio.wait_for(self.writer.wait_closed(), 2)
            except Exception:
                pass
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except BaseException:
                pass


def stanza_id(e: ET.Element) -> str:
    return e.get("id", "")


def err_of(e: ET.Element) -> str:
    """'type/condition' of a stanza's <error/>."""
    for child in e:
        if child.tag.endswith("}error"):
            conds = [c.tag.split("}")[-1] for c in child if not c.tag.endswith("}text")
                     and c.tag.startswith("{urn:ietf:params:xml:ns:xmpp-stanzas}")]
            return f"{child.get('type')}/{conds[0] if conds else '?'}"
    return "no error"


def pad(n: int) -> str:
    return "x" * n


# ---------------------------------------------------------------------------------------------------------
# Probes
# ---------------------------------------------------------------------------------------------------------

class Ctx:
    def __init__(self, env: TestbedEnv) -> None:
        self.env = env
        self.comp = env.component_domain
        self.clients: List[Client] = []
        self.components: List[RawComponent] = []

    async def client(self, user: str, resource: Optional[str] = None, **kw: Any) -> Client:
        c = Client(self.env, user, resource or new_id("r")[:8], **kw)
        self.clients.append(c)
        await c.connect()
        return c

    async def component(self) -> RawComponent:
        rc = RawComponent(self.env)
        self.components.append(rc)
        return await rc.connect()

    async def close(self) -> None:
        await close_all(self.clients)
        self.clients.clear()
        for rc in self.components:
            await rc.close()
        self.components.clear()
        await asyncio.sleep(0.3)     # let the server notice before the next probe attaches


async def delivered(c: Client, marker: str, timeout: float) -> bool:
    try:
        await c.wait_message(lambda s: marker in s.xml(), timeout, what=marker)
        return True
    except (asyncio.TimeoutError, Disconnected):
        return False


async def pr_bounce(ctx: Ctx) -> str:
    a = await ctx.client("alice")
    mid = new_id("b")
    a.send_raw(f"<message to='{ctx.comp}' type='normal' id='{mid}'><body>x</body></message>")
    m = await a.wait_message(lambda s: s.id == mid and s.type == "error", 10, what="bounce")
    r = await a.iq(f"<iq type='get' to='{ctx.comp}' id='{new_id('i')}'><query "
                   f"xmlns='http://jabber.org/protocol/disco#info'/></iq>")
    return f"message: {m.error.type}/{m.error.condition}; iq: {r.error.type + '/' + r.error.condition if r.error else r.type}"


async def pr_second(ctx: Ctx) -> str:
    c1 = await ctx.component()
    try:
        c2 = await ctx.component()
    except Disconnected as e:
        return "refused: " + str(e).rsplit(": ", 1)[-1]
    a = await ctx.client("alice")
    ids = [new_id("s") for _ in range(30)]
    for i in ids:
        a.send_raw(f"<message to='{ctx.comp}' type='normal' id='{i}'/>")
    await asyncio.sleep(1.5)
    n1 = sum(1 for e in c1.inbox if stanza_id(e) in ids)
    n2 = sum(1 for e in c2.inbox if stanza_id(e) in ids)
    if n1 + n2 != len(ids):
        return f"accepted; {n1 + n2} of {len(ids)} stanzas arrived"
    return "accepted; stanzas split between both connections" if n1 and n2 else \
        f"accepted; all stanzas on {'the first' if n1 else 'the second'} connection"


async def _comp_sends(ctx: Ctx, stanza: str, to_client: Optional[Client], marker: str) -> str:
    rc = await ctx.component()
    rc.send(stanza)
    if to_client is not None:
        try:
            s = await to_client.wait_message(lambda s: marker in s.xml(), 3, what=marker)
            return f"delivered, from={s.from_}"
        except asyncio.TimeoutError:
            pass
    if await rc.wait_closed(3):
        return f"stream closed: {rc.stream_error or 'no stream error'}"
    return "stream open"


async def pr_from_other(ctx: Ctx) -> str:
    a = await ctx.client("alice")
    mk = new_id("m")
    return await _comp_sends(ctx, f"<message from='x@{ctx.env.user_domain}' to='{a.jid}' type='headline' "
                                  f"id='{mk}'><body>{mk}</body></message>", a, mk)


async def pr_without_from(ctx: Ctx) -> str:
    a = await ctx.client("alice")
    mk = new_id("m")
    return await _comp_sends(ctx, f"<message to='{a.jid}' type='headline' id='{mk}'><body>{mk}</body></message>",
                             a, mk)


async def pr_without_to(ctx: Ctx) -> str:
    mk = new_id("m")
    return await _comp_sends(ctx, f"<message from='{ctx.comp}' type='headline' id='{mk}'><body>{mk}</body>"
                                  f"</message>", None, mk)


async def pr_forged(ctx: Ctx) -> str:
    rc = await ctx.component()
    a, m = await ctx.client("alice"), await ctx.client("bob")
    mid = new_id("f")
    m.send_raw(f"<message from='{a.jid}' to='{ctx.comp}' type='normal' id='{mid}'/>")
    e = await rc.wait_for(lambda e: stanza_id(e) == mid, 3)
    if e is not None:
        f = e.get("from")
        return "rewritten to the sender's full JID" if f == m.jid else f"arrived with from={f}"
    await asyncio.sleep(0.5)
    if not m.connected:
        return f"client stream closed: {'invalid-from' if 'invalid-from' in (m.disconnect_reason or '') else m.disconnect_reason}"
    return "dropped, client stream open"


async def pr_stamping(ctx: Ctx) -> str:
    rc = await ctx.component()
    a = await ctx.client("alice")
    mid = new_id("s")
    a.send_raw(f"<message to='{ctx.comp}' type='normal' id='{mid}'/>")
    e = await rc.wait_for(lambda e: stanza_id(e) == mid, 5)
    if e is None:
        return "not delivered"
    frm = "full JID" if e.get("from") == a.jid else e.get("from")
    return f"from={frm}; xml:lang={e.get(f'{{{NS_XML}}}lang', 'none')}"


async def pr_routing(ctx: Ctx) -> str:
    rc = await ctx.component()
    a = await ctx.client("alice")
    m1, m2 = new_id("r"), new_id("r")
    a.send_raw(f"<message to='bob@{ctx.comp}/res' type='normal' id='{m1}'/>")
    e = await rc.wait_for(lambda e: stanza_id(e) == m1, 5)
    first = "not routed" if e is None else ("routed, to kept" if e.get("to") == f"bob@{ctx.comp}/res"
                                            else f"routed, to={e.get('to')}")
    a.send_raw(f"<message to='sub.{ctx.comp}' type='normal' id='{m2}'/>")
    e = await rc.wait_for(lambda e: stanza_id(e) == m2, 2)
    second = "routed" if e is not None else "not routed"
    return f"user@component/res: {first}; sub.component: {second}"


async def _to_bare(ctx: Ctx, type_: str) -> str:
    rc = await ctx.component()
    # without carbons: a carbon copy of a normal message would reach the other resources too
    bs = [await ctx.client("bob", f"r{i}", priority=p, carbons=False) for i, p in enumerate((5, 0, 0, -1))]
    mk = new_id("h")
    rc.send(f"<message from='{ctx.comp}' to='{bs[0].bare}' type='{type_}' id='{mk}'><body>{mk}</body></message>")
    got = [await delivered(b, mk, 2) for b in bs]
    n = sum(got)
    if got == [True, True, True, False]:
        return f"to resources with priority >= 0 ({n} of 4)"
    if got == [True, False, False, False]:
        return f"to the highest-priority resource ({n} of 4)"
    return f"to {n} of 4 resources (priorities 5, 0, 0, -1: {got})"


async def pr_headline_bare(ctx: Ctx) -> str:
    return await _to_bare(ctx, "headline")


async def pr_normal_bare(ctx: Ctx) -> str:
    return await _to_bare(ctx, "normal")


async def pr_offline(ctx: Ctx) -> str:
    rc = await ctx.component()
    mh, mn = new_id("h"), new_id("n")
    bare = ctx.env.jid("carol")
    rc.send(f"<message from='{ctx.comp}' to='{bare}' type='headline' id='{mh}'><body>{mh}</body></message>")
    rc.send(f"<message from='{ctx.comp}' to='{bare}' type='normal' id='{mn}'><body>{mn}</body></message>")
    await asyncio.sleep(1.0)
    c = await ctx.client("carol")
    h, n = await delivered(c, mh, 2), await delivered(c, mn, 0.1)
    return f"headline: {'stored offline' if h else 'dropped'}; normal: {'stored offline' if n else 'dropped'}"


async def pr_unavailable_full(ctx: Ctx) -> str:
    rc = await ctx.component()
    b = await ctx.client("bob", "online")
    gone = f"{b.bare}/gone"
    mh, mn = new_id("h"), new_id("n")
    rc.send(f"<message from='{ctx.comp}' to='{gone}' type='headline' id='{mh}'><body>{mh}</body></message>")
    rc.send(f"<message from='{ctx.comp}' to='{gone}' type='normal' id='{mn}'><body>{mn}</body></message>")
    h, n = await delivered(b, mh, 2), await delivered(b, mn, 0.5)
    errs = [err_of(e) for e in rc.inbox if stanza_id(e) in (mh, mn)]
    out = f"headline: {'to the bare JID (online resource)' if h else 'dropped'}; " \
          f"normal: {'to the bare JID (online resource)' if n else 'dropped'}"
    return out + (f"; errors back: {errs}" if errs else "")


async def pr_unknown_user(ctx: Ctx) -> str:
    rc = await ctx.component()
    mh, mn = new_id("h"), new_id("n")
    nobody = f"nobody{new_id()[:6]}@{ctx.env.user_domain}"
    rc.send(f"<message from='{ctx.comp}' to='{nobody}' type='headline' id='{mh}'><body>x</body></message>")
    rc.send(f"<message from='{ctx.comp}' to='{nobody}' type='normal' id='{mn}'><body>x</body></message>")
    eh = await rc.wait_for(lambda e: stanza_id(e) == mh, 1.5)
    en = await rc.wait_for(lambda e: stanza_id(e) == mn, 1.5)
    return (f"headline: {'no answer' if eh is None else err_of(eh) + ' back to the component'}; "
            f"normal: {'no answer' if en is None else err_of(en) + ' back to the component'}")


async def pr_carbon(ctx: Ctx) -> str:
    """Which messages a client sends to the component are carbon-copied to its other resources."""
    rc = await ctx.component()
    a1, a2 = await ctx.client("alice", "c1"), await ctx.client("alice", "c2")
    cases = {
        "chat": "type='chat'><body>{mk}</body>",
        "normal with body": "type='normal'><body>{mk}</body>",
        "normal archive message": "type='normal'><encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'/>"
                                  "</encrypted><origin-id xmlns='urn:xmpp:sid:0' id='{mk}'/>",
    }
    copied, not_copied = [], []
    for name, body in cases.items():
        mk = new_id("c")
        a1.send_raw(f"<message to='{ctx.comp}' id='{mk}' " + body.format(mk=mk) + "</message>")
        await rc.wait_for(lambda e: stanza_id(e) == mk, 3)
        (copied if await delivered(a2, mk, 1.5) else not_copied).append(name)
    return f"copied: {', '.join(copied) or 'none'}; not copied: {', '.join(not_copied) or 'none'}"


async def pr_client_size(ctx: Ctx) -> str:
    rc = await ctx.component()
    out = []
    for kib in (250, 300):
        a = await ctx.client("alice")
        mk = new_id("z")
        a.send_raw(f"<message to='{ctx.comp}' type='normal' id='{mk}'><body>{pad(kib * 1024)}</body></message>")
        e = await rc.wait_for(lambda e: stanza_id(e) == mk, 4)
        if e is not None:
            out.append(f"{kib} KiB: delivered")
            continue
        await asyncio.sleep(0.5)
        if not a.connected:
            r = a.disconnect_reason or ""
            out.append(f"{kib} KiB: stream closed: " + ("policy-violation" if "policy-violation" in r else r))
        else:
            out.append(f"{kib} KiB: dropped")
    return "; ".join(out)


async def pr_component_size(ctx: Ctx) -> str:
    a = await ctx.client("alice")
    out = []
    for kib in (500, 600):
        rc = await ctx.component()
        mk = new_id("z")
        rc.send(f"<message from='{ctx.comp}' to='{a.jid}' type='headline' id='{mk}'><body>{pad(kib * 1024)}</body>"
                f"</message>")
        if await delivered(a, mk, 4):
            out.append(f"{kib} KiB: delivered")
        elif await rc.wait_closed(2):
            out.append(f"{kib} KiB: stream closed: {rc.stream_error or 'no stream error'}")
        else:
            out.append(f"{kib} KiB: dropped")
        await rc.close()
        await asyncio.sleep(0.3)
    return "; ".join(out)


PROBES: List[Tuple[str, Callable[[Ctx], Awaitable[str]]]] = [
    ("bounce_while_no_component", pr_bounce),
    ("second_component_connection", pr_second),
    ("component_from_other_domain", pr_from_other),
    ("component_stanza_without_from", pr_without_from),
    ("component_stanza_without_to", pr_without_to),
    ("client_forged_from", pr_forged),
    ("stamping_on_client_stanzas", pr_stamping),
    ("routing_to_component_jids", pr_routing),
    ("headline_to_bare_jid", pr_headline_bare),
    ("normal_to_bare_jid", pr_normal_bare),
    ("offline_user", pr_offline),
    ("to_unavailable_full_jid", pr_unavailable_full),
    ("to_unknown_user", pr_unknown_user),
    ("chat_to_component_carbon", pr_carbon),
    ("client_stanza_size_limit", pr_client_size),
    ("component_stanza_size_limit", pr_component_size),
]


async def run(env: TestbedEnv, server: str, only: List[str], observe: bool, verbose: bool) -> Tuple[int, int]:
    passed = failed = 0
    for name, fn in PROBES:
        if only and name not in only:
            continue
        ctx = Ctx(env)
        try:
            seen = await asyncio.wait_for(fn(ctx), 60)
        except Exception as e:  # noqa: BLE001 - each probe reports its own failure
            seen = f"error: {type(e).__name__}: {e}"
            if verbose:
                traceback.print_exc()
        finally:
            await ctx.close()
        want = EXPECTED[name][server]
        if observe:
            print(f"{name:30} {seen}", flush=True)
            passed += 1
        elif seen == want:
            print(f"PASS {name}  ({seen})", flush=True)
            passed += 1
        else:
            print(f"FAIL {name}: saw {seen!r}, expected {want!r}", flush=True)
            failed += 1
    return passed, failed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", choices=("prosody", "ejabberd"), default="prosody")
    ap.add_argument("--testbed-dir", help="use this running testbed (no component attached) and leave it up")
    ap.add_argument("--only", default="", help="comma-separated probe names")
    ap.add_argument("--observe", action="store_true", help="print what each probe saw; check nothing")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    only = [n for n in args.only.split(",") if n]
    unknown = [n for n in only if n not in EXPECTED]
    if unknown:
        ap.error(f"unknown probe(s): {', '.join(unknown)}")

    work: Optional[Path] = None
    tb: Path
    if args.testbed_dir:
        tb = Path(args.testbed_dir).resolve()
    else:
        work = Path(tempfile.mkdtemp(prefix="multiend-xs."))
        os.chmod(work, 0o755)
        tb = work / "testbed"
    passed = failed = 0
    try:
        if work is not None:
            r = subprocess.run([str(TESTBED), "up", "--dir", str(tb), "--server", args.server, "--users", USERS],
                               capture_output=True, text=True, timeout=120)
            if r.returncode != 0:
                print(f"FAIL setup: deploy/testbed up failed: {r.stderr.strip()[-1500:]}", flush=True)
                print("0 passed, 1 failed")
                return 1
        env = TestbedEnv.from_file(tb / "env")
        if env.raw.get("MULTIEND_TESTBED_SERVER", "prosody") != args.server:
            print(f"FAIL setup: {tb} runs {env.raw.get('MULTIEND_TESTBED_SERVER')}, not {args.server}")
            print("0 passed, 1 failed")
            return 1
        passed, failed = asyncio.run(run(env, args.server, only, args.observe, args.verbose))
    except KeyboardInterrupt:
        failed += 1
    finally:
        if work is not None:
            subprocess.run([str(TESTBED), "down", "--dir", str(tb)], capture_output=True, timeout=60)
            shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
