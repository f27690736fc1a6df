#!/usr/bin/python3
"""An independent OMEMO 2 client on python3-twomemo, speaking real XMPP to the server and using the
Multiend archive component exactly as docs/protocol.md documents it. It is the interop referee for
the C++ `multiend` CLI, so it is built from the protocol documents only, never from our C++ code.

Crypto, sessions, device lists, prekey refill, empty messages (key-exchange completion, heartbeats)
and history-sync mode: python-omemo 1.0.2's ``SessionManager`` with the twomemo 1.0.3 backend.
XMPP: slixmpp 1.8 (STARTTLS + SCRAM), stanzas written by hand. State: one JSON file per device.

    twomemo_xmpp_peer.py init   --state F --jid J --password P --server HOST:PORT
                                [--component archive.DOMAIN] [--insecure | --ca-file F]
    twomemo_xmpp_peer.py send   --state F --to JID [--to JID ...] [--body TEXT] [--repeat N]
    twomemo_xmpp_peer.py sync   --state F [--page-size N]
    twomemo_xmpp_peer.py listen --state F [--seconds N] [--count N]
    twomemo_xmpp_peer.py bench-catchup --state F [--page-size N] [--no-save] [--expect N]
    twomemo_xmpp_peer.py info   --state F                      (no network)
    common: [--timeout S] [-v]

Output: JSON lines on stdout; on failure one line ``twomemo-peer: <what>`` on stderr and a non-zero
exit code (1 usage, 2 connection/timeout, 3 refused by the component/server or no usable device,
4 state file, 5 internal). Protocol deviations noticed on the way are reported on stderr as
``twomemo-peer: warning: protocol deviation: ...`` lines (they do not change the exit code).

Lines:
  {"type":"device","jid","device","fingerprint","component"}                      init, info
  {"type":"sent","id","origin_id","to","devices":[{"jid","device"}],"skipped":[...],"resent"}
  {"type":"message","id","from","from_device","to","body","timestamp","direction"}
  {"type":"undecryptable","id","from","from_device","to","body":null,"timestamp","direction","reason"}
  {"type":"synced","fetched","new"}                                                sync, listen
  {"type":"bench","messages","decrypted","undecryptable","seconds","rate","connect_seconds",...}

Semantics worth knowing:
* ``to`` = the bare JIDs of the header's <keys> groups plus XEP-0033 addresses, the sender's own
  account left out. ``direction`` = "out" when the sender's bare JID is our account (any device).
* Messages this very device sent (sid = our device id) cannot be decrypted (OMEMO never encrypts for
  the sending device). They are printed as "message", direction "out", with the body this device
  recorded when it sent them (state file, last 5000), or ``null`` when no record exists.
* Empty OMEMO messages are processed (ratchet, session confirmation) and never printed; so are
  messages with no <key> for us that have no payload.
* ``init`` remembers the archive's current end, so a new device's ``sync`` starts at its own
  creation rather than printing history that was never encrypted for it.
* ``listen`` announces presence *before* the MAM catch-up so nothing committed in between is
  missed, and drops fan-out duplicates by stanza-id. ``--count N`` counts printed
  message/undecryptable lines (catch-up included); when ``--seconds`` runs out first the exit code
  is 2. Without --seconds/--count it runs until SIGINT/SIGTERM (exit 0).
* Trust: blind trust (every device is used at once); no verification UI.
* Prekeys: python-omemo fetches a bundle (the component then claims a one-time prekey for us) only to
  learn a sender's identity key; the peer asks the component's <identity/> query first instead, so
  decrypting never claims a prekey. A prekeys-low headline for this device (seen while listening)
  makes it add fresh prekeys and republish its bundle. PeerTwomemo works around a python-omemo 1.0.2
  bug that otherwise loses a key-exchange message once the bundle holds more than 99 prekeys.
* Speed: twomemo reloads its X3DH state (~100 key conversions) for every message that still carries a
  key exchange (the sender's session is unconfirmed), so such catch-ups run at ~25-55 msg/s against
  ~200-300 msg/s on confirmed sessions; compare clients on the same archive.
* Test hook: TWOMEMO_PEER_TEST_STALE_LISTS=1 makes ``send`` skip refreshing the recipients' device
  lists, so the component's missing-devices answer and the single resend can be exercised.
* Reasons of "undecryptable" start with one of: not-encrypted-for-this-device, message-key-gone
  (duplicate), prekey-gone, no-session, tampered, identity-changed, bad-envelope, malformed,
  sender-unknown, decryption-failed; a ": detail" follows.
* Plaintext is an XEP-0420 SCE envelope (<content><body xmlns='jabber:client'>, <rpad>, <time>,
  <from>); a received envelope whose <from> is not the sender's bare JID is "bad-envelope".
* ``send --repeat N`` sends N messages (body "TEXT #i" when N > 1), one stanza and receipt each, so a
  script can fill an archive; ``bench-catchup`` then times the catch-up (MAM paging + decryption,
  connect excluded) and prints messages/s; ``--no-save`` leaves the state file untouched and sends
  nothing, so the same catch-up can be timed again.

Run with /usr/bin/python3 (Debian's python3-twomemo, python3-omemo, python3-slixmpp, python3-xmlschema).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import copy
import datetime as dt
import errno
import fcntl
import json
import logging
import os
import re
import secrets
import signal
import string
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Dict, FrozenSet, Iterable, List, Optional, Set, Tuple
from xml.sax.saxutils import escape, quoteattr

PROG = "twomemo-peer"

# Library logging goes nowhere unless -v (the CLI contract is one error line on stderr).
logging.getLogger().addHandler(logging.NullHandler())
logging.getLogger().setLevel(logging.CRITICAL + 10)
logging.lastResort = None  # type: ignore[assignment]

import omemo  # noqa: E402
import omemo.session  # noqa: E402
import slixmpp  # noqa: E402
import twomemo  # noqa: E402
import twomemo.etree  # noqa: E402
import twomemo.twomemo  # noqa: E402
import xmlschema  # noqa: E402
from slixmpp.xmlstream.handler import Callback  # noqa: E402
from slixmpp.xmlstream.matcher.base import MatcherBase  # noqa: E402

log = logging.getLogger("twomemo-peer")

# --- namespaces --------------------------------------------------------------------------------------------
NS_OMEMO = twomemo.twomemo.NAMESPACE          # urn:xmpp:omemo:2 (not exported at top level in 1.0.3)
NODE_DEVICES = "urn:xmpp:omemo:2:devices"
NODE_BUNDLES = "urn:xmpp:omemo:2:bundles"
NS_CLIENT = "jabber:client"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_PUBSUB_EVENT = "http://jabber.org/protocol/pubsub#event"
NS_ARCHIVE = "urn:multiend:archive:0"
NS_SID = "urn:xmpp:sid:0"
NS_RECEIPTS = "urn:xmpp:receipts"
NS_FORWARD = "urn:xmpp:forward:0"
NS_DELAY = "urn:xmpp:delay"
NS_MAM = "urn:xmpp:mam:2"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_ADDRESS = "http://jabber.org/protocol/address"
NS_HINTS = "urn:xmpp:hints"
NS_SCE = "urn:xmpp:sce:1"
NS_XDATA = "jabber:x:data"

STATE_VERSION = 1
SENT_RECORD_MAX = 5000
SEEN_MAX = 5000
MAM_MAX_PAGE = 250


def q(ns: str, name: str) -> str:
    return "{%s}%s" % (ns, name)


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:16]


def bare(jid: str) -> str:
    return jid.split("/", 1)[0].lower() if jid else ""


def id_key(stanza_id: str) -> Tuple[int, str]:
    """Sort key of a stanza-id (decimal strings that grow with time, protocol.md section 2)."""
    return (int(stanza_id), stanza_id) if stanza_id.isdigit() else (-1, stanza_id)


# ---------------------------------------------------------------------------------------------------------
# Errors and output
# ---------------------------------------------------------------------------------------------------------

EXIT_USAGE, EXIT_CONNECTION, EXIT_REFUSED, EXIT_STATE, EXIT_INTERNAL = 1, 2, 3, 4, 5


class PeerError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class StanzaError(Exception):
    """An XMPP error answer: type/condition plus application-specific children."""

    def __init__(self, type_: str, condition: str, text: str, app: List[ET.Element]) -> None:
        super().__init__(f"{type_}/{condition}" + "".join(f" +{local(a.tag)}" for a in app)
                         + (f" ({text})" if text else ""))
        self.type, self.condition, self.text, self.app = type_, condition, text, app

    def app_child(self, ns: str, name: str) -> Optional[ET.Element]:
        return next((a for a in self.app if a.tag == q(ns, name)), None)


def parse_stanza_error(el: ET.Element) -> StanzaError:
    err = el.find(q(NS_CLIENT, "error"))
    if err is None:
        err = el.find("error")
    if err is None:
        return StanzaError("", "undefined-condition", "error stanza without <error/>", [])
    cond, text, app = "", "", []
    for child in err:
        if child.tag.startswith("{%s}" % NS_STANZAS):
            if local(child.tag) == "text":
                text = child.text or ""
            elif not cond:
                cond = local(child.tag)
        else:
            app.append(child)
    return StanzaError(err.get("type", ""), cond or "undefined-condition", text, app)


def emit(obj: Dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


_deviations_seen: Set[str] = set()


def deviation(what: str) -> None:
    """A place where the component's behaviour differs from docs/protocol.md (reported once each)."""
    if what in _deviations_seen:
        return
    _deviations_seen.add(what)
    sys.stderr.write(f"{PROG}: warning: protocol deviation: {what}\n")
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------------------------
# State file (JSON, 0600, written atomically, locked while a command runs)
# ---------------------------------------------------------------------------------------------------------

class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: Dict[str, Any] = {}
        self._lock_fd: Optional[int] = None

    def lock(self, timeout: float) -> None:
        lock_path = str(self.path) + ".lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    os.close(fd)
                    raise PeerError(EXIT_STATE, f"cannot lock {lock_path}: {e}")
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise PeerError(EXIT_STATE, f"state file {self.path} is in use by another process "
                                                f"(waited {timeout:.0f}s for {lock_path})")
                time.sleep(0.1)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            finally:
                os.close(self._lock_fd)
                self._lock_fd = None

    def load(self) -> None:
        try:
            raw = self.path.read_text()
        except FileNotFoundError:
            raise PeerError(EXIT_STATE, f"state file {self.path} does not exist (run init first)") from None
        except OSError as e:
            raise PeerError(EXIT_STATE, f"cannot read state file {self.path}: {e}") from None
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as e:
            raise PeerError(EXIT_STATE, f"state file {self.path} is not valid JSON: {e}") from None
        if not isinstance(data, dict) or data.get("kind") != "twomemo-xmpp-peer" \
                or data.get("version") != STATE_VERSION:
            raise PeerError(EXIT_STATE, f"{self.path} is not a twomemo-xmpp-peer state file (version "
                                        f"{STATE_VERSION})")
        for k in ("jid", "password", "server", "component", "resource", "omemo"):
            if k not in data:
                raise PeerError(EXIT_STATE, f"state file {self.path} lacks '{k}'")
        data.setdefault("mam", {"last_id": None, "last_stamp": None})
        data.setdefault("seen", [])
        data.setdefault("sent", {})
        self.data = data

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self.data, f, separators=(",", ":"))
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        os.replace(tmp, self.path)


class JsonStorage(omemo.Storage):
    """python-omemo storage inside the state file's "omemo" dict (values are JSON already)."""

    def __init__(self, data: Dict[str, Any]) -> None:
        super().__init__()                 # sets up the cache
        self.data = data

    async def _load(self, key: str) -> omemo.Maybe:
        return omemo.Just(copy.deepcopy(self.data[key])) if key in self.data else omemo.Nothing()

    async def _store(self, key: str, value: Any) -> None:
        self.data[key] = copy.deepcopy(value)

    async def _delete(self, key: str) -> None:
        self.data.pop(key, None)


# ---------------------------------------------------------------------------------------------------------
# XMPP connection (slixmpp for the stream, stanzas as strings)
# ---------------------------------------------------------------------------------------------------------

class _MatchAll(MatcherBase):
    def __init__(self) -> None:
        super().__init__(None)

    def match(self, xml: Any) -> bool:
        return True


class Xmpp:
    def __init__(self, jid: str, resource: str, password: str, host: str, port: int, component: str,
                 ca_file: Optional[str], insecure: bool, timeout: float) -> None:
        self.bare = bare(jid)
        self.full = f"{self.bare}/{resource}"
        self.password = password
        self.host, self.port = host, port
        self.component = component
        self.ca_file = ca_file
        self.insecure = insecure
        self.timeout = timeout
        self.x: Optional[slixmpp.ClientXMPP] = None
        self._login_failed: Any = lambda exc: None
        self.connected = False
        self.disconnect_reason = ""
        self._iq: Dict[str, asyncio.Future] = {}
        self._mam: Dict[str, List[ET.Element]] = {}
        self._receipts: Dict[str, asyncio.Future] = {}       # our message id -> future(stanza element)
        self._early: Dict[str, ET.Element] = {}              # receipts/errors nobody waited for yet
        self.live: "asyncio.Queue[ET.Element]" = asyncio.Queue()   # fan-out headlines, events, prekeys-low

    # --- connection -------------------------------------------------------------------------------------
    async def connect(self) -> None:
        x = slixmpp.ClientXMPP(self.full, self.password)
        self.x = x
        x.whitespace_keepalive = False
        if self.ca_file:
            x.ca_certs = Path(self.ca_file)
        x.register_handler(Callback("twomemo-peer-all", _MatchAll(), self._on_stanza))
        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()

        def finish(exc: Optional[BaseException]) -> None:
            if not done.done():
                done.set_exception(exc) if exc is not None else done.set_result(True)

        self._login_failed = finish
        x.add_event_handler("session_start", lambda _e: finish(None))
        x.add_event_handler("failed_all_auth", lambda _e: finish(
            PeerError(EXIT_CONNECTION, f"{self.full}: authentication failed (wrong password?)")))
        x.add_event_handler("ssl_invalid_chain", lambda e: finish(
            PeerError(EXIT_CONNECTION, f"TLS certificate of {self.host}:{self.port} rejected: {e}")))
        x.add_event_handler("connection_failed", lambda e: finish(
            PeerError(EXIT_CONNECTION, f"cannot connect to {self.host}:{self.port}: {e}")))
        x.add_event_handler("stream_error", self._on_stream_error)
        x.add_event_handler("disconnected", self._on_disconnected)
        x.add_event_handler("disconnected", lambda e: finish(
            PeerError(EXIT_CONNECTION, f"disconnected during login to {self.host}:{self.port}: "
                                       f"{self.disconnect_reason or e}")))
        if self.insecure:
            x.connect(address=(self.host, self.port), force_starttls=False, disable_starttls=True)
        else:
            x.connect(address=(self.host, self.port), force_starttls=True)
        try:
            await asyncio.wait_for(done, self.timeout)
        except asyncio.TimeoutError:
            await self.abort()
            raise PeerError(EXIT_CONNECTION, f"no XMPP session with {self.host}:{self.port} within "
                                             f"{self.timeout:.0f}s") from None
        except BaseException:
            await self.abort()
            raise
        if not self.insecure and (x.transport is None or x.transport.get_extra_info("ssl_object") is None):
            await self.abort()
            raise PeerError(EXIT_CONNECTION, "session started without TLS")
        self.connected = True

    def _on_stream_error(self, e: Any) -> None:
        self.disconnect_reason = f"stream error: {e}"

    def _on_disconnected(self, reason: Any) -> None:
        self.connected = False
        if not self.disconnect_reason:
            self.disconnect_reason = str(reason) if reason else "connection closed"
        exc = PeerError(EXIT_CONNECTION, f"disconnected from the server: {self.disconnect_reason}")
        for fut in list(self._iq.values()) + list(self._receipts.values()):
            if not fut.done():
                fut.set_exception(exc)
        self.live.put_nowait(ET.Element("disconnected"))

    async def abort(self) -> None:
        x = self.x
        if x is None:
            return
        try:
            x.cancel_connection_attempt()
        except Exception:
            pass
        try:
            x.abort()
        except Exception:
            pass
        self.connected = False
        task = getattr(x, "_run_out_filters", None)      # slixmpp 1.8 leaves this task pending
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except BaseException:
                pass

    async def close(self) -> None:
        x = self.x
        if x is None:
            return
        if self.connected and x.transport is not None:
            try:
                await asyncio.wait_for(x.disconnect(wait=2.0), 3.0)
            except Exception:
                pass
        await self.abort()

    def send_raw(self, data: str) -> None:
        if self.x is None or self.x.transport is None or not self.connected:
            raise PeerError(EXIT_CONNECTION, f"not connected ({self.disconnect_reason or 'closed'})")
        self.x.send_raw(data)

    # --- incoming ---------------------------------------------------------------------------------------
    def _on_stanza(self, stanza: Any) -> None:
        el: ET.Element = stanza.xml
        tag = el.tag
        if tag == "{http://etherx.jabber.org/streams}features":
            tls = el.find("{urn:ietf:params:xml:ns:xmpp-tls}starttls")
            mechs = el.find("{urn:ietf:params:xml:ns:xmpp-sasl}mechanisms")
            if self.insecure and tls is not None and tls.find("{urn:ietf:params:xml:ns:xmpp-tls}required") \
                    is not None and mechs is None:
                self._login_failed(PeerError(EXIT_CONNECTION, f"{self.host}:{self.port} requires TLS "
                                                              f"(--insecure does not use it)"))
            return
        if tag == q(NS_CLIENT, "iq"):
            t, iq_id = el.get("type"), el.get("id", "")
            if t in ("result", "error"):
                fut = self._iq.pop(iq_id, None)
                if fut is not None and not fut.done():
                    fut.set_result(el)
            elif t in ("get", "set"):
                to = quoteattr(el.get("from", ""))
                if t == "get" and el.find("{urn:xmpp:ping}ping") is not None:
                    self.x.send_raw(f"<iq type='result' id={quoteattr(iq_id)} to={to}/>")
                else:
                    self.x.send_raw(f"<iq type='error' id={quoteattr(iq_id)} to={to}><error type='cancel'>"
                                    f"<service-unavailable xmlns='{NS_STANZAS}'/></error></iq>")
            return
        if tag != q(NS_CLIENT, "message"):
            return
        res = el.find(q(NS_MAM, "result"))
        if res is not None:
            bucket = self._mam.get(res.get("queryid", ""))
            if bucket is not None:
                bucket.append(el)
            return
        frm = el.get("from", "")
        if el.get("type") == "error":
            mid = el.get("id", "")
            fut = self._receipts.pop(mid, None)
            if fut is not None and not fut.done():
                fut.set_result(el)
            elif mid:
                self._early[mid] = el
            return
        rec = el.find(q(NS_RECEIPTS, "received"))
        if rec is not None:
            if frm != self.component:
                log.warning("ignoring a receipt from %s", frm)
                return
            if el.get("type") != "headline":
                deviation(f"receipt is a message of type '{el.get('type', 'normal')}', protocol.md says "
                          f"type='headline'")
            rid = rec.get("id", "")
            fut = self._receipts.pop(rid, None)
            if fut is not None and not fut.done():
                fut.set_result(el)
            else:
                self._early[rid] = el
            return
        self.live.put_nowait(el)

    # --- IQs --------------------------------------------------------------------------------------------
    async def iq(self, xml: str, iq_id: str, timeout: Optional[float] = None) -> ET.Element:
        fut = asyncio.get_running_loop().create_future()
        self._iq[iq_id] = fut
        try:
            self.send_raw(xml)
            return await asyncio.wait_for(fut, timeout or self.timeout)
        except asyncio.TimeoutError:
            raise PeerError(EXIT_CONNECTION, f"no answer to iq {iq_id} within {timeout or self.timeout:.0f}s: "
                                             f"{xml[:160]}") from None
        finally:
            self._iq.pop(iq_id, None)

    async def iq_ok(self, xml: str, iq_id: str, timeout: Optional[float] = None) -> ET.Element:
        r = await self.iq(xml, iq_id, timeout)
        if r.get("type") == "error":
            raise parse_stanza_error(r)
        return r

    async def pubsub(self, type_: str, owner_node_jid: str, inner: str) -> ET.Element:
        iq_id = new_id("ps")
        return await self.iq_ok(f"<iq type='{type_}' to={quoteattr(owner_node_jid)} id='{iq_id}'>"
                                f"<pubsub xmlns='{NS_PUBSUB}'>{inner}</pubsub></iq>", iq_id)

    # --- archive messages -------------------------------------------------------------------------------
    async def send_archive_message(self, encrypted_xml: str, origin_id: str, addresses: Iterable[str],
                                   timeout: Optional[float] = None) -> Tuple[str, ET.Element]:
        """Sends protocol.md section 2's message; returns (message id, receipt or error stanza)."""
        msg_id = new_id("m")
        addr = list(addresses)
        parts = [f"<message to={quoteattr(self.component)} type='normal' id='{msg_id}'>", encrypted_xml,
                 f"<origin-id xmlns='{NS_SID}' id={quoteattr(origin_id)}/>"]
        if addr:
            parts.append(f"<addresses xmlns='{NS_ADDRESS}'>"
                         + "".join(f"<address type='to' jid={quoteattr(a)}/>" for a in addr) + "</addresses>")
        parts.append(f"<store xmlns='{NS_HINTS}'/></message>")
        fut = asyncio.get_running_loop().create_future()
        self._receipts[msg_id] = fut
        try:
            self.send_raw("".join(parts))
            t = timeout or self.timeout
            try:
                return msg_id, await asyncio.wait_for(fut, t)
            except asyncio.TimeoutError:
                raise PeerError(EXIT_CONNECTION, f"no receipt from {self.component} for message {msg_id} "
                                                 f"within {t:.0f}s") from None
        finally:
            self._receipts.pop(msg_id, None)

    # --- MAM --------------------------------------------------------------------------------------------
    async def mam_page(self, after: Optional[str] = None, before: Optional[str] = None, max_: int = 50,
                       start: Optional[str] = None) -> Tuple[List[ET.Element], ET.Element]:
        """One MAM page from the component: (the <message><result> stanzas in arrival order, <fin>)."""
        queryid = new_id("q")
        iq_id = new_id("mam")
        form = ""
        if start is not None:
            form = (f"<x xmlns='{NS_XDATA}' type='submit'><field var='FORM_TYPE' type='hidden'>"
                    f"<value>{NS_MAM}</value></field><field var='start'><value>{escape(start)}</value></field></x>")
        rsm = f"<max>{int(max_)}</max>"
        if after is not None:
            rsm += f"<after>{escape(after)}</after>"
        if before is not None:
            rsm += f"<before>{escape(before)}</before>" if before else "<before/>"
        xml = (f"<iq type='set' to={quoteattr(self.component)} id='{iq_id}'>"
               f"<query xmlns='{NS_MAM}' queryid='{queryid}'>{form}<set xmlns='{NS_RSM}'>{rsm}</set></query></iq>")
        self._mam[queryid] = []
        try:
            r = await self.iq(xml, iq_id, max(self.timeout, 30.0))
            got = self._mam.get(queryid, [])
        finally:
            self._mam.pop(queryid, None)
        if r.get("type") == "error":
            raise parse_stanza_error(r)
        fin = r.find(q(NS_MAM, "fin"))
        if fin is None:
            raise PeerError(EXIT_REFUSED, f"MAM answer without <fin>: {ET.tostring(r, encoding='unicode')[:300]}")
        out = []
        for m in got:
            frm = m.get("from", "")
            if frm not in (self.component, ""):
                deviation(f"MAM result from '{frm}', expected from='{self.component}'")
                continue
            out.append(m)
        return out, fin


# ---------------------------------------------------------------------------------------------------------
# The component's PubSub API (protocol.md section 1) for python-omemo
# ---------------------------------------------------------------------------------------------------------

PUBLISH_OPTIONS_BUNDLE = {"pubsub#max_items": "max", "pubsub#access_model": "open"}
PUBLISH_OPTIONS_DEVICES = {"pubsub#access_model": "open"}


def publish_options(opts: Dict[str, str]) -> str:
    fields = "".join(f"<field var={quoteattr(k)}><value>{escape(v)}</value></field>" for k, v in opts.items())
    return (f"<publish-options><x xmlns='{NS_XDATA}' type='submit'><field var='FORM_TYPE' type='hidden'>"
            f"<value>http://jabber.org/protocol/pubsub#publish-options</value></field>{fields}</x></publish-options>")


def ns_default(el: ET.Element) -> str:
    """Serialise an OMEMO element with the namespace as default namespace (as XMPP libraries write it)."""
    out = ET.tostring(el, encoding="unicode")
    m = re.match(r"<([A-Za-z_][\w.-]*):", out)
    if m:                               # every element is in the one namespace; base64 text has no '<'
        p = m.group(1)
        out = out.replace(f"<{p}:", "<").replace(f"</{p}:", "</").replace(f"xmlns:{p}=", "xmlns=", 1)
    return out


class ComponentApi:
    def __init__(self, xmpp: Xmpp, user_domain: str) -> None:
        self.xmpp = xmpp
        self.user_domain = user_domain
        self.bundle_claims = 0

    def node_jid(self, bare_jid: str) -> str:
        """alice@example.org -> alice@archive.example.org (protocol.md: the user's node JID)."""
        localpart, _, _domain = bare_jid.partition("@")
        return f"{localpart}@{self.xmpp.component}"

    def user_jid_of_node(self, node_jid: str) -> Optional[str]:
        localpart, _, domain = bare(node_jid).partition("@")
        if domain != self.xmpp.component or not localpart:
            return None
        return f"{localpart}@{self.user_domain}"

    async def download_device_list(self, bare_jid: str) -> Dict[int, Optional[str]]:
        try:
            r = await self.xmpp.pubsub("get", self.node_jid(bare_jid), f"<items node='{NODE_DEVICES}'/>")
        except StanzaError as e:
            if e.condition == "item-not-found":
                return {}
            raise omemo.DeviceListDownloadFailed(f"device list of {bare_jid}: {e}") from e
        items = r.find(f"{q(NS_PUBSUB, 'pubsub')}/{q(NS_PUBSUB, 'items')}")
        its = [] if items is None else items.findall(q(NS_PUBSUB, "item"))
        if not its:
            deviation(f"device list of {bare_jid}: result without an item (protocol.md: item 'current' or "
                      f"cancel/item-not-found)")
            return {}
        if len(its) != 1 or its[0].get("id") != "current":
            deviation(f"device list of {bare_jid}: items {[i.get('id') for i in its]}, expected one item "
                      f"id 'current'")
        devs = its[-1].find(q(NS_OMEMO, "devices"))
        if devs is None:
            raise omemo.DeviceListDownloadFailed(f"device list of {bare_jid}: item without <devices>")
        try:
            return twomemo.etree.parse_device_list(devs)          # validates with twomemo's schema
        except Exception as e:
            deviation(f"device list of {bare_jid} rejected by twomemo's schema: {e}")
            raise omemo.DeviceListDownloadFailed(f"device list of {bare_jid}: {e}") from e

    async def upload_device_list(self, own_jid: str, device_list: Dict[int, Optional[str]]) -> None:
        el = twomemo.etree.serialize_device_list({d: None for d in device_list})   # no labels (twomemo 1.0.3)
        inner = (f"<publish node='{NODE_DEVICES}'><item id='current'>{ns_default(el)}</item></publish>"
                 f"{publish_options(PUBLISH_OPTIONS_DEVICES)}")
        try:
            await self.xmpp.pubsub("set", self.node_jid(own_jid), inner)
        except StanzaError as e:
            raise omemo.DeviceListUploadFailed(f"publishing the device list: {e}") from e

    async def upload_bundle(self, own_jid: str, bundle: Any) -> None:
        el = twomemo.etree.serialize_bundle(bundle)
        inner = (f"<publish node='{NODE_BUNDLES}'><item id='{int(bundle.device_id)}'>{ns_default(el)}</item>"
                 f"</publish>{publish_options(PUBLISH_OPTIONS_BUNDLE)}")
        try:
            await self.xmpp.pubsub("set", self.node_jid(own_jid), inner)
        except StanzaError as e:
            raise omemo.BundleUploadFailed(f"publishing bundle {bundle.device_id}: {e}") from e

    async def delete_bundle(self, own_jid: str, device_id: int) -> None:
        inner = f"<retract node='{NODE_BUNDLES}'><item id='{int(device_id)}'/></retract>"
        try:
            await self.xmpp.pubsub("set", self.node_jid(own_jid), inner)
        except StanzaError as e:
            if e.condition != "item-not-found":
                raise omemo.BundleDeletionFailed(f"retracting bundle {device_id}: {e}") from e

    async def identities(self, bare_jid: str, device_id: Optional[int] = None) -> Dict[int, bytes]:
        """protocol.md "Identity keys without claiming a prekey": {device id: Ed25519 ik}."""
        iq_id = new_id("ik")
        attr = "" if device_id is None else f" device='{int(device_id)}'"
        try:
            r = await self.xmpp.iq_ok(f"<iq type='get' to={quoteattr(self.node_jid(bare_jid))} id='{iq_id}'>"
                                      f"<identity xmlns='{NS_ARCHIVE}'{attr}/></iq>", iq_id)
        except StanzaError as e:
            if e.condition == "item-not-found":
                return {}
            raise
        el = r.find(q(NS_ARCHIVE, "identity"))
        if el is None:
            deviation(f"identity query for {bare_jid} answered without <identity xmlns='{NS_ARCHIVE}'>")
            return {}
        out: Dict[int, bytes] = {}
        for d in el.findall(q(NS_ARCHIVE, "device")):
            try:
                did, ik = int(d.get("id", "")), base64.b64decode(d.get("ik", ""), validate=True)
            except (ValueError, binascii.Error):
                deviation(f"bad identity entry: {ET.tostring(d, encoding='unicode')}")
                continue
            if len(ik) != 32:
                deviation(f"identity of {bare_jid}/{did} is {len(ik)} bytes, expected a 32-byte Ed25519 key")
                continue
            out[did] = ik
        if device_id is not None and set(out) - {device_id}:
            deviation(f"identity query for device {device_id} of {bare_jid} answered with devices {sorted(out)}")
        return out

    async def download_bundle(self, bare_jid: str, device_id: int) -> Any:
        inner = f"<items node='{NODE_BUNDLES}'><item id='{int(device_id)}'/></items>"
        try:
            r = await self.xmpp.pubsub("get", self.node_jid(bare_jid), inner)
        except StanzaError as e:
            if e.condition == "item-not-found":
                raise omemo.BundleNotFound(f"no bundle for {bare_jid}/{device_id}") from e
            raise omemo.BundleDownloadFailed(f"bundle of {bare_jid}/{device_id}: {e}") from e
        self.bundle_claims += 1
        items = r.find(f"{q(NS_PUBSUB, 'pubsub')}/{q(NS_PUBSUB, 'items')}")
        its = [] if items is None else items.findall(q(NS_PUBSUB, "item"))
        mine = [i for i in its if i.get("id") == str(device_id)]
        if len(its) != 1 or not mine:
            deviation(f"bundle request for {bare_jid}/{device_id} answered with items "
                      f"{[i.get('id') for i in its]} (expected exactly item {device_id})")
        if not mine:
            raise omemo.BundleNotFound(f"no item {device_id} in the answer for {bare_jid}")
        b = mine[0].find(q(NS_OMEMO, "bundle"))
        if b is None:
            raise omemo.BundleDownloadFailed(f"item {device_id} of {bare_jid} without <bundle>")
        npk = len(b.findall(f"{q(NS_OMEMO, 'prekeys')}/{q(NS_OMEMO, 'pk')}"))
        if npk != 1:
            deviation(f"bundle of {bare_jid}/{device_id} carries {npk} <pk>, protocol.md says exactly one "
                      f"(claimed for the requester)")
        try:
            return twomemo.etree.parse_bundle(b, bare_jid, device_id)      # validates with twomemo's schema
        except Exception as e:
            deviation(f"bundle of {bare_jid}/{device_id} rejected by twomemo's schema: {e}")
            raise omemo.BundleDownloadFailed(f"bundle of {bare_jid}/{device_id}: {e}") from e


# ---------------------------------------------------------------------------------------------------------
# python-omemo SessionManager bound to the component
# ---------------------------------------------------------------------------------------------------------

TRUST_BLIND = "blind"


class PeerTwomemo(twomemo.Twomemo):
    """twomemo's backend, with one work-around for python-omemo 1.0.2: after a key exchange,
    ``SessionManager.decrypt`` uploads a variable ``bundle`` that it only assigns when the visible prekeys
    are <= the refill threshold (99); with more (a bundle grown by a prekeys-low refill) it raises
    UnboundLocalError and the message is lost. Reporting at most 99 makes it take the refill path, which
    adds one fresh prekey per used one and republishes: the behaviour it has at 100 prekeys anyway."""

    async def get_num_visible_pre_keys(self) -> int:
        return min(await super().get_num_visible_pre_keys(), 99)


class PeerSessionManager(omemo.SessionManager):
    """Hooks of python-omemo's SessionManager. ``create()`` instantiates the class itself, so the
    network objects are class attributes of a subclass made per run (see make_manager)."""

    API: ComponentApi
    OWN_JID: str
    SENT_EMPTY: List[Dict[str, Any]]

    async def _upload_bundle(self, bundle: Any) -> None:  # type: ignore[override]
        await self.API.upload_bundle(self.OWN_JID, bundle)

    async def _download_bundle(self, namespace: str, bare_jid: str, device_id: int) -> Any:  # type: ignore
        if namespace != NS_OMEMO:
            raise omemo.UnknownNamespace(namespace)
        return await self.API.download_bundle(bare_jid, device_id)

    async def _delete_bundle(self, namespace: str, device_id: int) -> None:  # type: ignore[override]
        await self.API.delete_bundle(self.OWN_JID, device_id)

    async def _upload_device_list(self, namespace: str, device_list: Dict[int, Optional[str]]) -> None:  # type: ignore
        if namespace != NS_OMEMO:
            raise omemo.UnknownNamespace(namespace)
        await self.API.upload_device_list(self.OWN_JID, device_list)

    async def _download_device_list(self, namespace: str, bare_jid: str) -> Dict[int, Optional[str]]:  # type: ignore
        if namespace != NS_OMEMO:
            raise omemo.UnknownNamespace(namespace)
        return await self.API.download_device_list(bare_jid)

    async def _evaluate_custom_trust_level(self, device: omemo.DeviceInformation) -> omemo.TrustLevel:
        # blind trust: every device is used at once (the peer has no verification UI)
        if device.trust_level_name == "distrusted":
            return omemo.TrustLevel.DISTRUSTED
        return omemo.TrustLevel.TRUSTED

    async def _make_trust_decision(self, undecided: FrozenSet[omemo.DeviceInformation],
                                   identifier: Optional[str]) -> None:
        for d in undecided:
            await self.set_trust(d.bare_jid, d.identity_key, TRUST_BLIND)

    async def _send_message(self, message: omemo.Message, bare_jid: str) -> None:  # type: ignore[override]
        """Empty OMEMO messages python-omemo sends on its own (key-exchange completion, heartbeats):
        through the component like any message (they are exempt from its coverage check)."""
        enc = ns_default(twomemo.etree.serialize_message(message))
        origin = uuid.uuid4().hex
        try:
            _mid, answer = await self.API.xmpp.send_archive_message(enc, origin, ())
        except PeerError as e:
            raise omemo.MessageSendingFailed(str(e)) from e
        if answer.get("type") == "error":
            raise omemo.MessageSendingFailed(f"empty message to {bare_jid} refused: "
                                             f"{parse_stanza_error(answer)}")
        sid_el = answer.find(q(NS_SID, "stanza-id"))
        self.SENT_EMPTY.append({"to": bare_jid, "id": sid_el.get("id") if sid_el is not None else None})


async def make_manager(api: ComponentApi, own_jid: str, storage: JsonStorage) -> PeerSessionManager:
    cls = type("BoundSessionManager", (PeerSessionManager,), {"API": api, "OWN_JID": own_jid, "SENT_EMPTY": []})
    try:
        return await cls.create([PeerTwomemo(storage)], storage, own_jid, None, TRUST_BLIND,
                                pre_key_refill_threshold=99)
    except (omemo.XMPPInteractionFailed, StanzaError) as e:
        raise PeerError(EXIT_REFUSED, f"setting up the OMEMO device failed: {e}") from e


# ---------------------------------------------------------------------------------------------------------
# SCE envelope (XEP-0420 with the OMEMO profile)
# ---------------------------------------------------------------------------------------------------------

def now_stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def build_envelope(body: str, from_jid: str) -> bytes:
    rpad = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(secrets.randbelow(201)))
    return (f"<envelope xmlns='{NS_SCE}'><content><body xmlns='{NS_CLIENT}'>{escape(body)}</body></content>"
            f"<rpad>{rpad}</rpad><time stamp='{now_stamp()}'/><from jid={quoteattr(from_jid)}/></envelope>"
            ).encode("utf-8")


class BadEnvelope(Exception):
    pass


def parse_envelope(plaintext: bytes, sender_bare: str) -> str:
    try:
        text = plaintext.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadEnvelope(f"not UTF-8: {e}") from None
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise BadEnvelope("DTD in the envelope")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise BadEnvelope(f"not XML: {e}") from None
    if root.tag != q(NS_SCE, "envelope"):
        raise BadEnvelope(f"root element is {root.tag}, not an SCE <envelope>")
    content = root.find(q(NS_SCE, "content"))
    if content is None:
        raise BadEnvelope("no <content>")
    frm = root.find(q(NS_SCE, "from"))
    if frm is not None and bare(frm.get("jid", "")) != sender_bare:
        raise BadEnvelope(f"envelope <from jid='{frm.get('jid')}'> is not the sender {sender_bare}")
    body = content.find(q(NS_CLIENT, "body"))
    if body is None:
        raise BadEnvelope("no <body xmlns='jabber:client'> in <content>")
    return body.text or ""


# ---------------------------------------------------------------------------------------------------------
# Errors of decryption -> reason codes
# ---------------------------------------------------------------------------------------------------------

def cause_chain(exc: BaseException) -> List[BaseException]:
    out, seen = [], set()
    e: Optional[BaseException] = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        out.append(e)
        e = e.__cause__ or (None if e.__suppress_context__ else e.__context__)
    return out


def describe(exc: BaseException) -> str:
    return " <- ".join(f"{type(e).__name__}({e})" if str(e) else type(e).__name__ for e in cause_chain(exc))


def reason_of(exc: BaseException) -> str:
    chain = cause_chain(exc)
    names = {type(e).__name__ for e in chain}
    texts = " | ".join(str(e) for e in chain)
    detail = describe(exc)[:400]
    if isinstance(exc, omemo.MessageNotForUs):
        code = "not-encrypted-for-this-device"
    elif isinstance(exc, omemo.SenderNotFound):
        code = "sender-unknown"
    elif isinstance(exc, omemo.NoSession):
        code = "no-session"
    elif isinstance(exc, omemo.PublicDataInconsistency):
        code = "identity-changed"
    elif "DuplicateMessageException" in names:
        code = "message-key-gone"
    elif "No pre key with id" in texts or "pre key" in texts.lower() and isinstance(exc, omemo.KeyExchangeFailed):
        code = "prekey-gone"
    elif "AuthenticationFailedException" in names or "verification failed" in texts.lower():
        code = "tampered"
    elif isinstance(exc, BadEnvelope):
        code = "bad-envelope"
    elif any("XMLSchema" in n for n in names) or any(isinstance(e, (ValueError, binascii.Error, KeyError))
                                                      for e in chain) and not isinstance(exc, omemo.OMEMOException):
        code = "malformed"
    else:
        code = "decryption-failed"
    return f"{code}: {detail}"


# ---------------------------------------------------------------------------------------------------------
# The device
# ---------------------------------------------------------------------------------------------------------

class Peer:
    def __init__(self, state: StateFile, timeout: float, no_save: bool = False) -> None:
        self.state = state
        self.d = state.data
        self.timeout = timeout
        self.no_save = no_save
        self.jid = bare(self.d["jid"])
        self.user_domain = self.jid.partition("@")[2]
        host, port = split_server(self.d["server"])
        self.xmpp = Xmpp(self.jid, self.d["resource"], self.d["password"], host, port, self.d["component"],
                         self.d.get("ca_file"), bool(self.d.get("insecure")), timeout)
        self.api = ComponentApi(self.xmpp, self.user_domain)
        self.storage = JsonStorage(self.d["omemo"])
        self.mgr: Optional[PeerSessionManager] = None
        self.device_id = 0
        self.seen: Set[str] = set(self.d.get("seen", []))
        self.seen_order: List[str] = list(self.d.get("seen", []))
        self.printed = 0
        self.stop = asyncio.Event()

    # --- lifecycle --------------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.xmpp.connect()
        self.mgr = await make_manager(self.api, self.jid, self.storage)
        dev, _ = await self.mgr.get_own_device_information()
        self.device_id = dev.device_id
        self.d["device"] = self.device_id

    async def close(self) -> None:
        for t in asyncio.all_tasks():
            if t is not asyncio.current_task() and "manage_signed_pre_key_rotation" in repr(t.get_coro()):
                t.cancel()
        await self.xmpp.close()

    def save(self) -> None:
        if self.no_save:
            return
        self.d["seen"] = self.seen_order[-SEEN_MAX:]
        self.state.save()

    async def fingerprint(self) -> str:
        dev, _ = await self.mgr.get_own_device_information()
        return " ".join(self.mgr.format_identity_key(dev.identity_key))

    async def prefill_identities(self, bare_jid: str, device_id: Optional[int] = None) -> None:
        """python-omemo downloads a bundle (claiming a one-time prekey) only to learn a device's identity
        key; the component answers that without a claim. Cache the keys where python-omemo looks first
        (its own public-data key, written through the same Storage API it uses)."""
        if device_id is not None and (await self.storage.load_bytes(
                f"/devices/{bare_jid}/{device_id}/identity_key")).is_just:
            return
        try:
            iks = await self.api.identities(bare_jid, device_id)
        except StanzaError as e:
            deviation(f"identity query for {bare_jid} refused: {e}")
            return
        for did, ik in iks.items():
            key = f"/devices/{bare_jid}/{did}/identity_key"
            if (await self.storage.load_bytes(key)).is_nothing:
                await self.storage.store_bytes(key, ik)

    async def ensure_registered(self) -> None:
        """Our device must be on our list at the component (it may have been pruned or removed):
        republishing the bundle adds it back (protocol.md section 1)."""
        devices = await self.api.download_device_list(self.jid)
        if self.device_id not in devices:
            log.warning("own device %s missing from the device list; republishing the bundle", self.device_id)
            backend = twomemo.Twomemo(self.storage)
            await self.api.upload_bundle(self.jid, await backend.get_bundle(self.jid, self.device_id))
        await self.mgr.refresh_device_list(NS_OMEMO, self.jid)

    # --- sending ----------------------------------------------------------------------------------------
    async def send(self, recipients: List[str], body: str) -> Dict[str, Any]:
        recipients = list(dict.fromkeys(bare(r) for r in recipients))
        for r in recipients:
            if "@" not in r:
                raise PeerError(EXIT_USAGE, f"recipient '{r}' is not a bare JID")
        # test hook: TWOMEMO_PEER_TEST_STALE_LISTS=1 encrypts with the device lists known from earlier runs
        # (no refresh of the recipients' lists), to exercise the component's missing-devices answer
        stale = os.environ.get("TWOMEMO_PEER_TEST_STALE_LISTS") == "1"
        for jid in ([] if stale else recipients) + [self.jid]:
            await self.refresh(jid)
        origin_id = uuid.uuid4().hex
        plaintext = build_envelope(body, self.jid)
        resent = False
        for attempt in range(2):
            enc_xml, devices, skipped = await self.encrypt(recipients, plaintext)
            self.save()                 # ratchets moved: persist before the stanza leaves
            _mid, answer = await self.xmpp.send_archive_message(enc_xml, origin_id, recipients)
            if answer.get("type") != "error":
                sid_el = answer.find(q(NS_SID, "stanza-id"))
                if sid_el is None or not sid_el.get("id"):
                    raise PeerError(EXIT_REFUSED, f"receipt without <stanza-id>: "
                                                  f"{ET.tostring(answer, encoding='unicode')[:300]}")
                if sid_el.get("by") != self.xmpp.component:
                    deviation(f"receipt's stanza-id by='{sid_el.get('by')}', expected '{self.xmpp.component}'")
                stanza_id = sid_el.get("id")
                self.remember_sent(stanza_id, body)
                self.save()
                return {"type": "sent", "id": stanza_id, "origin_id": origin_id, "to": recipients,
                        "devices": devices, "skipped": skipped, "resent": resent}
            err = parse_stanza_error(answer)
            missing_el = err.app_child(NS_ARCHIVE, "missing-devices")
            if missing_el is None or attempt == 1:
                raise PeerError(EXIT_REFUSED, f"the component refused the message: {err}"
                                + (f"; still missing {self.missing_list(missing_el)}" if missing_el is not None else ""))
            if (err.type, err.condition) != ("modify", "not-acceptable"):
                deviation(f"missing-devices error is {err.type}/{err.condition}, protocol.md says "
                          f"modify/not-acceptable")
            missing = self.missing_list(missing_el)
            log.info("component reports missing devices %s; refreshing and resending", missing)
            for jid in sorted({j for j, _ in missing}):
                await self.refresh(jid)
            resent = True
        raise AssertionError("unreachable")

    @staticmethod
    def missing_list(el: ET.Element) -> List[Tuple[str, int]]:
        out = []
        for d in el.findall(q(NS_ARCHIVE, "device")):
            try:
                out.append((bare(d.get("jid", "")), int(d.get("id", ""))))
            except ValueError:
                deviation(f"missing-devices entry with a bad id: {ET.tostring(d, encoding='unicode')}")
        return out

    async def refresh(self, jid: str) -> None:
        try:
            await self.mgr.refresh_device_list(NS_OMEMO, jid)
        except omemo.XMPPInteractionFailed as e:
            raise PeerError(EXIT_REFUSED, f"cannot fetch the device list of {jid}: {e}") from e

    async def encrypt(self, recipients: List[str], plaintext: bytes) -> Tuple[str, List[Dict[str, Any]],
                                                                                List[Dict[str, Any]]]:
        try:
            msgs, errors = await self.mgr.encrypt(frozenset(recipients), {NS_OMEMO: plaintext})
        except omemo.NoEligibleDevices as e:
            raise PeerError(EXIT_REFUSED, f"no usable OMEMO device for {', '.join(sorted(e.bare_jids))} "
                                          f"at {self.xmpp.component}") from e
        except omemo.SessionManagerException as e:
            raise PeerError(EXIT_REFUSED, f"encryption failed: {describe(e)}") from e
        if len(msgs) != 1:
            raise PeerError(EXIT_REFUSED, "nothing to encrypt for (no device of any recipient)")
        (message, _pkm), = msgs.items()
        devices = sorted(({"jid": k[0].bare_jid, "device": k[0].device_id} for k in message.keys),
                         key=lambda x: (x["jid"], x["device"]))
        skipped = [{"jid": e.bare_jid, "device": e.device_id, "reason": describe(e.exception)[:300]}
                   for e in errors]
        return ns_default(twomemo.etree.serialize_message(message)), devices, skipped

    def remember_sent(self, stanza_id: str, body: str) -> None:
        sent = self.d.setdefault("sent", {})
        sent[stanza_id] = body
        while len(sent) > SENT_RECORD_MAX:
            sent.pop(next(iter(sent)))

    # --- receiving --------------------------------------------------------------------------------------
    def mark_seen(self, stanza_id: str, stamp: Optional[str]) -> None:
        if stanza_id not in self.seen:
            self.seen.add(stanza_id)
            self.seen_order.append(stanza_id)
            if len(self.seen_order) > 2 * SEEN_MAX:
                drop = self.seen_order[:-SEEN_MAX]
                self.seen_order = self.seen_order[-SEEN_MAX:]
                self.seen.difference_update(drop)
        mam = self.d.setdefault("mam", {"last_id": None, "last_stamp": None})
        if mam.get("last_id") is None or id_key(stanza_id) > id_key(mam["last_id"]):
            mam["last_id"] = stanza_id
            mam["last_stamp"] = stamp

    async def process(self, stanza_id: str, inner: ET.Element, stamp: Optional[str], quiet: bool = False
                      ) -> Optional[Dict[str, Any]]:
        """Decrypts one archived/forwarded <message>; returns the line to print (None: nothing to print)."""
        sender_full = inner.get("from", "")
        sender = bare(sender_full)
        enc = inner.find(q(NS_OMEMO, "encrypted"))
        header = enc.find(q(NS_OMEMO, "header")) if enc is not None else None
        sid: Optional[int] = None
        key_jids: List[str] = []
        has_payload = enc is not None and enc.find(q(NS_OMEMO, "payload")) is not None
        if header is not None:
            try:
                sid = int(header.get("sid", ""))
            except ValueError:
                sid = None
            key_jids = [bare(k.get("jid", "")) for k in header.findall(q(NS_OMEMO, "keys"))]
        addrs = inner.find(q(NS_ADDRESS, "addresses"))
        addr_jids = [] if addrs is None else [bare(a.get("jid", "")) for a in addrs.findall(q(NS_ADDRESS, "address"))
                                              if a.get("type") in ("to", "cc", "bcc")]
        to = [j for j in dict.fromkeys(key_jids + addr_jids) if j and j != sender]
        direction = "out" if sender == self.jid else "in"
        def line(type_: str, body: Optional[str] = None, reason: Optional[str] = None) -> Dict[str, Any]:
            out = {"type": type_, "id": stanza_id, "from": sender, "from_device": sid, "to": to, "body": body,
                   "timestamp": stamp, "direction": direction}
            if reason is not None:
                out["reason"] = reason
            return out

        def undecryptable(reason: str) -> Dict[str, Any]:
            return line("undecryptable", reason=reason)

        if not sender:
            deviation(f"archived message {stanza_id} has no 'from' on the inner <message>")
            return undecryptable("malformed: the archived message has no sender")
        if enc is None or header is None or sid is None:
            return undecryptable("malformed: no OMEMO 2 <encrypted> with a <header sid>")
        if sender == self.jid and sid == self.device_id:
            if not has_payload:
                return None                      # our own empty message
            return line("message", self.d.get("sent", {}).get(stanza_id))
        try:
            message = twomemo.etree.parse_message(enc, sender)
        except Exception as e:
            return undecryptable(f"malformed: {describe(e)[:300]}")
        for_us = any(k[0].bare_jid == self.jid and k[0].device_id == self.device_id for k in message.keys)
        if not for_us:
            if not has_payload:
                return None                      # somebody else's empty message
            return undecryptable(f"not-encrypted-for-this-device: no <key rid='{self.device_id}'> for {self.jid}")
        try:
            await self.prefill_identities(sender, sid)
            plaintext, _device, _pkm = await self.mgr.decrypt(message)
        except PeerError:
            raise
        except omemo.XMPPInteractionFailed as e:
            # network/component trouble (device list, bundle upload, the automatic empty message): stop
            # without saving, so the state file keeps the position and ratchets from before this message
            inner_err = next((c for c in cause_chain(e) if isinstance(c, PeerError)), None)
            raise PeerError(inner_err.code if inner_err else EXIT_REFUSED,
                            f"while decrypting {stanza_id}: {describe(e)}") from e
        except (omemo.OMEMOException, ValueError, binascii.Error, xmlschema.XMLSchemaValidationError) as e:
            return undecryptable(reason_of(e))
        if plaintext is None:
            if has_payload:
                return undecryptable("malformed: payload present but twomemo returned no plaintext")
            return None                          # empty OMEMO message: processed, not printed
        try:
            body = parse_envelope(plaintext, sender)
        except BadEnvelope as e:
            return undecryptable(f"bad-envelope: {e}")
        return line("message", body)

    def print_line(self, line: Optional[Dict[str, Any]], quiet: bool) -> None:
        if line is None:
            return
        self.printed += 1
        if not quiet:
            emit(line)

    def unwrap_forwarded(self, fw: Optional[ET.Element], where: str) -> Tuple[Optional[ET.Element], Optional[str]]:
        if fw is None:
            deviation(f"{where} without <forwarded xmlns='{NS_FORWARD}'>")
            return None, None
        inner = fw.find(q(NS_CLIENT, "message"))
        if inner is None:
            deviation(f"{where}: <forwarded> without a jabber:client <message>")
            return None, None
        delay = fw.find(q(NS_DELAY, "delay"))
        stamp = delay.get("stamp") if delay is not None else None
        if stamp is None:
            deviation(f"{where}: <forwarded> without <delay stamp>")
        return inner, stamp

    # --- catch-up ---------------------------------------------------------------------------------------
    async def catch_up(self, page_size: int, quiet: bool = False) -> Tuple[int, int, Dict[str, int]]:
        """MAM from the remembered position; returns (fetched, printed, counts)."""
        mam = self.d.setdefault("mam", {"last_id": None, "last_stamp": None})
        after = mam.get("last_id")
        start_fallback: Optional[str] = None
        fetched = printed0 = 0
        printed0 = self.printed
        counts = {"message": 0, "undecryptable": 0, "empty_or_skipped": 0}
        pages = 0
        while True:
            pages += 1
            if pages > 1_000_000:
                raise PeerError(EXIT_REFUSED, "MAM paging does not end")
            try:
                if start_fallback is not None:
                    results, fin = await self.xmpp.mam_page(max_=page_size, start=start_fallback, after=after)
                else:
                    results, fin = await self.xmpp.mam_page(after=after, max_=page_size)
            except StanzaError as e:
                if e.condition == "item-not-found" and after is not None and start_fallback is None \
                        and mam.get("last_stamp"):
                    # our position left the archive (retention): restart at its timestamp, keep ids > position
                    log.warning("position %s no longer in the archive; continuing from %s", after,
                                mam["last_stamp"])
                    start_fallback = mam["last_stamp"]
                    after = None
                    continue
                raise PeerError(EXIT_REFUSED, f"MAM query refused: {e}") from e
            complete = fin.get("complete") in ("true", "1")
            for m in results:
                res = m.find(q(NS_MAM, "result"))
                stanza_id = res.get("id", "")
                if not stanza_id:
                    deviation("MAM result without an id")
                    continue
                fetched += 1
                inner, stamp = self.unwrap_forwarded(res.find(q(NS_FORWARD, "forwarded")), f"MAM result {stanza_id}")
                if start_fallback is not None and mam.get("last_id") and \
                        id_key(stanza_id) <= id_key(mam["last_id"]):
                    continue
                if stanza_id in self.seen or inner is None:
                    self.mark_seen(stanza_id, stamp)
                    continue
                line = await self.process(stanza_id, inner, stamp)
                counts[line["type"] if line else "empty_or_skipped"] += 1
                self.print_line(line, quiet)
                self.mark_seen(stanza_id, stamp)
            self.save()
            if complete:
                break
            rset = fin.find(q(NS_RSM, "set"))
            last = rset.find(q(NS_RSM, "last")) if rset is not None else None
            if not results or last is None or not last.text:
                deviation("MAM page with complete='false' but no results or no <last>")
                break
            if results and last.text != results[-1].find(q(NS_MAM, "result")).get("id"):
                deviation(f"RSM <last>{last.text}</last> is not the id of the page's last result "
                          f"{results[-1].find(q(NS_MAM, 'result')).get('id')}")
            after = last.text
        return fetched, self.printed - printed0, counts

    async def finish_history_sync(self) -> None:
        if self.no_save:
            return
        try:
            await self.mgr.after_history_sync()     # deletes used prekeys, sends queued empty messages
        except omemo.MessageSendingFailed as e:
            raise PeerError(EXIT_CONNECTION, f"sending the queued empty messages failed: {e}") from e
        self.save()

    # --- live -------------------------------------------------------------------------------------------
    async def handle_live(self, el: ET.Element, quiet: bool = False) -> None:
        if el.tag == "disconnected":
            raise PeerError(EXIT_CONNECTION, f"disconnected from the server: {self.xmpp.disconnect_reason}")
        frm = el.get("from", "")
        fw = el.find(q(NS_FORWARD, "forwarded"))
        if fw is not None:
            if frm != self.xmpp.component:
                log.warning("ignoring a <forwarded> from %s", frm)
                return
            if el.get("type") != "headline":
                deviation(f"fan-out message of type '{el.get('type', 'normal')}', protocol.md says headline")
            sid_el = el.find(q(NS_SID, "stanza-id"))
            if sid_el is None or not sid_el.get("id"):
                deviation("fan-out headline without <stanza-id>")
                return
            if sid_el.get("by") != self.xmpp.component:
                deviation(f"fan-out stanza-id by='{sid_el.get('by')}', expected '{self.xmpp.component}'")
            stanza_id = sid_el.get("id")
            if stanza_id in self.seen:
                return                                   # duplicate (already seen live or in the archive)
            inner, stamp = self.unwrap_forwarded(fw, f"fan-out {stanza_id}")
            if inner is None:
                return
            line = await self.process(stanza_id, inner, stamp)
            self.print_line(line, quiet)
            self.mark_seen(stanza_id, stamp)
            self.save()
            return
        event = el.find(q(NS_PUBSUB_EVENT, "event"))
        if event is not None:
            owner = self.api.user_jid_of_node(frm)
            items = event.find(q(NS_PUBSUB_EVENT, "items"))
            if owner is None or items is None or items.get("node") != NODE_DEVICES:
                return
            for it in items.findall(q(NS_PUBSUB_EVENT, "item")):
                devs = it.find(q(NS_OMEMO, "devices"))
                if devs is None:
                    continue
                try:
                    dl = twomemo.etree.parse_device_list(devs)
                except Exception as e:
                    deviation(f"device list notification for {owner} rejected by twomemo's schema: {e}")
                    continue
                await self.mgr.update_device_list(NS_OMEMO, owner, dl)
                self.save()
            return
        low = el.find(q(NS_ARCHIVE, "prekeys-low"))
        if low is not None and frm == self.xmpp.component:
            try:
                dev, remaining = int(low.get("device", "")), int(low.get("remaining", ""))
            except ValueError:
                deviation(f"bad prekeys-low: {ET.tostring(low, encoding='unicode')}")
                return
            if dev == self.device_id:
                await self.refill_prekeys(remaining)

    async def refill_prekeys(self, remaining: int) -> None:
        """prekeys-low: add fresh prekeys so the component has 100 unclaimed ones again, republish."""
        backend = twomemo.Twomemo(self.storage)
        n = max(0, 100 - remaining)
        if n:
            await backend.generate_pre_keys(n)
            await self.api.upload_bundle(self.jid, await backend.get_bundle(self.jid, self.device_id))
            self.save()
            log.info("prekeys-low (%d left): published %d fresh prekeys", remaining, n)


def split_server(s: str) -> Tuple[str, int]:
    m = re.fullmatch(r"\[?([^\]]+?)\]?:(\d{1,5})", s)
    if not m or not 0 < int(m.group(2)) < 65536:
        raise PeerError(EXIT_USAGE, f"--server must be host:port, got '{s}'")
    return m.group(1), int(m.group(2))


# ---------------------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------------------

async def cmd_init(args: argparse.Namespace) -> int:
    path = Path(args.state)
    jid = args.jid
    if "@" not in jid or "/" in jid:
        raise PeerError(EXIT_USAGE, f"--jid must be a bare JID (user@domain), got '{jid}'")
    split_server(args.server)
    if args.insecure and args.ca_file:
        raise PeerError(EXIT_USAGE, "--insecure and --ca-file exclude each other")
    if args.ca_file and not Path(args.ca_file).is_file():
        raise PeerError(EXIT_USAGE, f"--ca-file {args.ca_file} does not exist")
    domain = bare(jid).partition("@")[2]
    st = StateFile(path)
    st.lock(args.timeout)
    try:
        if path.exists():
            raise PeerError(EXIT_USAGE, f"state file {path} already exists")
        st.data = {
            "kind": "twomemo-xmpp-peer", "version": STATE_VERSION,
            "jid": bare(jid), "password": args.password, "server": args.server,
            "component": args.component or f"archive.{domain}",
            "ca_file": str(Path(args.ca_file).resolve()) if args.ca_file else None,
            "insecure": bool(args.insecure),
            "resource": "twomemo-" + secrets.token_hex(4),
            "omemo": {}, "mam": {"last_id": None, "last_stamp": None}, "seen": [], "sent": {},
        }
        peer = Peer(st, args.timeout)
        created = False
        try:
            await peer.xmpp.connect()
            # the archive's current end: a new device's sync starts here (queried before the device exists)
            try:
                results, _fin = await peer.xmpp.mam_page(before="", max_=1)
            except StanzaError as e:
                raise PeerError(EXIT_REFUSED, f"MAM query for the archive's end refused: {e}") from e
            if results:
                res = results[-1].find(q(NS_MAM, "result"))
                _inner, stamp = peer.unwrap_forwarded(res.find(q(NS_FORWARD, "forwarded")), "MAM result")
                st.data["mam"] = {"last_id": res.get("id"), "last_stamp": stamp}
            await peer.prefill_identities(peer.jid)   # own other devices, without claiming their prekeys
            peer.mgr = await make_manager(peer.api, peer.jid, peer.storage)
            dev, _ = await peer.mgr.get_own_device_information()
            peer.device_id = dev.device_id
            st.data["device"] = dev.device_id
            created = True
            st.save()
            await peer.finish_history_sync()
            listed = await peer.api.download_device_list(peer.jid)
            if peer.device_id not in listed:
                deviation(f"after publishing bundle {peer.device_id} the device list is {sorted(listed)}: "
                          f"protocol.md says publishing a bundle adds the device to the list")
            emit({"type": "device", "jid": peer.jid, "device": peer.device_id,
                  "fingerprint": await peer.fingerprint(), "component": peer.xmpp.component})
        except BaseException:
            if not created:
                for f in (path, Path(str(path) + ".lock")):
                    try:
                        f.unlink()
                    except FileNotFoundError:
                        pass
            raise
        finally:
            await peer.close()
    finally:
        st.unlock()
    return 0


def open_state(args: argparse.Namespace) -> StateFile:
    st = StateFile(Path(args.state))
    if not st.path.exists():
        raise PeerError(EXIT_STATE, f"state file {st.path} does not exist (run init first)")
    st.lock(args.timeout)
    try:
        st.load()
    except BaseException:
        st.unlock()
        raise
    return st


async def cmd_info(args: argparse.Namespace) -> int:
    st = StateFile(Path(args.state))
    st.load()
    storage = JsonStorage(st.data["omemo"])
    from omemo.identity_key_pair import IdentityKeyPair
    ikp = await IdentityKeyPair.get(storage)
    emit({"type": "device", "jid": st.data["jid"], "device": st.data.get("device"),
          "fingerprint": " ".join(omemo.SessionManager.format_identity_key(ikp.identity_key)),
          "component": st.data["component"], "position": st.data.get("mam", {}).get("last_id")})
    return 0


async def cmd_send(args: argparse.Namespace) -> int:
    body = args.body
    if body is None:
        body = sys.stdin.read()
        if body.endswith("\n"):
            body = body[:-1]
    if body == "":
        raise PeerError(EXIT_USAGE, "empty message body")
    if args.repeat < 1:
        raise PeerError(EXIT_USAGE, "--repeat must be at least 1")
    st = open_state(args)
    try:
        peer = Peer(st, args.timeout)
        try:
            await peer.start()
            await peer.finish_history_sync()
            await peer.ensure_registered()
            for i in range(args.repeat):
                text = body if args.repeat == 1 else f"{body} #{i + 1}"
                emit(await peer.send(args.to, text))
        finally:
            await peer.close()
    finally:
        st.unlock()
    return 0


async def cmd_sync(args: argparse.Namespace) -> int:
    st = open_state(args)
    try:
        peer = Peer(st, args.timeout)
        try:
            await peer.start()
            await peer.ensure_registered()
            fetched, new, _counts = await peer.catch_up(args.page_size)
            await peer.finish_history_sync()
            emit({"type": "synced", "fetched": fetched, "new": new})
        finally:
            await peer.close()
    finally:
        st.unlock()
    return 0


async def cmd_listen(args: argparse.Namespace) -> int:
    st = open_state(args)
    loop = asyncio.get_running_loop()
    try:
        peer = Peer(st, args.timeout)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, peer.stop.set)
        try:
            t0 = time.monotonic()
            await peer.start()
            await peer.ensure_registered()
            peer.xmpp.send_raw("<presence/>")     # before the catch-up: nothing falls between MAM and live
            fetched, new, _ = await peer.catch_up(args.page_size)
            await peer.finish_history_sync()
            emit({"type": "synced", "fetched": fetched, "new": new})
            deadline = None if args.seconds is None else t0 + args.seconds
            while not peer.stop.is_set():
                if args.count is not None and peer.printed >= args.count:
                    break
                wait = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
                if wait <= 0:
                    if args.count is not None:
                        raise PeerError(EXIT_CONNECTION, f"timeout: {peer.printed} of {args.count} messages "
                                                         f"within {args.seconds}s")
                    break
                try:
                    el = await asyncio.wait_for(peer.xmpp.live.get(), wait)
                except asyncio.TimeoutError:
                    continue
                await peer.handle_live(el)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await peer.close()
    finally:
        st.unlock()
    return 0


async def cmd_bench(args: argparse.Namespace) -> int:
    st = open_state(args)
    try:
        peer = Peer(st, args.timeout, no_save=args.no_save)
        try:
            t0 = time.monotonic()
            await peer.start()
            t1 = time.monotonic()
            fetched, new, counts = await peer.catch_up(args.page_size, quiet=True)
            t2 = time.monotonic()
            await peer.finish_history_sync()
            secs = t2 - t1
            out = {"type": "bench", "client": "twomemo-xmpp-peer", "messages": fetched,
                   "decrypted": counts["message"], "undecryptable": counts["undecryptable"],
                   "empty_or_skipped": counts["empty_or_skipped"], "seconds": round(secs, 4),
                   "rate": round(fetched / secs, 1) if secs > 0 else None,
                   "connect_seconds": round(t1 - t0, 4), "page_size": args.page_size, "saved": not args.no_save}
            emit(out)
            if args.expect is not None and counts["message"] != args.expect:
                raise PeerError(EXIT_REFUSED, f"decrypted {counts['message']} messages, expected {args.expect} "
                                              f"({counts['undecryptable']} undecryptable)")
        finally:
            await peer.close()
    finally:
        st.unlock()
    return 0


# ---------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------

class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{PROG}: usage: {message} (see --help)\n")
        sys.exit(EXIT_USAGE)


def build_parser() -> Parser:
    p = Parser(prog="twomemo_xmpp_peer.py", description="OMEMO 2 peer on python3-twomemo for the Multiend "
                                                        "component (see the module docstring)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--state", required=True, help="the device's JSON state file")
        sp.add_argument("--timeout", type=float, default=20.0, help="seconds for each wait (default 20)")
        sp.add_argument("-v", "--verbose", action="count", default=0, help="diagnostics on stderr (-vv: debug)")

    sp = sub.add_parser("init", help="create the device and publish its bundle")
    common(sp)
    sp.add_argument("--jid", required=True)
    sp.add_argument("--password", required=True)
    sp.add_argument("--server", required=True, help="host:port of the XMPP server's c2s")
    sp.add_argument("--component", help="the archive component (default archive.<domain>)")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--insecure", action="store_true", help="plain TCP, no TLS (test servers only)")
    g.add_argument("--ca-file", help="PEM CA certificates to verify the server with")

    sp = sub.add_parser("send", help="encrypt for every device of the recipients and send via the component")
    common(sp)
    sp.add_argument("--to", action="append", required=True)
    sp.add_argument("--body", help="the text (default: stdin)")
    sp.add_argument("--repeat", type=int, default=1, help="send N messages (body 'TEXT #i')")

    sp = sub.add_parser("sync", help="catch up from the archive (MAM)")
    common(sp)
    sp.add_argument("--page-size", type=int, default=MAM_MAX_PAGE)

    sp = sub.add_parser("listen", help="catch up, then print fan-out messages as they arrive")
    common(sp)
    sp.add_argument("--seconds", type=float)
    sp.add_argument("--count", type=int)
    sp.add_argument("--page-size", type=int, default=MAM_MAX_PAGE)

    sp = sub.add_parser("bench-catchup", help="time a catch-up (MAM + decryption); prints messages/s")
    common(sp)
    sp.add_argument("--page-size", type=int, default=MAM_MAX_PAGE)
    sp.add_argument("--no-save", action="store_true", help="leave the state file as it was (repeatable)")
    sp.add_argument("--expect", type=int, help="fail unless exactly N messages were decrypted")

    sp = sub.add_parser("info", help="this device (no network)")
    common(sp)
    return p


COMMANDS = {"init": cmd_init, "send": cmd_send, "sync": cmd_sync, "listen": cmd_listen,
            "bench-catchup": cmd_bench, "info": cmd_info}


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verbose:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(h)
        root.setLevel(logging.DEBUG if args.verbose > 1 else logging.INFO)
        if args.verbose < 3:
            logging.getLogger("slixmpp").setLevel(logging.WARNING)
    if getattr(args, "page_size", MAM_MAX_PAGE) is not None and not 1 <= getattr(args, "page_size", 1) <= MAM_MAX_PAGE:
        sys.stderr.write(f"{PROG}: usage: --page-size must be 1..{MAM_MAX_PAGE}\n")
        return EXIT_USAGE
    if getattr(args, "count", None) is not None and args.count < 1:
        sys.stderr.write(f"{PROG}: usage: --count must be at least 1\n")
        return EXIT_USAGE
    try:
        return asyncio.run(COMMANDS[args.command](args))
    except PeerError as e:
        sys.stderr.write(f"{PROG}: {e}\n")
        return e.code
    except StanzaError as e:
        sys.stderr.write(f"{PROG}: refused: {e}\n")
        return EXIT_REFUSED
    except omemo.XMPPInteractionFailed as e:
        sys.stderr.write(f"{PROG}: {describe(e)}\n")
        return EXIT_REFUSED
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    except Exception as e:  # noqa: BLE001
        if args.verbose:
            import traceback
            traceback.print_exc()
        sys.stderr.write(f"{PROG}: internal error: {describe(e)}\n")
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
