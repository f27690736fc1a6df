"""A small XMPP test client for the Multiend integration tests (slixmpp 1.8, asyncio).

* ``TestbedEnv``: the testbed's MULTIEND_* variables (from ``deploy/testbed``'s env file or os.environ).
* ``Client``: one c2s connection (STARTTLS verified against the testbed CA, SCRAM), raw stanza sending,
  IQs awaited by id with timeouts, every incoming message kept in an inbox with wait-for-predicate.
* Stanza builders and parsers for docs/protocol.md: PubSub publish/retract/items/subscribe of the OMEMO 2
  nodes, prekey count and identity queries, archive messages (``<encrypted>`` + origin-id), MAM queries
  with RSM paged by hand (slixmpp's MAM iterator ignores ``complete``), our error elements
  (``missing-devices``).
* ``Device``: an OMEMO 2 device driven by python3-twomemo (tests/interop/twomemo_peer.py) on a Client, to
  publish real bundles and build real ``<encrypted>`` elements; ``synthetic_bundle`` for cheap ones.

Stanzas are written as XML strings and sent raw, so tests control every byte (bad input included);
incoming stanzas are handed out as ``Stanza`` wrappers around ElementTree elements.

Run with ``/usr/bin/python3`` (the interpreter that sees Debian's python3-slixmpp and python3-twomemo).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import random
import re
import shlex
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union
from xml.sax.saxutils import escape, quoteattr

if logging.getLogger("slixmpp").level == logging.NOTSET:
    # quiet by default (import-time stringprep warning, expected TLS/auth failures in negative tests)
    logging.getLogger("slixmpp").setLevel(logging.CRITICAL)
import slixmpp  # noqa: E402
from slixmpp.xmlstream.handler import Callback  # noqa: E402
from slixmpp.xmlstream.matcher.base import MatcherBase  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "interop"))

# --- namespaces -------------------------------------------------------------------------------------------
NS_CLIENT = "jabber:client"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_PUBSUB_EVENT = "http://jabber.org/protocol/pubsub#event"
NS_PUBSUB_ERRORS = "http://jabber.org/protocol/pubsub#errors"
NS_XDATA = "jabber:x:data"
NS_OMEMO = "urn:xmpp:omemo:2"
NODE_DEVICES = "urn:xmpp:omemo:2:devices"
NODE_BUNDLES = "urn:xmpp:omemo:2:bundles"
NS_ARCHIVE = "urn:multiend:archive:0"
NS_SID = "urn:xmpp:sid:0"
NS_RECEIPTS = "urn:xmpp:receipts"
NS_FORWARD = "urn:xmpp:forward:0"
NS_DELAY = "urn:xmpp:delay"
NS_MAM = "urn:xmpp:mam:2"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_ADDRESS = "http://jabber.org/protocol/address"
NS_HINTS = "urn:xmpp:hints"
NS_CARBONS = "urn:xmpp:carbons:2"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"

log = logging.getLogger("multiend.it")


def q(ns: str, name: str) -> str:
    """Clark notation: q(NS_MAM, 'fin') == '{urn:xmpp:mam:2}fin'."""
    return "{%s}%s" % (ns, name)


def new_id(prefix: str = "") -> str:
    return prefix + uuid.uuid4().hex[:16]


def random_device_id() -> int:
    return random.randint(1, 2 ** 31 - 1)


# ---------------------------------------------------------------------------------------------------------
# Testbed environment
# ---------------------------------------------------------------------------------------------------------

def parse_env_file(path: Union[str, Path]) -> Dict[str, str]:
    """KEY=VALUE lines of a shell-sourceable env file (values may be single/double quoted)."""
    out: Dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if key.startswith("export "):
            key = key[7:].strip()
        try:
            parts = shlex.split(value, comments=True)
            value = parts[0] if parts else ""
        except ValueError:
            pass
        out[key] = value
    return out


@dataclass
class TestbedEnv:
    host: str
    c2s_port: int
    component_port: int
    component_domain: str
    user_domain: str
    component_secret: str
    ca_file: str
    pg_url: str
    dir: str = ""
    raw: Dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, m: Dict[str, str]) -> "TestbedEnv":
        missing = [k for k in ("MULTIEND_C2S_PORT", "MULTIEND_CA_FILE") if not m.get(k)]
        if missing:
            raise RuntimeError(f"testbed environment lacks {', '.join(missing)} (is the testbed up?)")
        return cls(host=m.get("MULTIEND_XMPP_HOST", "127.0.0.1"),
                   c2s_port=int(m["MULTIEND_C2S_PORT"]),
                   component_port=int(m.get("MULTIEND_COMPONENT_PORT", "0")),
                   component_domain=m.get("MULTIEND_COMPONENT_DOMAIN", "archive.localhost"),
                   user_domain=m.get("MULTIEND_USER_DOMAIN", "localhost"),
                   component_secret=m.get("MULTIEND_COMPONENT_SECRET", ""),
                   ca_file=m["MULTIEND_CA_FILE"],
                   pg_url=m.get("MULTIEND_PG_URL", ""),
                   dir=m.get("MULTIEND_TESTBED_DIR", ""),
                   raw=dict(m))

    @classmethod
    def from_file(cls, path: Union[str, Path]) -> "TestbedEnv":
        return cls.from_mapping(parse_env_file(path))

    @classmethod
    def from_environ(cls) -> "TestbedEnv":
        d = os.environ.get("MULTIEND_TESTBED_DIR")
        if d and Path(d, "env").is_file() and not os.environ.get("MULTIEND_C2S_PORT"):
            return cls.from_file(Path(d, "env"))
        return cls.from_mapping(dict(os.environ))

    def jid(self, user: str, resource: Optional[str] = None) -> str:
        return f"{user}@{self.user_domain}" + (f"/{resource}" if resource else "")

    def node_jid(self, user: str) -> str:
        """The JID hosting ``user``'s OMEMO nodes: alice@archive.localhost."""
        return f"{user}@{self.component_domain}"


# ---------------------------------------------------------------------------------------------------------
# Stanzas and errors
# ---------------------------------------------------------------------------------------------------------

def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _ns(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


@dataclass
class StanzaError(Exception):
    """An XMPP stanza error (``<error type=…><condition/>…</error>``) plus our application elements."""
    type: str
    condition: str
    text: str = ""
    app: List[ET.Element] = field(default_factory=list)
    stanza: Optional["Stanza"] = None

    def __str__(self) -> str:
        extra = f" ({self.text})" if self.text else ""
        apps = "".join(f" +{_local(a.tag)}" for a in self.app)
        return f"{self.type}/{self.condition}{apps}{extra}"

    @property
    def missing_devices(self) -> List[Tuple[str, int]]:
        """``<missing-devices xmlns='urn:multiend:archive:0'><device jid=… id=…/>`` as (jid, id) pairs."""
        out: List[Tuple[str, int]] = []
        for a in self.app:
            if a.tag == q(NS_ARCHIVE, "missing-devices"):
                for d in a.findall(q(NS_ARCHIVE, "device")):
                    out.append((d.get("jid", ""), int(d.get("id", "-1"))))
        return out

    def has_app(self, ns: str, name: str) -> bool:
        return any(a.tag == q(ns, name) for a in self.app)

    def is_(self, type_: str, condition: str) -> bool:
        return self.type == type_ and self.condition == condition


def parse_error(el: ET.Element) -> Optional[StanzaError]:
    err = el.find(q(NS_CLIENT, "error"))
    if err is None:
        err = el.find("error")
    if err is None:
        return None
    cond, text, app = "", "", []
    for child in err:
        if _ns(child.tag) == NS_STANZAS:
            if _local(child.tag) == "text":
                text = child.text or ""
            elif not cond:
                cond = _local(child.tag)
        else:
            app.append(child)
    return StanzaError(err.get("type", ""), cond, text, app)


class Stanza:
    """A received stanza: an ElementTree element with a few accessors."""

    def __init__(self, el: ET.Element, received_at: Optional[float] = None) -> None:
        self.el = el
        self.received_at = received_at if received_at is not None else time.monotonic()

    name = property(lambda self: _local(self.el.tag))
    type = property(lambda self: self.el.get("type", "normal" if _local(self.el.tag) == "message" else ""))
    id = property(lambda self: self.el.get("id", ""))
    from_ = property(lambda self: self.el.get("from", ""))
    to = property(lambda self: self.el.get("to", ""))

    def find(self, *path: Tuple[str, str]) -> Optional[ET.Element]:
        """find((NS_MAM, 'fin'), (NS_RSM, 'set')) → nested child or None."""
        el: Optional[ET.Element] = self.el
        for ns, name in path:
            if el is None:
                return None
            el = el.find(q(ns, name))
        return el

    def child(self, ns: str, name: str) -> Optional[ET.Element]:
        return self.el.find(q(ns, name))

    @property
    def error(self) -> Optional[StanzaError]:
        if self.type != "error":
            return None
        e = parse_error(self.el) or StanzaError("", "undefined-condition", "error stanza without <error/>")
        e.stanza = self
        return e

    # --- component messages ---------------------------------------------------------------------------
    @property
    def receipt(self) -> Optional[Tuple[str, Optional[str]]]:
        """(receipt id, stanza-id) of a receipt headline, else None."""
        r = self.child(NS_RECEIPTS, "received")
        if r is None:
            return None
        sid = self.child(NS_SID, "stanza-id")
        return r.get("id", ""), (sid.get("id") if sid is not None else None)

    @property
    def stanza_id(self) -> Optional[str]:
        sid = self.child(NS_SID, "stanza-id")
        return sid.get("id") if sid is not None else None

    @property
    def forwarded(self) -> Optional[ET.Element]:
        """The inner ``<message>`` of a fan-out headline (``<forwarded>`` at top level)."""
        fw = self.child(NS_FORWARD, "forwarded")
        if fw is None:
            return None
        return fw.find(q(NS_CLIENT, "message"))

    @property
    def mam_result(self) -> Optional[ET.Element]:
        return self.child(NS_MAM, "result")

    @property
    def prekeys_low(self) -> Optional[Tuple[int, int]]:
        p = self.child(NS_ARCHIVE, "prekeys-low")
        if p is None:
            return None
        return int(p.get("device", "-1")), int(p.get("remaining", "-1"))

    @property
    def pubsub_event_items(self) -> Optional[ET.Element]:
        return self.find((NS_PUBSUB_EVENT, "event"), (NS_PUBSUB_EVENT, "items"))

    def xml(self) -> str:
        return ET.tostring(self.el, encoding="unicode")

    def __repr__(self) -> str:
        s = self.xml()
        return s if len(s) < 600 else s[:600] + "…"


def inner_origin_id(msg: ET.Element) -> Optional[str]:
    o = msg.find(q(NS_SID, "origin-id"))
    return o.get("id") if o is not None else None


def inner_encrypted(msg: ET.Element) -> Optional[str]:
    e = msg.find(q(NS_OMEMO, "encrypted"))
    return ET.tostring(e, encoding="unicode") if e is not None else None


class Disconnected(Exception):
    pass


class IqTimeout(asyncio.TimeoutError):
    pass


# ---------------------------------------------------------------------------------------------------------
# Stanza builders (strings; every one matches docs/protocol.md)
# ---------------------------------------------------------------------------------------------------------

def xdata_submit(form_type: Optional[str], fields: Dict[str, Union[str, Sequence[str]]]) -> str:
    out = ["<x xmlns='jabber:x:data' type='submit'>"]
    if form_type is not None:
        out.append(f"<field var='FORM_TYPE' type='hidden'><value>{escape(form_type)}</value></field>")
    for var, values in fields.items():
        if isinstance(values, str):
            values = [values]
        out.append(f"<field var={quoteattr(var)}>" + "".join(f"<value>{escape(v)}</value>" for v in values)
                   + "</field>")
    out.append("</x>")
    return "".join(out)


def publish_options(options: Optional[Dict[str, str]]) -> str:
    if not options:
        return ""
    return ("<publish-options>" + xdata_submit("http://jabber.org/protocol/pubsub#publish-options", options)
            + "</publish-options>")


BUNDLE_OPTIONS = {"pubsub#max_items": "max", "pubsub#access_model": "open"}
DEVICES_OPTIONS = {"pubsub#access_model": "open"}


def devices_xml(device_ids: Iterable[int]) -> str:
    return "<devices xmlns='urn:xmpp:omemo:2'>" + "".join(f"<device id='{int(d)}'/>" for d in device_ids) + \
        "</devices>"


def pubsub_iq(type_: str, to: str, inner: str, id_: Optional[str] = None) -> str:
    return (f"<iq type='{type_}' to={quoteattr(to)} id={quoteattr(id_ or new_id('ps'))}>"
            f"<pubsub xmlns='{NS_PUBSUB}'>{inner}</pubsub></iq>")


def archive_message(to: str, encrypted_xml: str, msg_id: str, origin_id: Optional[str],
                    addresses: Sequence[Tuple[str, str]] = (), type_: str = "normal",
                    store_hint: bool = True, extra: str = "") -> str:
    """The message of protocol.md section 2. ``addresses``: (type, jid) for XEP-0033."""
    parts = [f"<message to={quoteattr(to)} type={quoteattr(type_)} id={quoteattr(msg_id)}>", encrypted_xml]
    if origin_id is not None:
        parts.append(f"<origin-id xmlns='{NS_SID}' id={quoteattr(origin_id)}/>")
    if addresses:
        parts.append(f"<addresses xmlns='{NS_ADDRESS}'>" +
                     "".join(f"<address type={quoteattr(t)} jid={quoteattr(j)}/>" for t, j in addresses) +
                     "</addresses>")
    if store_hint:
        parts.append(f"<store xmlns='{NS_HINTS}'/>")
    parts.append(extra)
    parts.append("</message>")
    return "".join(parts)


def synthetic_encrypted(sid: int, keys: Dict[str, Iterable[int]], payload: bool = True,
                        kex_for: Iterable[Tuple[str, int]] = ()) -> str:
    """A structurally valid ``<encrypted>`` with random key and payload bytes (no real crypto): enough for
    the component, which routes by the header and never decrypts."""
    kex_for = set(kex_for)
    out = [f"<encrypted xmlns='{NS_OMEMO}'><header sid='{int(sid)}'>"]
    for jid, rids in keys.items():
        out.append(f"<keys jid={quoteattr(jid)}>")
        for rid in rids:
            kex = " kex='true'" if (jid, rid) in kex_for else ""
            data = base64.b64encode(os.urandom(182 if kex else 124)).decode()
            out.append(f"<key rid='{int(rid)}'{kex}>{data}</key>")
        out.append("</keys>")
    out.append("</header>")
    if payload:
        out.append(f"<payload>{base64.b64encode(os.urandom(64)).decode()}</payload>")
    out.append("</encrypted>")
    return "".join(out)


def synthetic_bundle(num_pre_keys: int = 100, first_pk_id: int = 1, spk_id: int = 1) -> str:
    """A bundle with valid key formats and a valid Ed25519 spk signature (PyNaCl), no private state kept."""
    from nacl.signing import SigningKey
    from nacl.public import PrivateKey
    ik = SigningKey.generate()
    spk = bytes(PrivateKey.generate().public_key)
    spks = ik.sign(spk).signature
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    pks = "".join(f"<pk id='{first_pk_id + i}'>{b64(bytes(PrivateKey.generate().public_key))}</pk>"
                  for i in range(num_pre_keys))
    return (f"<bundle xmlns='{NS_OMEMO}'><spk id='{spk_id}'>{b64(spk)}</spk><spks>{b64(spks)}</spks>"
            f"<ik>{b64(bytes(ik.verify_key))}</ik><prekeys>{pks}</prekeys></bundle>")


@dataclass
class BundleInfo:
    device_id: int
    ik: bytes
    spk_id: int
    pk_ids: List[int]
    xml: str


def parse_bundle(bundle: ET.Element, device_id: int) -> BundleInfo:
    ik = bundle.find(q(NS_OMEMO, "ik"))
    spk = bundle.find(q(NS_OMEMO, "spk"))
    pks = bundle.findall(f"{q(NS_OMEMO, 'prekeys')}/{q(NS_OMEMO, 'pk')}")
    return BundleInfo(device_id=device_id,
                      ik=base64.b64decode(ik.text or "") if ik is not None else b"",
                      spk_id=int(spk.get("id", "-1")) if spk is not None else -1,
                      pk_ids=[int(p.get("id", "-1")) for p in pks],
                      xml=ET.tostring(bundle, encoding="unicode"))


@dataclass
class MamMessage:
    result_id: str           # = stanza-id
    queryid: str
    message: ET.Element      # the forwarded <message>
    stamp: Optional[str]

    @property
    def origin_id(self) -> Optional[str]:
        return inner_origin_id(self.message)

    @property
    def msg_id(self) -> str:
        return self.message.get("id", "")

    @property
    def sender(self) -> str:
        return self.message.get("from", "")


@dataclass
class MamPage:
    messages: List[MamMessage]
    complete: bool
    first: Optional[str]
    first_index: Optional[int]
    last: Optional[str]
    count: Optional[int]
    fin: ET.Element

    @property
    def ids(self) -> List[str]:
        return [m.result_id for m in self.messages]


# ---------------------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------------------

class _MatchAll(MatcherBase):
    def __init__(self) -> None:
        super().__init__(None)

    def match(self, xml: Any) -> bool:
        return True


_TOP = {q(NS_CLIENT, "message"), q(NS_CLIENT, "iq"), q(NS_CLIENT, "presence")}


class Client:
    """One XMPP c2s session. ``await Client(env, 'alice', 'phone').connect()``."""

    def __init__(self, env: TestbedEnv, user: str, resource: Optional[str] = None,
                 password: Optional[str] = None, carbons: bool = True, priority: int = 0,
                 ca_file: Optional[str] = None) -> None:
        self.env = env
        self.user = user
        self.resource = resource or new_id("r")
        self.bare = env.jid(user)
        self.jid = env.jid(user, self.resource)
        self.node_jid = env.node_jid(user)
        self.component = env.component_domain
        self.password = password if password is not None else user + "pw"
        self.carbons = carbons
        self.priority = priority
        self.ca_file = ca_file or env.ca_file
        self.inbox: List[Stanza] = []
        self.history: List[Stanza] = []            # every message ever received (not consumed)
        self.presences: List[Stanza] = []
        self.connected = False
        self.disconnect_reason: Optional[str] = None
        self._iq_waiters: Dict[str, asyncio.Future] = {}
        self._mam_collect: Dict[str, List[Stanza]] = {}
        self._new_message = asyncio.Event()
        self._xmpp: Optional[slixmpp.ClientXMPP] = None
        self.tls_cert_pem: Optional[str] = None

    def __repr__(self) -> str:
        return f"<Client {self.jid}{'' if self.connected else ' (offline)'}>"

    # --- connection ---------------------------------------------------------------------------------------
    async def connect(self, timeout: float = 15.0) -> "Client":
        x = slixmpp.ClientXMPP(self.jid, self.password)
        self._xmpp = x
        x.ca_certs = Path(self.ca_file)
        x.whitespace_keepalive = False
        x.register_handler(Callback("multiend-it-all", _MatchAll(), self._on_stanza))
        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()

        def finish(exc: Optional[BaseException]) -> None:
            if not done.done():
                if exc is None:
                    done.set_result(True)
                else:
                    done.set_exception(exc)

        x.add_event_handler("session_start", lambda _e: finish(None))
        x.add_event_handler("failed_all_auth", lambda _e: finish(Disconnected(f"{self.jid}: authentication failed")))
        x.add_event_handler("ssl_invalid_chain",
                            lambda e: finish(Disconnected(f"{self.jid}: TLS certificate rejected: {e}")))
        x.add_event_handler("ssl_cert", self._on_cert)
        x.add_event_handler("connection_failed",
                            lambda e: finish(Disconnected(f"{self.jid}: connection failed: {e}")))
        x.add_event_handler("stream_error", lambda e: self._on_stream_error(e))
        x.add_event_handler("disconnected", self._on_disconnected)
        x.add_event_handler("disconnected",
                            lambda e: finish(Disconnected(f"{self.jid}: disconnected during login: {e}")))
        x.connect(address=(self.env.host, self.env.c2s_port), force_starttls=True)
        try:
            await asyncio.wait_for(done, timeout)
        except BaseException:
            await self._abort()
            raise
        if not x.is_connected() or x.transport is None or x.transport.get_extra_info("ssl_object") is None:
            await self._abort()
            raise Disconnected(f"{self.jid}: session started without TLS")
        self.connected = True
        self.disconnect_reason = None
        self.send_raw(f"<presence><priority>{self.priority}</priority></presence>")
        if self.carbons:
            await self.iq_ok(f"<iq type='set' id='{new_id('cb')}'><enable xmlns='{NS_CARBONS}'/></iq>")
        else:
            await self.iq_ok(f"<iq type='get' id='{new_id('pg')}'><ping xmlns='urn:xmpp:ping'/></iq>")
        return self

    def _on_cert(self, pem: str) -> None:
        self.tls_cert_pem = pem

    def _on_stream_error(self, e: Any) -> None:
        self.disconnect_reason = f"stream error: {e}"

    def _on_disconnected(self, reason: Any) -> None:
        was = self.connected
        self.connected = False
        if self.disconnect_reason is None:
            self.disconnect_reason = str(reason) if reason else "disconnected"
        for fut in self._iq_waiters.values():
            if not fut.done():
                fut.set_exception(Disconnected(f"{self.jid}: {self.disconnect_reason}"))
        self._iq_waiters.clear()
        self._new_message.set()
        if was:
            log.debug("%s disconnected: %s", self.jid, self.disconnect_reason)

    async def _abort(self) -> None:
        x = self._xmpp
        if x is None:
            return
        x.cancel_connection_attempt()
        try:
            x.abort()
        except Exception:
            pass
        self.connected = False
        # slixmpp 1.8 leaves its send-queue task pending forever; cancel it so it is not destroyed pending
        task = getattr(x, "_run_out_filters", None)
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except BaseException:
                pass

    async def close(self, timeout: float = 2.0) -> None:
        x = self._xmpp
        if x is None:
            return
        if self.connected and x.transport is not None:
            try:
                await asyncio.wait_for(x.disconnect(wait=timeout), timeout + 1)
            except Exception:
                pass
        await self._abort()

    async def __aenter__(self) -> "Client":
        if not self.connected:
            await self.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # --- raw I/O ------------------------------------------------------------------------------------------
    def send_raw(self, data: str) -> None:
        if self._xmpp is None or self._xmpp.transport is None:
            raise Disconnected(f"{self.jid}: not connected ({self.disconnect_reason})")
        self._xmpp.send_raw(data)

    def _on_stanza(self, stanza: Any) -> None:
        el = stanza.xml
        if el.tag not in _TOP:
            return
        s = Stanza(el)
        name = s.name
        if name == "iq":
            if s.type in ("result", "error"):
                fut = self._iq_waiters.pop(s.id, None)
                if fut is not None and not fut.done():
                    fut.set_result(s)
            elif s.type == "get" and s.el.find("{urn:xmpp:ping}ping") is not None:
                self.send_raw(f"<iq type='result' id={quoteattr(s.id)} to={quoteattr(s.from_)}/>")
            elif s.type in ("get", "set"):
                # nothing else here serves requests: answer like a client without the feature
                self.send_raw(f"<iq type='error' id={quoteattr(s.id)} to={quoteattr(s.from_)}>"
                              f"<error type='cancel'><service-unavailable xmlns='{NS_STANZAS}'/></error></iq>")
            return
        if name == "presence":
            self.presences.append(s)
            return
        res = s.mam_result
        if res is not None and res.get("queryid") in self._mam_collect:
            self._mam_collect[res.get("queryid")].append(s)
            return
        self.history.append(s)
        self.inbox.append(s)
        self._new_message.set()

    # --- IQs ----------------------------------------------------------------------------------------------
    async def iq(self, xml: str, timeout: float = 10.0) -> Stanza:
        """Sends an IQ (string with an ``id``) and returns the result or error stanza."""
        m = re.search(r"""\bid=(['"])(.*?)\1""", xml[:xml.index(">")] if ">" in xml else xml)
        if not m:
            raise ValueError("iq without id")
        iq_id = m.group(2)
        fut = asyncio.get_running_loop().create_future()
        self._iq_waiters[iq_id] = fut
        try:
            self.send_raw(xml)
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise IqTimeout(f"{self.jid}: no answer to iq {iq_id} within {timeout}s: {xml[:300]}") from None
        finally:
            self._iq_waiters.pop(iq_id, None)

    async def iq_ok(self, xml: str, timeout: float = 10.0) -> Stanza:
        """Like ``iq`` but raises StanzaError on an error answer."""
        r = await self.iq(xml, timeout)
        if r.type == "error":
            raise r.error
        return r

    async def iq_error(self, xml: str, timeout: float = 10.0) -> StanzaError:
        """Sends an IQ that must fail; returns the error (AssertionError on a result)."""
        r = await self.iq(xml, timeout)
        if r.type != "error":
            raise AssertionError(f"expected an error, got a result: {r!r}")
        return r.error

    # --- messages -----------------------------------------------------------------------------------------
    async def wait_message(self, pred: Callable[[Stanza], bool], timeout: float = 10.0,
                           consume: bool = True, what: str = "") -> Stanza:
        """The first inbox message matching ``pred`` (already received or arriving within ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, s in enumerate(self.inbox):
                try:
                    ok = pred(s)
                except Exception:
                    ok = False
                if ok:
                    if consume:
                        del self.inbox[i]
                    return s
            if not self.connected:
                raise Disconnected(f"{self.jid}: disconnected while waiting for {what or 'a message'}"
                                   f" ({self.disconnect_reason})")
            left = deadline - time.monotonic()
            if left <= 0:
                raise asyncio.TimeoutError(f"{self.jid}: no {what or 'matching message'} within {timeout}s"
                                           f" (inbox: {len(self.inbox)} other messages)")
            self._new_message.clear()
            try:
                await asyncio.wait_for(self._new_message.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def collect(self, pred: Callable[[Stanza], bool], duration: float) -> List[Stanza]:
        """Waits ``duration`` seconds, then removes and returns every inbox message matching ``pred``."""
        await asyncio.sleep(duration)
        return self.take(pred)

    def take(self, pred: Callable[[Stanza], bool]) -> List[Stanza]:
        out, keep = [], []
        for s in self.inbox:
            try:
                ok = pred(s)
            except Exception:
                ok = False
            (out if ok else keep).append(s)
        self.inbox[:] = keep
        return out

    def drain(self) -> List[Stanza]:
        out = list(self.inbox)
        self.inbox.clear()
        return out

    # --- PubSub (protocol.md section 1) -------------------------------------------------------------------
    def _owner_node_jid(self, owner: Optional[str]) -> str:
        """``owner``: None (self), a user name, a user bare JID or a node JID (user@component)."""
        if owner is None:
            return self.node_jid
        if "@" not in owner:
            return self.env.node_jid(owner)
        local, _, domain = owner.partition("@")
        if domain == self.env.user_domain:
            return self.env.node_jid(local)
        return owner

    async def publish_bundle(self, device_id: Union[int, str], bundle_xml: str, owner: Optional[str] = None,
                             options: Optional[Dict[str, str]] = BUNDLE_OPTIONS) -> Stanza:
        inner = (f"<publish node='{NODE_BUNDLES}'><item id={quoteattr(str(device_id))}>{bundle_xml}</item>"
                 f"</publish>{publish_options(options)}")
        return await self.iq(pubsub_iq("set", self._owner_node_jid(owner), inner))

    async def publish_device_list(self, device_ids: Iterable[int], owner: Optional[str] = None,
                                  options: Optional[Dict[str, str]] = DEVICES_OPTIONS) -> Stanza:
        inner = (f"<publish node='{NODE_DEVICES}'><item id='current'>{devices_xml(device_ids)}</item>"
                 f"</publish>{publish_options(options)}")
        return await self.iq(pubsub_iq("set", self._owner_node_jid(owner), inner))

    async def retract_bundle(self, device_id: Union[int, str], owner: Optional[str] = None) -> Stanza:
        inner = f"<retract node='{NODE_BUNDLES}'><item id={quoteattr(str(device_id))}/></retract>"
        return await self.iq(pubsub_iq("set", self._owner_node_jid(owner), inner))

    async def items(self, owner: str, node: str, item_ids: Sequence[str] = ()) -> Stanza:
        inner = f"<items node={quoteattr(node)}>" + "".join(f"<item id={quoteattr(str(i))}/>" for i in item_ids) \
            + "</items>"
        return await self.iq(pubsub_iq("get", self._owner_node_jid(owner), inner))

    async def fetch_device_list(self, owner: str) -> List[int]:
        r = await self.items(owner, NODE_DEVICES)
        if r.type == "error":
            raise r.error
        item = r.find((NS_PUBSUB, "pubsub"), (NS_PUBSUB, "items"), (NS_PUBSUB, "item"))
        if item is None:
            raise AssertionError(f"device list result without item: {r!r}")
        devs = item.find(q(NS_OMEMO, "devices"))
        if devs is None:
            raise AssertionError(f"device list item without <devices>: {r!r}")
        return [int(d.get("id", "-1")) for d in devs.findall(q(NS_OMEMO, "device"))]

    async def fetch_bundle(self, owner: str, device_id: int) -> BundleInfo:
        r = await self.items(owner, NODE_BUNDLES, [str(device_id)])
        if r.type == "error":
            raise r.error
        items = r.find((NS_PUBSUB, "pubsub"), (NS_PUBSUB, "items"))
        got = [] if items is None else items.findall(q(NS_PUBSUB, "item"))
        if len(got) != 1 or got[0].get("id") != str(device_id):
            raise AssertionError(f"expected one item id {device_id}: {r!r}")
        b = got[0].find(q(NS_OMEMO, "bundle"))
        if b is None:
            raise AssertionError(f"item without <bundle>: {r!r}")
        return parse_bundle(b, device_id)

    async def fetch_bundles(self, owner: str) -> Dict[int, BundleInfo]:
        r = await self.items(owner, NODE_BUNDLES)
        if r.type == "error":
            raise r.error
        items = r.find((NS_PUBSUB, "pubsub"), (NS_PUBSUB, "items"))
        out: Dict[int, BundleInfo] = {}
        for it in ([] if items is None else items.findall(q(NS_PUBSUB, "item"))):
            b = it.find(q(NS_OMEMO, "bundle"))
            if b is not None:
                out[int(it.get("id", "-1"))] = parse_bundle(b, int(it.get("id", "-1")))
        return out

    async def subscribe(self, owner: str, node: str = NODE_DEVICES) -> Stanza:
        inner = f"<subscribe node={quoteattr(node)} jid={quoteattr(self.bare)}/>"
        return await self.iq(pubsub_iq("set", self._owner_node_jid(owner), inner))

    async def prekey_counts(self, owner: Optional[str] = None) -> Dict[int, Tuple[int, int]]:
        """{device id: (remaining, total)} from the prekey count query."""
        r = await self.iq_ok(f"<iq type='get' to={quoteattr(self._owner_node_jid(owner))} id='{new_id('pk')}'>"
                             f"<prekeys xmlns='{NS_ARCHIVE}'/></iq>")
        el = r.child(NS_ARCHIVE, "prekeys")
        if el is None:
            raise AssertionError(f"no <prekeys> in {r!r}")
        return {int(d.get("id", "-1")): (int(d.get("remaining", "-1")), int(d.get("total", "-1")))
                for d in el.findall(q(NS_ARCHIVE, "device"))}

    async def identity(self, owner: str, device_id: Optional[int] = None) -> Dict[int, bytes]:
        attr = f" device='{int(device_id)}'" if device_id is not None else ""
        r = await self.iq_ok(f"<iq type='get' to={quoteattr(self._owner_node_jid(owner))} id='{new_id('ik')}'>"
                             f"<identity xmlns='{NS_ARCHIVE}'{attr}/></iq>")
        el = r.child(NS_ARCHIVE, "identity")
        if el is None:
            raise AssertionError(f"no <identity> in {r!r}")
        return {int(d.get("id", "-1")): base64.b64decode(d.get("ik", ""))
                for d in el.findall(q(NS_ARCHIVE, "device"))}

    async def disco_info(self, to: str, node: Optional[str] = None) -> Tuple[List[Tuple[str, str]], List[str]]:
        """(identities as (category, type), features)."""
        n = f" node={quoteattr(node)}" if node else ""
        r = await self.iq_ok(f"<iq type='get' to={quoteattr(to)} id='{new_id('di')}'>"
                             f"<query xmlns='{NS_DISCO_INFO}'{n}/></iq>")
        qel = r.child(NS_DISCO_INFO, "query")
        if qel is None:
            raise AssertionError(f"no disco#info query in {r!r}")
        ids = [(i.get("category", ""), i.get("type", "")) for i in qel.findall(q(NS_DISCO_INFO, "identity"))]
        feats = [f.get("var", "") for f in qel.findall(q(NS_DISCO_INFO, "feature"))]
        return ids, feats

    # --- archive messages (protocol.md section 2) ---------------------------------------------------------
    def send_archive_message(self, encrypted_xml: str, msg_id: Optional[str] = None,
                             origin_id: Optional[str] = "", addresses: Sequence[Tuple[str, str]] = (),
                             type_: str = "normal", to: Optional[str] = None, extra: str = "") -> Tuple[str, Optional[str]]:
        """Sends one archive message; returns (message id, origin-id). ``origin_id=""`` makes a fresh one,
        ``None`` leaves it out."""
        msg_id = msg_id or new_id("m")
        if origin_id == "":
            origin_id = uuid.uuid4().hex
        self.send_raw(archive_message(to or self.component, encrypted_xml, msg_id, origin_id, addresses, type_,
                                      extra=extra))
        return msg_id, origin_id

    def is_receipt_for(self, msg_id: str) -> Callable[[Stanza], bool]:
        return lambda s: (s.name == "message" and s.from_ == self.component and s.receipt is not None
                          and s.receipt[0] == msg_id)

    def is_error_for(self, msg_id: str) -> Callable[[Stanza], bool]:
        return lambda s: s.name == "message" and s.type == "error" and s.id == msg_id

    async def wait_receipt(self, msg_id: str, timeout: float = 10.0) -> str:
        """The stanza-id of the receipt for ``msg_id``; raises StanzaError if the message bounced."""
        s = await self.wait_message(lambda s: self.is_receipt_for(msg_id)(s) or self.is_error_for(msg_id)(s),
                                    timeout, what=f"receipt for {msg_id}")
        if s.type == "error":
            raise s.error
        sid = s.receipt[1]
        if not sid:
            raise AssertionError(f"receipt without stanza-id: {s!r}")
        return sid

    async def wait_outcome(self, msg_id: str, timeout: float = 10.0) -> Union[str, StanzaError]:
        """stanza-id on a receipt, the StanzaError on a bounce."""
        try:
            return await self.wait_receipt(msg_id, timeout)
        except StanzaError as e:
            return e

    async def send_and_wait(self, encrypted_xml: str, timeout: float = 10.0, **kw: Any) -> Tuple[str, str, str]:
        """Sends and waits for the receipt: (message id, origin-id, stanza-id)."""
        msg_id, origin_id = self.send_archive_message(encrypted_xml, **kw)
        sid = await self.wait_receipt(msg_id, timeout)
        return msg_id, origin_id, sid

    def is_fanout(self, stanza_id: Optional[str] = None, origin_id: Optional[str] = None
                  ) -> Callable[[Stanza], bool]:
        def pred(s: Stanza) -> bool:
            if s.name != "message" or s.from_ != self.component or s.forwarded is None:
                return False
            if stanza_id is not None and s.stanza_id != stanza_id:
                return False
            if origin_id is not None and inner_origin_id(s.forwarded) != origin_id:
                return False
            return True
        return pred

    # --- MAM (protocol.md section 3), paged by hand -------------------------------------------------------
    def mam_query_xml(self, queryid: str, with_: Optional[str] = None, start: Optional[str] = None,
                      end: Optional[str] = None, after_id: Optional[str] = None, before_id: Optional[str] = None,
                      ids: Sequence[str] = (), max_: Optional[Union[int, str]] = None,
                      after: Optional[str] = None, before: Optional[str] = None, to: Optional[str] = None,
                      form_extra: Optional[Dict[str, str]] = None, raw_rsm: Optional[str] = None,
                      iq_id: Optional[str] = None) -> str:
        fields: Dict[str, Union[str, Sequence[str]]] = {}
        for k, v in (("with", with_), ("start", start), ("end", end), ("after-id", after_id),
                     ("before-id", before_id)):
            if v is not None:
                fields[k] = v
        if ids:
            fields["ids"] = list(ids)
        fields.update(form_extra or {})
        form = xdata_submit(NS_MAM, fields) if fields else ""
        if raw_rsm is not None:
            rsm = raw_rsm
        else:
            rsm_parts = []
            if max_ is not None:
                rsm_parts.append(f"<max>{escape(str(max_))}</max>")
            if after is not None:
                rsm_parts.append(f"<after>{escape(after)}</after>")
            if before is not None:
                rsm_parts.append(f"<before>{escape(before)}</before>" if before else "<before/>")
            rsm = f"<set xmlns='{NS_RSM}'>{''.join(rsm_parts)}</set>" if rsm_parts else ""
        return (f"<iq type='set' to={quoteattr(to or self.component)} id={quoteattr(iq_id or new_id('mam'))}>"
                f"<query xmlns='{NS_MAM}' queryid={quoteattr(queryid)}>{form}{rsm}</query></iq>")

    async def mam_query(self, timeout: float = 15.0, **kw: Any) -> MamPage:
        """One MAM page. Raises StanzaError on an error answer."""
        page, err = await self.mam_query_raw(timeout=timeout, **kw)
        if err is not None:
            raise err
        return page

    async def mam_query_raw(self, timeout: float = 15.0, **kw: Any) -> Tuple[Optional[MamPage], Optional[StanzaError]]:
        queryid = new_id("q")
        self._mam_collect[queryid] = []
        try:
            r = await self.iq(self.mam_query_xml(queryid, **kw), timeout)
            msgs = self._mam_collect.get(queryid, [])
        finally:
            self._mam_collect.pop(queryid, None)
        if r.type == "error":
            return None, r.error
        fin = r.child(NS_MAM, "fin")
        if fin is None:
            raise AssertionError(f"MAM result without <fin>: {r!r}")
        out: List[MamMessage] = []
        for s in msgs:
            res = s.mam_result
            fw = res.find(q(NS_FORWARD, "forwarded"))
            if fw is None:
                raise AssertionError(f"MAM result without <forwarded>: {s!r}")
            inner = fw.find(q(NS_CLIENT, "message"))
            if inner is None:
                raise AssertionError(f"MAM <forwarded> without a jabber:client <message>: {s!r}")
            delay = fw.find(q(NS_DELAY, "delay"))
            out.append(MamMessage(res.get("id", ""), queryid, inner,
                                  delay.get("stamp") if delay is not None else None))
        rset = fin.find(q(NS_RSM, "set"))
        first = last = None
        first_index = count = None
        if rset is not None:
            f = rset.find(q(NS_RSM, "first"))
            if f is not None:
                first = f.text
                if f.get("index") is not None:
                    first_index = int(f.get("index"))
            la = rset.find(q(NS_RSM, "last"))
            if la is not None:
                last = la.text
            c = rset.find(q(NS_RSM, "count"))
            if c is not None and c.text is not None:
                count = int(c.text)
        complete = fin.get("complete", "false") in ("true", "1")
        return MamPage(out, complete, first, first_index, last, count, fin), None

    async def mam_all(self, max_: int = 50, max_pages: int = 100, **kw: Any) -> Tuple[List[MamMessage], List[MamPage]]:
        """Pages forward with RSM ``after`` until ``complete='true'``; (all messages, the pages)."""
        pages: List[MamPage] = []
        out: List[MamMessage] = []
        after: Optional[str] = kw.pop("after", None)
        for _ in range(max_pages):
            page = await self.mam_query(max_=max_, after=after, **kw)
            pages.append(page)
            out.extend(page.messages)
            if page.complete:
                return out, pages
            if not page.messages or page.last is None:
                raise AssertionError(f"MAM page {len(pages)} is empty or has no <last> but complete is false")
            after = page.last
        raise AssertionError(f"MAM paging did not reach complete='true' within {max_pages} pages")


# ---------------------------------------------------------------------------------------------------------
# OMEMO 2 devices (python3-twomemo) on a client
# ---------------------------------------------------------------------------------------------------------

class Device:
    """One twomemo device using ``client`` for the network: publishes its bundle, fetches recipients'
    bundles through the component (which claims a prekey for ``client.jid``), builds real ``<encrypted>``."""

    def __init__(self, client: Client, device_id: int, peer: Any) -> None:
        self.client = client
        self.device_id = device_id
        self.peer = peer
        self.bundle_info: Optional[BundleInfo] = None

    @classmethod
    async def create(cls, client: Client, device_id: Optional[int] = None, num_pre_keys: int = 100) -> "Device":
        from twomemo_peer import TwomemoPeer
        did = device_id or random_device_id()
        peer = await TwomemoPeer.create(client.bare, did, num_pre_keys=num_pre_keys, refill=False)
        return cls(client, did, peer)

    @property
    def jid(self) -> str:
        return self.client.bare

    async def bundle_xml(self) -> str:
        return await self.peer.bundle_xml()

    async def publish(self) -> None:
        r = await self.client.publish_bundle(self.device_id, await self.bundle_xml())
        if r.type == "error":
            raise r.error

    async def encrypt(self, plaintext: Optional[bytes], recipients: Iterable[Tuple[str, int]],
                      via: Optional[Client] = None) -> str:
        """``<encrypted>`` for (bare jid, device id) pairs; bundles of devices without a session are
        fetched from the component first. ``plaintext`` None = empty OMEMO message."""
        c = via or self.client
        recips = []
        for jid, did in recipients:
            bxml = None
            if await self.peer.session(jid, did) is None:
                bxml = (await c.fetch_bundle(jid, did)).xml
            recips.append((jid, did, bxml))
        return await self.peer.encrypt(plaintext, recips)

    async def decrypt(self, encrypted_xml: str, sender_bare: str) -> Optional[bytes]:
        return (await self.peer.decrypt(encrypted_xml, sender_bare)).plaintext


async def connect_all(clients: Iterable[Client], timeout: float = 15.0) -> List[Client]:
    cl = list(clients)
    await asyncio.gather(*(c.connect(timeout) for c in cl))
    return cl


async def close_all(clients: Iterable[Client]) -> None:
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
