#!/usr/bin/python3
"""Stream-level fault scenarios for the Multiend component, against a FAKE XMPP server.

    /usr/bin/python3 tests/integration/test_component_stream.py --component-cmd "build/server/multiend-component --config {config}"

The script plays the server side of XEP-0114 itself (Python asyncio, plain TCP on a free 127.0.0.1 port),
so it can misbehave in ways Prosody never would: refuse the handshake, send garbage, a DTD, a comment, an
oversized stanza, close the stream or the TCP connection, never answer. Only the PostgreSQL of
deploy/testbed is used (its Prosody is stopped right after ``up``). The component's JSON config is written
from the testbed env (max_stanza_bytes 16384, short timeouts and backoff: see TEST_CONFIG); the secret is a
fresh random string passed in MULTIEND_COMPONENT_SECRET only, so the log can be searched for it.

Each scenario starts from an authenticated connection, does one thing to it and checks what the component
did: its handshake digest (SHA-1 hex of stream id + secret), /healthz and /readyz, the
multiend_xmpp_connected gauge, connection attempts and their spacing, the error stanzas it answers with
(docs/protocol.md §5), the stream error it ends the stream with when it refuses input (restricted-xml,
policy-violation, not-well-formed; docs/configuration.md), the stream limit of 2x max_stanza_bytes + 64 KiB, whether the same TCP connection is still used, and that after any reconnect a
disco#info iq is answered correctly. The last scenarios send SIGTERM (exit 0 within shutdown_grace_seconds,
``</stream:stream>`` seen by the server) and search the whole log for the secret and every digest.

Output: one ``PASS name`` / ``FAIL name: reason`` line per scenario, then exactly ``N passed, M failed``.
Exit status 0 only if nothing failed. ``--list`` shows the scenarios, ``--only a,b`` / ``--skip a,b``
select some, ``--keep`` keeps the temp dir (testbed stopped, component log kept), ``-v`` prints tracebacks
and timings, ``--testbed-dir DIR`` uses a testbed that is already up (and leaves it up).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TESTBED = REPO / "deploy" / "testbed"

COMPONENT = "archive.localhost"
USER_DOMAIN = "localhost"
ALICE = "alice@localhost/phone"

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "support"))
from component_harness import (  # noqa: E402
    Results, SetupError, add_selection_options, free_port, select_scenarios, tail, teardown_testbed,
)

NS_ACCEPT = "jabber:component:accept"
NS_STREAM = "http://etherx.jabber.org/streams"
NS_STREAM_ERR = "urn:ietf:params:xml:ns:xmpp-streams"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_PING = "urn:xmpp:ping"
NS_OMEMO = "urn:xmpp:omemo:2"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"

MAX_STANZA = 16384
# component_stream.cpp hands its parser a budget of 2 * max_stanza_bytes + 64 KiB: anything up to that is
# parsed and answered with a stanza error; beyond it the stream is at fault and dropped.
STREAM_HARD_LIMIT = 2 * MAX_STANZA + 64 * 1024
GRACE = 5
CONNECT_TIMEOUT = 3
MAX_BACKOFF = 4
TEST_CONFIG: Dict[str, Any] = {
    "max_stanza_bytes": MAX_STANZA,
    "reconnect_max_backoff_seconds": MAX_BACKOFF,
    "connect_timeout_seconds": CONNECT_TIMEOUT,
    "shutdown_grace_seconds": GRACE,
}


def q(ns: str, name: str) -> str:
    return "{%s}%s" % (ns, name)


def http_get(url: str, timeout: float = 1.0) -> Tuple[Optional[int], str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, ""
    except (urllib.error.URLError, OSError, ValueError):
        return None, ""


def parse_env_file(path: Path) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, v = line.split("=", 1)
        try:
            parts = shlex.split(v)
        except ValueError:
            parts = [v]
        out[k.strip()] = parts[0] if parts else ""
    return out


def new_id() -> str:
    return secrets.token_hex(8)


# ---------------------------------------------------------------------------------------------------------
# The fake XMPP server (server side of XEP-0114)
# ---------------------------------------------------------------------------------------------------------

class FakeConn:
    """One TCP connection from the component, as the server sees it."""

    def __init__(self, server: "FakeServer", n: int, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.n = n
        self.reader = reader
        self.writer = writer
        self.accepted_at = time.monotonic()
        self.header_tag: Optional[str] = None
        self.header: Dict[str, str] = {}
        self.stream_id = ""
        self.handshake: Optional[str] = None
        self.handshake_at: Optional[float] = None
        self.authenticated = False
        self.stanzas: List[ET.Element] = []
        self.stream_errors: List[str] = []       # conditions of <stream:error/>s the component sent
        self.saw_close = False                    # the component sent </stream:stream>
        self.parse_error: Optional[str] = None    # the component sent something we could not parse
        self.done = False
        self.done_at: Optional[float] = None
        self.closed_by_us = False
        self.bytes_in = 0
        self.reading = asyncio.Event()  # cleared: the server stops reading what the component writes
        self.reading.set()

    def __repr__(self) -> str:
        state = "done" if self.done else ("authenticated" if self.authenticated else "open")
        return f"<conn #{self.n} {state}>"

    async def send(self, data: Any) -> bool:
        if isinstance(data, str):
            data = data.encode()
        if self.done or self.writer.is_closing():
            return False
        try:
            self.writer.write(data)
            await asyncio.wait_for(self.writer.drain(), 10)
            return True
        except (ConnectionError, OSError, asyncio.TimeoutError):
            return False

    def close(self) -> None:
        self.closed_by_us = True
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001
            pass

    async def wait_done(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.done and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self.done

    async def wait_stanza(self, pred: Callable[[ET.Element], bool], timeout: float, start: int = 0
                          ) -> Optional[ET.Element]:
        deadline = time.monotonic() + timeout
        i = start
        while True:
            while i < len(self.stanzas):
                if pred(self.stanzas[i]):
                    return self.stanzas[i]
                i += 1
            if self.done or time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.02)

    async def request(self, xml: str, stanza_id: str, timeout: float = 5.0) -> ET.Element:
        start = len(self.stanzas)
        if not await self.send(xml):
            raise AssertionError(f"could not write to {self!r}")
        r = await self.wait_stanza(lambda s: s.get("id") == stanza_id, timeout, start)
        if r is None:
            why = "the connection ended" if self.done else f"no answer within {timeout:.0f}s"
            raise AssertionError(f"stanza id={stanza_id}: {why}")
        return r


class FakeServer:
    """Accepts the component's connections and plays the XMPP server.

    mode decides how a handshake is answered: 'accept' (after `gate` is open), 'not-authorized' (stream
    error), 'silent' (never answered), 'comment' (an XML comment: restricted XML). header_id=False sends a stream header without id.
    """

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.mode = "accept"
        self.header_id = True
        self.gate = asyncio.Event()
        self.gate.set()
        self.conns: List[FakeConn] = []
        self.digests: List[str] = []
        self.bad_digests: List[Tuple[str, str, str]] = []   # (stream id, got, expected)
        self.port = 0
        self._server: Optional[asyncio.base_events.Server] = None
        self._tasks: set = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, limit=1 << 20)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for c in self.conns:
            if not c.done:
                c.close()
        for t in list(self._tasks):
            t.cancel()
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001
                pass

    def _spawn(self, coro: Awaitable[None]) -> None:
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    # --- queries used by scenarios -----------------------------------------------------------------
    def current(self) -> Optional[FakeConn]:
        for c in reversed(self.conns):
            if c.authenticated and not c.done:
                return c
        return None

    async def wait_authenticated(self, timeout: float, after: int = 0) -> FakeConn:
        """The authenticated connection with number > after (waits for it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            c = self.current()
            if c is not None and c.n > after:
                return c
            await asyncio.sleep(0.02)
        raise AssertionError(f"no authenticated connection (after #{after}) within {timeout:.0f}s; "
                             f"connections: {self.conns[-5:]}")

    # --- the protocol -------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = FakeConn(self, len(self.conns) + 1, reader, writer)
        self.conns.append(conn)
        parser = ET.XMLPullParser(events=("start", "end"))
        depth = 0
        root: Optional[ET.Element] = None
        try:
            while True:
                await conn.reading.wait()
                data = await reader.read(65536)
                if not data:
                    break
                conn.bytes_in += len(data)
                try:
                    parser.feed(data)
                    events = list(parser.read_events())
                except ET.ParseError as e:
                    conn.parse_error = str(e)
                    break
                for ev, el in events:
                    if ev == "start":
                        depth += 1
                        if depth == 1:
                            root = el
                            conn.header_tag = el.tag
                            conn.header = dict(el.attrib)
                            await self._on_header(conn)
                        continue
                    depth -= 1
                    if depth == 0:
                        conn.saw_close = True
                        await conn.send("</stream:stream>")  # answer the component's close, then hang up
                        writer.close()
                    elif depth == 1:
                        if root is not None:
                            root.remove(el)
                        self._on_stanza(conn, el)
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            conn.done = True
            conn.done_at = time.monotonic()
            try:
                writer.close()
            except Exception:  # noqa: BLE001
                pass

    async def _on_header(self, conn: FakeConn) -> None:
        conn.stream_id = new_id() + new_id()
        idattr = f" id='{conn.stream_id}'" if self.header_id else ""
        await conn.send("<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
                        f"xmlns='{NS_ACCEPT}' from='{COMPONENT}'{idattr}>")

    def _on_stanza(self, conn: FakeConn, el: ET.Element) -> None:
        if el.tag == q(NS_STREAM, "error"):
            conn.stream_errors.append(",".join(c.tag.split("}")[-1] for c in el if c.tag != q(NS_STREAM_ERR, "text")))
            return
        if conn.authenticated:
            conn.stanzas.append(el)
            return
        if el.tag == q(NS_ACCEPT, "handshake") and conn.handshake is None:
            conn.handshake = (el.text or "")
            conn.handshake_at = time.monotonic()
            self.digests.append(conn.handshake)
            expected = hashlib.sha1((conn.stream_id + self.secret).encode()).hexdigest()
            if conn.handshake != expected:
                self.bad_digests.append((conn.stream_id, conn.handshake, expected))
            self._spawn(self._answer_handshake(conn, conn.handshake == expected))
            return
        conn.stanzas.append(el)  # anything else before the handshake: kept for inspection

    async def _answer_handshake(self, conn: FakeConn, good: bool) -> None:
        mode = self.mode if good else "not-authorized"
        if mode == "silent":
            return
        if mode == "comment":  # restricted XML before the stream is authenticated
            await conn.send("<!-- no handshake for you -->")
            return
        if mode == "not-authorized":
            await conn.send("<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                            "</stream:error></stream:stream>")
            conn.close()
            return
        await self.gate.wait()
        if conn.done:
            return
        conn.authenticated = True
        await conn.send("<handshake/>")


# ---------------------------------------------------------------------------------------------------------
# Harness: testbed (PostgreSQL only) and component lifecycle
# ---------------------------------------------------------------------------------------------------------

class Harness:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work: Optional[Path] = None
        self.testbed_dir: Optional[Path] = None
        self.own_testbed = args.testbed_dir is None
        self.env: Dict[str, str] = {}
        self.pg_url = ""
        self.pg_password = ""
        self.secret = "mesecret-" + secrets.token_hex(20)
        self.server: Optional[FakeServer] = None
        self.proc: Optional[subprocess.Popen] = None
        self.proc_log: Optional[Any] = None
        self.http_address = ""
        self.component_log: Optional[Path] = None
        self.starts = 0

    def setup_testbed(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="multiend-stream-it."))
        os.chmod(self.work, 0o755)
        self.component_log = self.work / "component.log"
        if self.own_testbed:
            self.testbed_dir = self.work / "testbed"
            try:
                r = subprocess.run([str(TESTBED), "up", "--dir", str(self.testbed_dir), "--users", ""],
                                   capture_output=True, text=True, timeout=120)
            except subprocess.TimeoutExpired:
                raise SetupError("deploy/testbed up did not finish within 120s") from None
            if r.returncode != 0:
                raise SetupError(f"deploy/testbed up failed (rc={r.returncode}): {r.stderr.strip()[-1500:]}")
            # Only its PostgreSQL is used: the fake server stands where Prosody would.
            subprocess.run([str(TESTBED), "stop-prosody", "--dir", str(self.testbed_dir)],
                           capture_output=True, text=True, timeout=60)
        else:
            self.testbed_dir = Path(self.args.testbed_dir).resolve()
        env_file = self.testbed_dir / "env"
        if not env_file.is_file():
            raise SetupError(f"no testbed env file at {env_file}")
        self.env = parse_env_file(env_file)
        self.pg_url = self.env.get("MULTIEND_PG_URL") or self.env.get("MULTIEND_DATABASE_URL", "")
        self.pg_password = self.env.get("MULTIEND_PG_PASSWORD", "")
        if not self.pg_url:
            raise SetupError(f"{env_file} has no MULTIEND_PG_URL")
        self.http_address = f"127.0.0.1:{free_port()}"

    def teardown_testbed(self) -> None:
        teardown_testbed(self)

    def write_config(self) -> Path:
        assert self.work is not None and self.server is not None
        cfg: Dict[str, Any] = {
            "xmpp_host": "127.0.0.1",
            "component_port": self.server.port,
            "component_domain": COMPONENT,
            "user_domain": USER_DOMAIN,
            "database_url": self.pg_url,
            "http_address": self.http_address,
            "log_level": self.args.log_level,
        }
        cfg.update(TEST_CONFIG)
        self.starts += 1
        path = self.work / f"component-{self.starts}.json"
        path.write_text(json.dumps(cfg, indent=2) + "\n")
        os.chmod(path, 0o600)  # it holds the database password: the component refuses it otherwise
        return path

    def start_component(self) -> None:
        assert self.component_log is not None
        config = self.write_config()
        cmd = self.args.component_cmd.replace("{config}", shlex.quote(str(config)))
        try:
            argv = shlex.split(cmd)
        except ValueError as e:
            raise SetupError(f"cannot parse --component-cmd: {e}") from None
        if not argv:
            raise SetupError("empty --component-cmd")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("MULTIEND_")}  # nothing from the caller's shell may override ours
        env["MULTIEND_COMPONENT_SECRET"] = self.secret
        env["MULTIEND_DATABASE_URL"] = self.pg_url
        self.proc_log = open(self.component_log, "a")
        self.proc_log.write(f"=== {time.strftime('%H:%M:%S')} start: {cmd}\n")
        self.proc_log.flush()
        try:
            self.proc = subprocess.Popen(argv, cwd=str(REPO), env=env, stdin=subprocess.DEVNULL,
                                         stdout=self.proc_log, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            raise SetupError(f"cannot start component {argv[0]!r}: {e}") from None

    def component_alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def url(self, path: str) -> str:
        return f"http://{self.http_address}{path}"

    def signal_component(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def reap(self, timeout: float) -> Tuple[Optional[int], bool]:
        """Waits for the component to exit (SIGKILL after timeout); (exit code, killed)."""
        p = self.proc
        if p is None:
            return None, False
        killed = False
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            killed = True
            self.signal_component(signal.SIGKILL)
            p.wait(timeout=10)
        try:
            os.killpg(p.pid, signal.SIGKILL)  # children that outlived the leader
        except (ProcessLookupError, PermissionError):
            pass
        self.proc = None
        if self.proc_log is not None:
            self.proc_log.write(f"=== {time.strftime('%H:%M:%S')} exit code {p.returncode}"
                                f"{' (killed)' if killed else ''}\n")
            self.proc_log.close()
            self.proc_log = None
        return p.returncode, killed

    def stop_component(self, grace: float = 15.0) -> Tuple[Optional[int], bool]:
        self.signal_component(signal.SIGTERM)
        return self.reap(grace)


# ---------------------------------------------------------------------------------------------------------
# Scenario context and helpers
# ---------------------------------------------------------------------------------------------------------

def check(cond: Any, msg: str) -> None:
    if not cond:
        raise AssertionError(msg)


def stanza_error(s: ET.Element) -> Optional[Tuple[str, str]]:
    """(type, condition) of an error stanza, or None."""
    if s.get("type") != "error":
        return None
    e = s.find(q(NS_ACCEPT, "error"))
    if e is None:
        return ("?", "?")
    cond = next((c.tag.split("}")[-1] for c in e if c.tag.startswith("{" + NS_STANZAS + "}")
                 and c.tag != q(NS_STANZAS, "text")), "?")
    return (e.get("type", "?"), cond)


def show(s: ET.Element, limit: int = 300) -> str:
    text = ET.tostring(s, encoding="unicode")
    text = re.sub(r" xmlns:ns\d+=\"[^\"]*\"", "", text)
    return text if len(text) <= limit else text[:limit] + "…"


def expect_error(s: ET.Element, allowed: Sequence[Tuple[str, str]], what: str) -> Tuple[str, str]:
    err = stanza_error(s)
    check(err is not None, f"{what}: expected an error {allowed}, got {show(s)}")
    check(err in allowed, f"{what}: expected {' or '.join('/'.join(a) for a in allowed)}, got {'/'.join(err)}: "
                          f"{show(s)}")
    return err


class Ctx:
    def __init__(self, h: Harness) -> None:
        self.h = h
        self.server: FakeServer = h.server  # type: ignore[assignment]
        self.notes: List[str] = []

    def note(self, s: str) -> None:
        self.notes.append(s)

    async def http(self, path: str) -> Tuple[Optional[int], str]:
        return await asyncio.to_thread(http_get, self.h.url(path))

    async def gauge(self, name: str) -> Optional[float]:
        status, body = await self.http("/metrics")
        if status != 200:
            return None
        m = re.search(r"^" + re.escape(name) + r"(?:\{\})? ([0-9.eE+-]+)$", body, re.M)
        return float(m.group(1)) if m else None

    async def wait_readyz(self, want: int, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last, _ = await self.http("/readyz")
            if last == want:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{what}: /readyz did not answer {want} within {timeout:.0f}s (last: {last})")

    async def authed(self, timeout: float = 15.0) -> FakeConn:
        """The authenticated connection (server back to accepting first)."""
        self.server.mode = "accept"
        self.server.header_id = True
        self.server.gate.set()
        c = await self.server.wait_authenticated(timeout)
        await self.wait_readyz(200, 5, "authenticated connection")
        return c

    async def disco_ok(self, conn: FakeConn, what: str) -> None:
        sid = new_id()
        r = await conn.request(f"<iq type='get' id='{sid}' from='{ALICE}' to='{COMPONENT}'>"
                               f"<query xmlns='{NS_DISCO_INFO}'/></iq>", sid)
        check(r.tag == q(NS_ACCEPT, "iq") and r.get("type") == "result",
              f"{what}: disco#info answered with {show(r)}")
        check(r.get("to") == ALICE and r.get("from") == COMPONENT, f"{what}: disco#info reply misaddressed: {show(r)}")
        query = r.find(q(NS_DISCO_INFO, "query"))
        check(query is not None, f"{what}: disco#info result without <query/>: {show(r)}")
        ids = {(i.get("category"), i.get("type")) for i in query.findall(q(NS_DISCO_INFO, "identity"))}
        feats = {f.get("var") for f in query.findall(q(NS_DISCO_INFO, "feature"))}
        check(("component", "archive") in ids, f"{what}: identities {ids} lack component/archive")
        for f in ("urn:xmpp:mam:2", "urn:xmpp:mam:2#extended", "urn:xmpp:sid:0", "urn:xmpp:receipts",
                  "urn:multiend:archive:0"):
            check(f in feats, f"{what}: disco#info features lack {f}: {sorted(feats)}")

    async def ping_ok(self, conn: FakeConn, what: str) -> None:
        sid = new_id()
        r = await conn.request(f"<iq type='get' id='{sid}' from='{ALICE}' to='{COMPONENT}'>"
                               f"<ping xmlns='{NS_PING}'/></iq>", sid)
        check(r.get("type") == "result", f"{what}: ping answered with {show(r)}")

    async def still_up(self, conn: FakeConn, what: str) -> None:
        """The same connection is still authenticated, used and answering; no reconnect happened."""
        await self.ping_ok(conn, what)
        check(not conn.done, f"{what}: the component dropped the stream")
        check(not conn.stream_errors, f"{what}: the component sent a stream error {conn.stream_errors}")
        check(self.server.current() is conn and self.server.conns[-1] is conn,
              f"{what}: the component reconnected (connections: {self.server.conns[-3:]})")

    async def drop_and_recover(self, inject: Callable[[FakeConn], Awaitable[None]], what: str,
                               stream_error: Optional[str] = None) -> FakeConn:
        """Injects a fault into the authenticated stream; checks drop, liveness, not-ready, reconnect, disco.

        stream_error: the condition the component must answer with (then followed by </stream:stream>);
        None when the fault is the server ending the stream, which the component must not answer with an error.
        """
        conn = await self.authed()
        self.server.gate.clear()  # hold the next handshake so not-ready can be observed
        try:
            t0 = time.monotonic()
            await inject(conn)
            check(await conn.wait_done(8), f"{what}: the component kept the stream open for 8 s")
            if stream_error is not None:
                check(conn.stream_errors == [stream_error],
                      f"{what}: the component's stream errors were {conn.stream_errors}, want [{stream_error!r}]")
                check(conn.saw_close, f"{what}: no </stream:stream> after the <{stream_error}/> stream error")
                check(conn.parse_error is None, f"{what}: the component's output did not parse: {conn.parse_error}")
            else:
                check(not conn.stream_errors, f"{what}: the component sent a stream error {conn.stream_errors}")
            if not conn.closed_by_us:
                self.note(f"dropped in {conn.done_at - t0:.2f}s"
                          + (f", stream error <{conn.stream_errors[0]}/>" if conn.stream_errors else "")
                          + ("" if conn.saw_close else ", no </stream:stream>"))
            await self.wait_readyz(503, 3, f"{what}: after the drop")
            status, _ = await self.http("/healthz")
            check(status == 200, f"{what}: /healthz answered {status} while the stream was down")
            g = await self.gauge("multiend_xmpp_connected")
            check(g == 0, f"{what}: multiend_xmpp_connected is {g} while the stream is down")
            check(self.h.component_alive(), f"{what}: the component exited")
            # it comes back by itself: a new connection waits at the gate, then is let in
            deadline = time.monotonic() + MAX_BACKOFF + 6
            while time.monotonic() < deadline and not any(c.n > conn.n and c.handshake for c in self.server.conns):
                await asyncio.sleep(0.02)
            check(any(c.n > conn.n and c.handshake for c in self.server.conns),
                  f"{what}: no reconnect with a handshake within {MAX_BACKOFF + 6}s")
        finally:
            self.server.gate.set()
        new = await self.server.wait_authenticated(5, after=conn.n)
        await self.wait_readyz(200, 5, f"{what}: after the reconnect")
        await self.disco_ok(new, f"{what}: after the reconnect")
        self.note(f"reconnected as #{new.n} after {new.accepted_at - (conn.done_at or new.accepted_at):.1f}s")
        return new


# ---------------------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------------------

@dataclass
class Scenario:
    name: str
    fn: Callable[[Ctx], Awaitable[None]]
    timeout: float
    doc: str
    needs_component: bool


SCENARIOS: List[Scenario] = []


def scenario(name: str, timeout: float = 40.0, needs_component: bool = True):
    def deco(fn: Callable[[Ctx], Awaitable[None]]):
        SCENARIOS.append(Scenario(name, fn, timeout, (fn.__doc__ or "").strip().splitlines()[0], needs_component))
        return fn
    return deco


# --- handshake ----------------------------------------------------------------------------------------------

@scenario("handshake_digest")
async def sc_handshake_digest(ctx: Ctx) -> None:
    """Stream header and handshake: SHA-1 hex of stream id + secret, new for every stream id."""
    conn = await ctx.authed()
    check(conn.header_tag == q(NS_STREAM, "stream"), f"stream header element is {conn.header_tag}")
    check(conn.header.get("to") == COMPONENT, f"stream header to={conn.header.get('to')!r}, want {COMPONENT}")
    check(re.fullmatch(r"[0-9a-f]{40}", conn.handshake or ""), f"handshake {conn.handshake!r} is not 40 lowercase hex")
    expected = hashlib.sha1((conn.stream_id + ctx.h.secret).encode()).hexdigest()
    check(conn.handshake == expected, f"handshake digest {conn.handshake} != sha1(id+secret) {expected}")
    # A second stream with another id must get another, again correct, digest.
    conn.close()
    new = await ctx.server.wait_authenticated(MAX_BACKOFF + 8, after=conn.n)
    expected2 = hashlib.sha1((new.stream_id + ctx.h.secret).encode()).hexdigest()
    check(new.handshake == expected2, f"second stream: digest {new.handshake} != {expected2}")
    check(new.handshake != conn.handshake, "the same digest for two stream ids")
    check(not ctx.server.bad_digests, f"wrong digests seen: {ctx.server.bad_digests}")
    await ctx.disco_ok(new, "after the second handshake")


@scenario("handshake_not_authorized")
async def sc_not_authorized(ctx: Ctx) -> None:
    """<not-authorized/> stream error: stays up, healthz 200, readyz 503, retries with growing backoff."""
    conn = await ctx.authed()
    ctx.server.mode = "not-authorized"
    try:
        conn.close()
        t0 = time.monotonic()
        window = 7.5
        healthz: List[Optional[int]] = []
        readyz: List[Optional[int]] = []
        while time.monotonic() - t0 < window:
            healthz.append((await ctx.http("/healthz"))[0])
            readyz.append((await ctx.http("/readyz"))[0])
            await asyncio.sleep(0.25)
        check(ctx.h.component_alive(), "the component exited after <not-authorized/>")
        attempts = [c for c in ctx.server.conns if c.n > conn.n]
        times = [c.accepted_at - t0 for c in attempts]
        gaps = [b - a for a, b in zip(times, times[1:])]
        check(all(s == 200 for s in healthz), f"/healthz answered {sorted(set(map(str, healthz)))} (want 200 only)")
        check(all(s == 503 for s in readyz[2:]), f"/readyz answered {sorted(set(map(str, readyz)))} (want 503)")
        check(all(c.handshake for c in attempts[:-1]), "a connection attempt sent no handshake")
        check(all(c.done for c in attempts[:-1]), "a refused connection stayed open")
        check(1 < len(attempts) < 10, f"{len(attempts)} connection attempts in {window}s (want 2..9); "
                                      f"at {[round(t, 2) for t in times]}")
        check(all(g >= 0.8 for g in gaps), f"reconnects without backoff: gaps {[round(g, 2) for g in gaps]}")
        check(len(gaps) < 2 or gaps[-1] >= 1.5 * gaps[0],
              f"backoff does not grow: gaps {[round(g, 2) for g in gaps]}")
        g = await ctx.gauge("multiend_xmpp_connected")
        check(g == 0, f"multiend_xmpp_connected is {g} while refused")
        ctx.note(f"{len(attempts)} attempts in {window}s, gaps {[round(g, 1) for g in gaps]} s")
    finally:
        ctx.server.mode = "accept"
    new = await ctx.server.wait_authenticated(MAX_BACKOFF + 6, after=conn.n)
    await ctx.wait_readyz(200, 5, "after the server accepted again")
    await ctx.disco_ok(new, "after the server accepted again")


@scenario("handshake_unanswered")
async def sc_unanswered(ctx: Ctx) -> None:
    """A server that never answers the handshake: the component gives up after connect_timeout_seconds."""
    conn = await ctx.authed()
    ctx.server.mode = "silent"
    try:
        conn.close()
        first = None
        deadline = time.monotonic() + MAX_BACKOFF + 4
        while time.monotonic() < deadline and first is None:
            first = next((c for c in ctx.server.conns if c.n > conn.n and c.handshake), None)
            await asyncio.sleep(0.02)
        check(first is not None, "no reconnect after the drop")
        await ctx.wait_readyz(503, 2, "while the handshake is unanswered")
        check(await first.wait_done(CONNECT_TIMEOUT + 5),
              f"the component waited more than {CONNECT_TIMEOUT + 5}s for the handshake answer")
        waited = first.done_at - first.handshake_at
        check(CONNECT_TIMEOUT - 0.5 <= waited <= CONNECT_TIMEOUT + 2,
              f"gave up on the handshake after {waited:.1f}s (connect_timeout_seconds={CONNECT_TIMEOUT})")
        status, _ = await ctx.http("/healthz")
        check(status == 200, f"/healthz {status}")
        ctx.note(f"gave up after {waited:.1f}s")
    finally:
        ctx.server.mode = "accept"
        for c in ctx.server.conns:  # a component stuck waiting is set free, so later scenarios can run
            if not c.authenticated and not c.done:
                c.close()
    new = await ctx.server.wait_authenticated(MAX_BACKOFF + 6, after=conn.n)
    await ctx.disco_ok(new, "after the server answered again")


@scenario("handshake_answered_with_comment")
async def sc_handshake_comment(ctx: Ctx) -> None:
    """A comment instead of the handshake answer: <restricted-xml/> and </stream:stream>, then a retry."""
    conn = await ctx.authed()
    ctx.server.mode = "comment"
    try:
        conn.close()
        first = None
        deadline = time.monotonic() + MAX_BACKOFF + 4
        while time.monotonic() < deadline and first is None:
            first = next((c for c in ctx.server.conns if c.n > conn.n and c.handshake), None)
            await asyncio.sleep(0.02)
        check(first is not None, "no reconnect after the drop")
        check(await first.wait_done(5), "the component kept a stream open after a comment in the handshake")
        check(first.stream_errors == ["restricted-xml"],
              f"the component's stream errors were {first.stream_errors}, want ['restricted-xml']")
        check(first.saw_close, "no </stream:stream> after <restricted-xml/>")
        check(ctx.h.component_alive(), "the component exited")
    finally:
        ctx.server.mode = "accept"
    new = await ctx.server.wait_authenticated(MAX_BACKOFF + 6, after=conn.n)
    await ctx.disco_ok(new, "after the server answered properly again")


# --- faults after authentication: the stream is dropped and comes back ---------------------------------

def _after_auth(name: str, payload: Callable[[], str], condition: str, doc: str) -> None:
    async def fn(ctx: Ctx) -> None:
        async def inject(conn: FakeConn) -> None:
            await conn.send(payload())
        await ctx.drop_and_recover(inject, name, stream_error=condition)
    fn.__doc__ = doc
    scenario(name)(fn)


# RFC 6120 §4.9.3: restricted XML (§11.1) is <restricted-xml/>, our size and depth limits are
# <policy-violation/>, anything else the parser refuses is <not-well-formed/>.
_after_auth("after_auth_garbage", lambda: "<<<not xml", "not-well-formed",
            "'<<<not xml' after the handshake: <not-well-formed/>, drop, stay up, reconnect.")
_after_auth("after_auth_dtd", lambda: "<!DOCTYPE stream [<!ENTITY boom 'boom'>]>", "restricted-xml",
            "A DTD after the handshake: <restricted-xml/>, drop, stay up, reconnect.")
_after_auth("after_auth_comment", lambda: "<!-- a comment -->", "restricted-xml",
            "A comment after the handshake: <restricted-xml/>, drop, stay up, reconnect.")
_after_auth("after_auth_pi", lambda: "<?frobnicate now?>", "restricted-xml",
            "A processing instruction after the handshake: <restricted-xml/>, drop, stay up, reconnect.")
_after_auth("after_auth_entity", lambda: f"<message from='{ALICE}' to='{COMPONENT}' id='e'><body>&boom;</body></message>",
            "restricted-xml", "An undeclared entity reference in a stanza: <restricted-xml/>, drop, stay up, reconnect.")
_after_auth("after_auth_too_deep",
            lambda: f"<message from='{ALICE}' to='{COMPONENT}' id='d'>" + "<a>" * 40 + "</a>" * 40 + "</message>",
            "policy-violation", "A stanza nested 40 deep (limit 32): <policy-violation/>, drop, stay up, reconnect.")


@scenario("after_auth_oversized")
async def sc_after_auth_oversized(ctx: Ctx) -> None:
    """A stanza past the stream limit (> 2x max_stanza_bytes + 64 KiB of slack): <policy-violation/>, drop."""
    size = STREAM_HARD_LIMIT + 16 * 1024

    async def inject(conn: FakeConn) -> None:
        head = f"<message from='{ALICE}' to='{COMPONENT}' id='big' type='normal'><body>"
        # written in pieces: the component may close while we are still writing
        await conn.send(head)
        chunk = "A" * 8192
        sent = len(head)
        while sent < size and not conn.done:
            if not await conn.send(chunk):
                break
            sent += len(chunk)
        await conn.send("</body></message>")

    await ctx.drop_and_recover(inject, "after_auth_oversized", stream_error="policy-violation")
    ctx.note(f"{size} bytes; max_stanza_bytes {MAX_STANZA}")


@scenario("after_auth_tcp_close")
async def sc_after_auth_tcp_close(ctx: Ctx) -> None:
    """The server closes the TCP connection without a word: stay up, not ready, reconnect."""
    async def inject(conn: FakeConn) -> None:
        conn.close()
    await ctx.drop_and_recover(inject, "after_auth_tcp_close")


@scenario("after_auth_stream_close")
async def sc_after_auth_stream_close(ctx: Ctx) -> None:
    """The server sends </stream:stream>: the component closes too, stays up, reconnects."""
    async def inject(conn: FakeConn) -> None:
        await conn.send("</stream:stream>")
    await ctx.drop_and_recover(inject, "after_auth_stream_close")


@scenario("after_auth_stream_error")
async def sc_after_auth_stream_error(ctx: Ctx) -> None:
    """A <system-shutdown/> stream error after authentication: stay up, not ready, reconnect."""
    async def inject(conn: FakeConn) -> None:
        await conn.send("<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                        "</stream:error></stream:stream>")
    await ctx.drop_and_recover(inject, "after_auth_stream_error")


# --- stanza-level bad input: answered, the stream stays up ----------------------------------------------

@scenario("iq_two_payloads")
async def sc_iq_two_payloads(ctx: Ctx) -> None:
    """An iq with two payloads: modify/bad-request, stream stays up."""
    conn = await ctx.authed()
    sid = new_id()
    r = await conn.request(f"<iq type='get' id='{sid}' from='{ALICE}' to='{COMPONENT}'>"
                           f"<query xmlns='{NS_DISCO_INFO}'/><ping xmlns='{NS_PING}'/></iq>", sid)
    expect_error(r, [("modify", "bad-request")], "iq with two payloads")
    check(r.get("to") == ALICE, f"error reply misaddressed: {show(r)}")
    await ctx.still_up(conn, "after an iq with two payloads")


@scenario("iq_unknown_namespace")
async def sc_iq_unknown_ns(ctx: Ctx) -> None:
    """An iq of an unknown namespace, to the component and to a node JID: an error, stream stays up."""
    conn = await ctx.authed()
    allowed = [("cancel", "service-unavailable"), ("cancel", "feature-not-implemented")]
    got = []
    for to in (COMPONENT, f"alice@{COMPONENT}"):
        for typ in ("get", "set"):
            sid = new_id()
            r = await conn.request(f"<iq type='{typ}' id='{sid}' from='{ALICE}' to='{to}'>"
                                   f"<frobnicate xmlns='urn:example:unknown:0'/></iq>", sid)
            got.append(f"{typ}@{to.split('.')[0]}: " + "/".join(expect_error(r, allowed, f"unknown iq {typ} to {to}")))
    await ctx.still_up(conn, "after unknown iqs")
    ctx.note("; ".join(got))


@scenario("message_without_from")
async def sc_message_without_from(ctx: Ctx) -> None:
    """A message to the component without from: auth/forbidden (or modify/bad-request), stream stays up."""
    conn = await ctx.authed()
    sid = new_id()
    r = await conn.request(f"<message to='{COMPONENT}' id='{sid}' type='normal'>"
                           f"<encrypted xmlns='{NS_OMEMO}'><header sid='1'/></encrypted></message>", sid)
    err = expect_error(r, [("auth", "forbidden"), ("modify", "bad-request")], "message without from")
    if r.get("to") is None:
        ctx.note(f"{'/'.join(err)} with no 'to' (ejabberd closes the stream on that: improper-addressing)")
    await ctx.still_up(conn, "after a message without from")


@scenario("message_encrypted_garbage")
async def sc_encrypted_garbage(ctx: Ctx) -> None:
    """A message whose <encrypted/> holds garbage: modify/bad-request, stream stays up, nothing archived."""
    conn = await ctx.authed()
    bodies = [
        "!!garbage!!<junk/>",
        "<header sid='x'><keys jid='bob@localhost'><key rid='1'>***not base64***</key></keys></header>"
        "<payload>???</payload>",
        "<header/><payload>AAAA</payload>",
        "<header sid='1'><keys jid='bob@localhost'><key rid='2'>AAAA</key></keys></header><payload>!@#$</payload>",
    ]
    sent = []
    for i, body in enumerate(bodies):
        sid = new_id()
        sent.append(sid)
        r = await conn.request(f"<message from='{ALICE}' to='{COMPONENT}' id='{sid}' type='normal'>"
                               f"<encrypted xmlns='{NS_OMEMO}'>{body}</encrypted>"
                               f"<origin-id xmlns='urn:xmpp:sid:0' id='{sid}'/></message>", sid)
        expect_error(r, [("modify", "bad-request")], f"garbage <encrypted> #{i + 1}")
        check(r.get("to") == ALICE, f"error reply misaddressed: {show(r)}")
    # nothing may have been fanned out for them
    stray = [s for s in conn.stanzas if s.find(q("urn:xmpp:forward:0", "forwarded")) is not None]
    if stray:
        raise AssertionError(f"a garbage message was fanned out: {show(stray[0])}")
    # nor stored: their origin-ids are not in the archive
    r = await asyncio.to_thread(subprocess.run, ["psql", ctx.h.pg_url, "-tAc",
                                                 "SELECT count(*) FROM messages WHERE origin_id IN ("
                                                 + ", ".join(f"'{i}'" for i in sent) + ")"],
                                capture_output=True, text=True, timeout=30)
    check(r.returncode == 0 and r.stdout.strip() == "0", f"garbage messages archived: {r.stdout.strip()} {r.stderr}")
    await ctx.still_up(conn, "after garbage <encrypted/>")


@scenario("stanza_over_limit")
async def sc_stanza_over_limit(ctx: Ctx) -> None:
    """Stanzas between max_stanza_bytes and 2x: modify/not-acceptable, stream stays up."""
    conn = await ctx.authed()
    size = MAX_STANZA * 3 // 2
    pad = "A" * size
    sid = new_id()
    r = await conn.request(f"<message from='{ALICE}' to='{COMPONENT}' id='{sid}' type='normal'>"
                           f"<encrypted xmlns='{NS_OMEMO}'><header sid='1'/><payload>{pad}</payload></encrypted>"
                           f"<origin-id xmlns='urn:xmpp:sid:0' id='{sid}'/></message>", sid, timeout=8)
    expect_error(r, [("modify", "not-acceptable")], f"a {size}-byte message")
    sid = new_id()
    r = await conn.request(
        f"<iq type='set' id='{sid}' from='{ALICE}' to='alice@{COMPONENT}'>"
        f"<pubsub xmlns='{NS_PUBSUB}'><publish node='urn:xmpp:omemo:2:bundles'><item id='7'>"
        f"<bundle xmlns='{NS_OMEMO}'><spk id='1'>{pad}</spk></bundle></item></publish></pubsub></iq>", sid, timeout=8)
    expect_error(r, [("modify", "not-acceptable")], f"a {size}-byte publish")
    await ctx.still_up(conn, "after stanzas over max_stanza_bytes")


@scenario("stanza_past_2x_limit")
async def sc_stanza_past_2x(ctx: Ctx) -> None:
    """A stanza of 3x max_stanza_bytes: either an error reply on a live stream, or a drop and reconnect."""
    conn = await ctx.authed()
    size = MAX_STANZA * 3
    sid = new_id()
    await conn.send(f"<message from='{ALICE}' to='{COMPONENT}' id='{sid}' type='normal'>"
                    f"<encrypted xmlns='{NS_OMEMO}'><header sid='1'/><payload>{'A' * size}</payload></encrypted>"
                    f"<origin-id xmlns='urn:xmpp:sid:0' id='{sid}'/></message>")
    r = await conn.wait_stanza(lambda s: s.get("id") == sid, 8)
    if r is not None:
        expect_error(r, [("modify", "not-acceptable")], f"a {size}-byte message")
        await ctx.still_up(conn, "after a 3x stanza")
        ctx.note(f"{size} B (3x) answered not-acceptable: the stream limit is 2x + 64 KiB = {STREAM_HARD_LIMIT} B")
        return
    check(conn.done, f"a {size}-byte message got no answer and the stream stayed open")
    new = await ctx.server.wait_authenticated(MAX_BACKOFF + 6, after=conn.n)
    await ctx.disco_ok(new, "after the drop")
    ctx.note(f"{size} B (3x) dropped the stream")


def _message_of_size(sid: str, total: int) -> str:
    """A message stanza of exactly `total` bytes (ASCII), padded in its payload."""
    head = (f"<message from='{ALICE}' to='{COMPONENT}' id='{sid}' type='normal'>"
            f"<encrypted xmlns='{NS_OMEMO}'><header sid='1'/><payload>")
    tail_ = f"</payload></encrypted><origin-id xmlns='urn:xmpp:sid:0' id='{sid}'/></message>"
    return head + "A" * (total - len(head) - len(tail_)) + tail_


@scenario("stanza_at_stream_limit")
async def sc_stanza_at_stream_limit(ctx: Ctx) -> None:
    """A stanza of exactly 2x max_stanza_bytes + 64 KiB bytes: still parsed, answered not-acceptable, stream up."""
    conn = await ctx.authed()
    sid = new_id()
    r = await conn.request(_message_of_size(sid, STREAM_HARD_LIMIT), sid, timeout=8)
    expect_error(r, [("modify", "not-acceptable")], f"a {STREAM_HARD_LIMIT}-byte message")
    await ctx.still_up(conn, "after a stanza at the stream limit")
    ctx.note(f"{STREAM_HARD_LIMIT} B answered")


@scenario("stanza_one_byte_past_stream_limit")
async def sc_stanza_past_stream_limit(ctx: Ctx) -> None:
    """One byte more than 2x max_stanza_bytes + 64 KiB: <policy-violation/>, </stream:stream>, reconnect."""
    async def inject(conn: FakeConn) -> None:
        await conn.send(_message_of_size(new_id(), STREAM_HARD_LIMIT + 1))
    await ctx.drop_and_recover(inject, "stanza_one_byte_past_stream_limit", stream_error="policy-violation")


@scenario("interleaved_bad_and_good")
async def sc_interleaved(ctx: Ctx) -> None:
    """Bad stanzas and good ones pipelined in one write: every one answered correctly, stream stays up."""
    conn = await ctx.authed()
    ids = [new_id() for _ in range(6)]
    batch = (
        f"<iq type='get' id='{ids[0]}' from='{ALICE}' to='{COMPONENT}'><ping xmlns='{NS_PING}'/></iq>"
        f"<iq type='get' id='{ids[1]}' from='{ALICE}' to='{COMPONENT}'><a xmlns='urn:x'/><b xmlns='urn:x'/></iq>"
        f"<message from='{ALICE}' to='{COMPONENT}' id='{ids[2]}'><encrypted xmlns='{NS_OMEMO}'>@@</encrypted></message>"
        f"<iq type='get' id='{ids[3]}' from='{ALICE}' to='{COMPONENT}'><query xmlns='{NS_DISCO_INFO}'/></iq>"
        f"<iq type='get' id='{ids[4]}' from='{ALICE}' to='{COMPONENT}'><x xmlns='urn:example:unknown'/></iq>"
        f"<iq type='get' id='{ids[5]}' from='{ALICE}' to='{COMPONENT}'><ping xmlns='{NS_PING}'/></iq>"
    )
    start = len(conn.stanzas)
    check(await conn.send(batch), "could not write")
    answers: Dict[str, ET.Element] = {}
    deadline = time.monotonic() + 8
    while len(answers) < len(ids) and time.monotonic() < deadline and not conn.done:
        for s in conn.stanzas[start:]:
            if s.get("id") in ids:
                answers[s.get("id")] = s
        await asyncio.sleep(0.02)
    check(len(answers) == len(ids), f"{len(ids) - len(answers)} of {len(ids)} pipelined stanzas got no answer")
    check(answers[ids[0]].get("type") == "result" and answers[ids[5]].get("type") == "result", "ping not answered")
    expect_error(answers[ids[1]], [("modify", "bad-request")], "two payloads")
    expect_error(answers[ids[2]], [("modify", "bad-request")], "garbage <encrypted/>")
    check(answers[ids[3]].get("type") == "result", f"disco answered {show(answers[ids[3]])}")
    expect_error(answers[ids[4]], [("cancel", "service-unavailable"), ("cancel", "feature-not-implemented")],
                 "unknown namespace")
    await ctx.still_up(conn, "after the pipelined batch")


# --- a server that stops reading ------------------------------------------------------------------------

def rss_mib(pid: int) -> float:
    """Resident memory of a process, from /proc (not guessed)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


STALL_SECONDS = 22  # past the component's write timeout (request_timeout_seconds, 15 s by default)
RSS_LIMIT_MIB = 256
# Under AddressSanitizer freed memory sits in a 256 MiB quarantine and shadow memory comes on
# top: the bound is checked on the normal build; a sanitizer build only gets a loose one.
RSS_LIMIT_ASAN_MIB = 1024


def is_asan(pid: int) -> bool:
    with open(f"/proc/{pid}/maps") as f:
        return any("libasan" in line for line in f)


@scenario("write_stall", timeout=90)
async def sc_write_stall(ctx: Ctx) -> None:
    """The server stops reading while flooding requests past the write timeout: bounded memory, not ready, reconnect."""
    conn = await ctx.authed()
    assert ctx.h.proc is not None
    pid = ctx.h.proc.pid
    chunk = "".join(f"<iq type='get' id='stall{i}' from='{ALICE}' to='{COMPONENT}'><query xmlns='{NS_DISCO_INFO}'/></iq>"
                    for i in range(200)).encode()
    conn.reading.clear()
    t0 = time.monotonic()
    peak = rss_mib(pid)
    sent = 0
    not_ready_at: Optional[float] = None
    next_probe = t0
    try:
        while time.monotonic() - t0 < STALL_SECONDS:
            transport = conn.writer.transport
            if transport.is_closing():
                break
            if transport.get_write_buffer_size() < (1 << 20):  # the component reads: keep flooding
                conn.writer.write(chunk)
                sent += 200
            else:
                await asyncio.sleep(0.02)  # the component stopped reading: backpressure
            await asyncio.sleep(0)
            if time.monotonic() >= next_probe:
                next_probe = time.monotonic() + 0.5
                peak = max(peak, rss_mib(pid))
                status, _ = await ctx.http("/readyz")
                if status == 503 and not_ready_at is None:
                    not_ready_at = time.monotonic() - t0
    finally:
        conn.reading.set()  # read again: buffered output, then the close
    peak = max(peak, rss_mib(pid))
    limit = RSS_LIMIT_ASAN_MIB if is_asan(pid) else RSS_LIMIT_MIB
    ctx.note(f"{sent} requests sent in {STALL_SECONDS}s, peak RSS {peak:.0f} MiB (limit {limit}), not ready after "
             f"{not_ready_at if not_ready_at is None else round(not_ready_at, 1)}s")
    check(peak < limit, f"resident memory reached {peak:.0f} MiB (limit {limit})")
    check(not_ready_at is not None, "/readyz stayed 200 although the component could not write")
    check(ctx.h.component_alive(), "the component exited")
    # After the server reads again, the component answers within 20 s: on a new connection
    # (it dropped the stalled one) or, had it caught up, on this one.
    t1 = time.monotonic()
    check(await conn.wait_done(20), "the stalled stream was never dropped")
    new = await ctx.server.wait_authenticated(20, after=conn.n)
    await ctx.disco_ok(new, "after the stall")
    await ctx.ping_ok(new, "after the stall")
    await ctx.wait_readyz(200, 5, "after the stall")
    ctx.note(f"answering again {time.monotonic() - t1:.1f}s after the server read again")


# --- shutdown ---------------------------------------------------------------------------------------------

@scenario("sigterm_while_reconnecting")
async def sc_sigterm_reconnecting(ctx: Ctx) -> None:
    """SIGTERM while refused and backing off: exit 0 within shutdown_grace_seconds (then restarted)."""
    conn = await ctx.authed()
    ctx.server.mode = "not-authorized"
    try:
        conn.close()
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and sum(1 for c in ctx.server.conns if c.n > conn.n and c.done) < 2:
            await asyncio.sleep(0.05)
        t0 = time.monotonic()
        ctx.h.signal_component(signal.SIGTERM)
        rc, killed = await asyncio.to_thread(ctx.h.reap, GRACE + 10)
        took = time.monotonic() - t0
        check(not killed, f"ignored SIGTERM for {GRACE + 10}s and was killed")
        check(rc == 0, f"exit code {rc} on SIGTERM")
        check(took <= GRACE, f"took {took:.1f}s to exit (shutdown_grace_seconds={GRACE})")
        ctx.note(f"exit 0 in {took:.2f}s")
    finally:
        ctx.server.mode = "accept"
        if ctx.h.proc is None:
            await asyncio.to_thread(ctx.h.start_component)
    await ctx.authed(30)


@scenario("sigterm_closes_stream")
async def sc_sigterm(ctx: Ctx) -> None:
    """SIGTERM: exit 0 within shutdown_grace_seconds; the server sees </stream:stream> before the close."""
    conn = await ctx.authed()
    await ctx.ping_ok(conn, "before SIGTERM")
    t0 = time.monotonic()
    ctx.h.signal_component(signal.SIGTERM)
    rc, killed = await asyncio.to_thread(ctx.h.reap, GRACE + 10)
    took = time.monotonic() - t0
    check(not killed, f"ignored SIGTERM for {GRACE + 10}s and was killed")
    check(rc == 0, f"exit code {rc} on SIGTERM")
    check(took <= GRACE, f"took {took:.1f}s to exit (shutdown_grace_seconds={GRACE})")
    check(await conn.wait_done(3), "the connection is still open after the component exited")
    check(conn.saw_close, "the server never saw </stream:stream>")
    check(not conn.stream_errors, f"the component sent a stream error on shutdown: {conn.stream_errors}")
    ctx.note(f"exit 0 in {took:.2f}s")


@scenario("secret_not_logged", timeout=10, needs_component=False)
async def sc_secret_not_logged(ctx: Ctx) -> None:
    """Neither the secret, nor any handshake digest, nor the DB password appears in the log or /metrics."""
    log = ctx.h.component_log.read_text(errors="replace") if ctx.h.component_log else ""
    check(log.strip(), "the component log is empty")
    check(ctx.server.digests, "no handshake digest was ever seen")
    check(ctx.h.secret not in log, "the component secret appears in its log")
    for d in ctx.server.digests:
        check(d.lower() not in log.lower(), f"a handshake digest ({d[:8]}…) appears in the log")
    if ctx.h.pg_password:
        check(ctx.h.pg_password not in log, "the database password appears in the log")
    if ctx.h.component_alive():
        status, body = await ctx.http("/metrics")
        check(ctx.h.secret not in body, "the secret appears in /metrics")
    ctx.note(f"{len(log.splitlines())} log lines, {len(ctx.server.digests)} digests searched")


# ---------------------------------------------------------------------------------------------------------
# Runner
# ---------------------------------------------------------------------------------------------------------

def _component_state(h: Harness) -> str:
    if h.proc is not None and h.proc.poll() is not None:
        return f" [component exited with code {h.proc.returncode}]"
    return ""


async def run_all(h: Harness, selected: List[Scenario], res: Results) -> None:
    h.server = FakeServer(h.secret)
    await h.server.start()
    try:
        try:
            await asyncio.to_thread(h.start_component)
            ctx = Ctx(h)
            deadline = time.monotonic() + h.args.ready_timeout
            while True:
                if not h.component_alive():
                    raise SetupError(f"component exited with code {h.proc.returncode if h.proc else None} "
                                     f"before authenticating (its log is below)")
                status, _ = await ctx.http("/readyz")
                if status == 200 and h.server.current() is not None:
                    break
                if time.monotonic() > deadline:
                    raise SetupError(f"component not ready within {h.args.ready_timeout:.0f}s (last /readyz "
                                     f"{status}; connections {h.server.conns}; its log is below)")
                await asyncio.sleep(0.1)
        except SetupError as e:
            res.fail("setup", str(e))
            print(f"not run: {len(selected)} scenarios", flush=True)
            return
        for sc in selected:
            if sc.needs_component and not h.component_alive():
                res.fail(sc.name, f"component is not running{_component_state(h) or ''}")
                continue
            ctx = Ctx(h)
            t0 = time.monotonic()
            try:
                await asyncio.wait_for(sc.fn(ctx), sc.timeout)
            except asyncio.TimeoutError as e:
                res.fail(sc.name, (str(e) or f"scenario timed out after {sc.timeout:.0f}s") + _component_state(h))
                if h.args.verbose:
                    traceback.print_exc()
            except Exception as e:  # noqa: BLE001 - every failure is reported per scenario
                msg = str(e) if isinstance(e, AssertionError) else f"{type(e).__name__}: {e}"
                res.fail(sc.name, msg + _component_state(h))
                if h.args.verbose:
                    traceback.print_exc()
            else:
                if sc.needs_component and sc.name != "sigterm_closes_stream" and not h.component_alive():
                    res.fail(sc.name, "component exited during the scenario" + _component_state(h))
                else:
                    note = "; ".join(ctx.notes)
                    if h.args.verbose:
                        note = (note + "; " if note else "") + f"{time.monotonic() - t0:.1f}s"
                    res.ok(sc.name, note)
            finally:
                h.server.mode = "accept"
                h.server.header_id = True
                h.server.gate.set()
    finally:
        if h.proc is not None:
            rc, killed = await asyncio.to_thread(h.stop_component)
            if rc != 0 or killed:  # a crash or a sanitizer report at exit
                res.fail("clean_shutdown", f"the component exited with {rc} on SIGTERM{' (killed)' if killed else ''}")
            else:
                res.ok("clean_shutdown")
        await h.server.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--component-cmd", help="command starting the component; {config} = JSON config path")
    add_selection_options(ap)
    ap.add_argument("--testbed-dir", help="use this running testbed's PostgreSQL and leave it up")
    ap.add_argument("--ready-timeout", type=float, default=30.0, help="seconds to wait for the first handshake")
    ap.add_argument("--log-level", default="debug", help="component log_level (default debug: more to search)")
    args = ap.parse_args()
    selected = select_scenarios(ap, args, SCENARIOS)

    res = Results()
    h = Harness(args)

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    started = time.monotonic()
    try:
        try:
            h.setup_testbed()
        except (SetupError, OSError, subprocess.SubprocessError, ValueError) as e:
            res.fail("setup", str(e) if isinstance(e, SetupError) else f"{type(e).__name__}: {e}")
            print(f"not run: {len(selected)} scenarios", flush=True)
        else:
            asyncio.run(run_all(h, selected, res))
    except KeyboardInterrupt:
        res.fail("interrupted", "stopped by Ctrl-C / signal; cleaning up")
    finally:
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)  # let the cleanup finish
        try:
            if h.proc is not None:
                h.stop_component()
            if res.failed and h.component_log is not None and h.component_log.exists():
                print(f"--- component log (last lines of {h.component_log}) ---", file=sys.stderr)
                print(tail(h.component_log, 40), file=sys.stderr)
        finally:
            h.teardown_testbed()
    if args.verbose:
        print(f"total {time.monotonic() - started:.1f}s", file=sys.stderr)
    print(f"{len(res.passed)} passed, {len(res.failed)} failed", flush=True)
    return 0 if not res.failed else 1


if __name__ == "__main__":
    sys.exit(main())
