"""Helpers for the OMEMO 2 interop tests.

* ``TwomemoPeer``: one OMEMO 2 device driven through python-twomemo 1.0.3 at the *backend* level
  (``twomemo.Twomemo(storage)``; no SessionManager, no device lists, no trust), see
  /work/shared/reference/omemo2.md section 6.2.
* ``CppDevice``: one ``omemo_interop_tool`` process spoken to over its JSON-lines protocol.
* ``classify_error``: maps a twomemo exception to the lower_snake error names used by the C++ tool.
* Small protobuf / XML helpers for inspecting and tampering with ``<encrypted>`` elements.

Run with Debian's interpreter: ``/usr/bin/python3`` (the one that sees python3-twomemo).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import queue
import shlex
import subprocess
import threading
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple

import omemo
import omemo.session
import twomemo
import twomemo.etree
import twomemo.twomemo
from twomemo.twomemo import KeyExchangeImpl

NAMESPACE = twomemo.twomemo.NAMESPACE          # "urn:xmpp:omemo:2" (not exported at top level in 1.0.3)
NS = "{%s}" % NAMESPACE


# ---------------------------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------------------------

class InMemoryStorage(omemo.Storage):
    """python-omemo storage in a dict of JSON-like values (one storage per device)."""

    def __init__(self, data: Optional[Dict[str, Any]] = None) -> None:
        super().__init__()                     # required: sets up the cache
        self.data: Dict[str, Any] = copy.deepcopy(data) if data else {}

    async def _load(self, key: str) -> omemo.Maybe:
        return omemo.Just(self.data[key]) if key in self.data else omemo.Nothing()

    async def _store(self, key: str, value: Any) -> None:
        self.data[key] = value

    async def _delete(self, key: str) -> None:
        self.data.pop(key, None)


# ---------------------------------------------------------------------------------------------------------
# Errors raised by TwomemoPeer itself (the backend level has no such checks; SessionManager would)
# ---------------------------------------------------------------------------------------------------------

class PeerError(Exception):
    """Base for errors detected by TwomemoPeer rather than by twomemo."""


class NotForThisDevice(PeerError):
    pass


class NoSession(PeerError):
    pass


class IdentityMismatch(PeerError):
    """The ik in a key exchange differs from the ik in the sender's bundle we know."""


def _cause_chain(exc: BaseException) -> List[BaseException]:
    out: List[BaseException] = []
    seen = set()
    e: Optional[BaseException] = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        out.append(e)
        e = e.__cause__ or (None if e.__suppress_context__ else e.__context__)
    return out


def classify_error(exc: BaseException) -> str:
    """Map an exception from TwomemoPeer.decrypt / twomemo to the C++ tool's error names."""
    chain = _cause_chain(exc)
    names = [type(e).__name__ for e in chain]
    texts = " | ".join(str(e) for e in chain)
    if isinstance(exc, NotForThisDevice):
        return "not_for_this_device"
    if isinstance(exc, NoSession):
        return "no_session"
    if isinstance(exc, IdentityMismatch):
        return "identity_mismatch"
    if "DuplicateMessageException" in names:
        return "duplicate_message"
    if "DoSProtectionException" in names:
        return "too_many_skipped"
    if "AuthenticationFailedException" in names or "Authentication tag verification failed" in texts:
        return "mac_mismatch"
    if "No signed pre key with id" in texts:
        return "unknown_signed_prekey"
    if "No pre key with id" in texts:
        return "unknown_prekey"
    if "DecodeError" in names or "EncodeError" in names:
        return "bad_protobuf"
    if any(isinstance(e, binascii.Error) for e in chain):
        return "bad_base64"
    if any(isinstance(e, ET.ParseError) for e in chain) or any("XMLSchema" in n for n in names):
        return "bad_element"
    if any("padding" in str(e).lower() for e in chain):
        return "bad_padding"
    if any(isinstance(e, omemo.KeyExchangeFailed) for e in chain) or "XEdDSAException" in names:
        return "bad_key"
    if any(isinstance(e, (KeyError, ValueError, TypeError)) for e in chain):
        return "bad_element"
    return "decryption_failed"


def describe_error(exc: BaseException) -> str:
    return " <- ".join(f"{type(e).__name__}({e})" if str(e) else type(e).__name__ for e in _cause_chain(exc))


# ---------------------------------------------------------------------------------------------------------
# XML helpers
# ---------------------------------------------------------------------------------------------------------

def to_xml(elem: ET.Element, prefixed: bool = False) -> str:
    """Serialise an element of the OMEMO namespace.

    By default the namespace is written as the default namespace (``<encrypted xmlns='urn:xmpp:omemo:2'>``),
    as XMPP libraries do. ``prefixed=True`` gives plain ElementTree output (``<ns0:encrypted xmlns:ns0=…>``),
    which is what naive twomemo glue code produces.
    """
    out = ET.tostring(elem, encoding="unicode")
    if prefixed:
        return out
    # ElementTree's default_namespace option refuses unqualified attributes, so rewrite the prefix instead
    # (every element here is in the OMEMO namespace and base64 text contains no '<').
    prefix = out[1:out.index(":")]
    if not prefix.startswith("ns"):
        return out
    return (out.replace(f"<{prefix}:", "<").replace(f"</{prefix}:", "</")
               .replace(f"xmlns:{prefix}=", "xmlns=", 1))


@dataclass
class KeyElem:
    jid: str
    rid: int
    kex_attr: Optional[str]        # raw attribute value, None when absent
    data: bytes                    # base64-decoded text

    @property
    def is_kex(self) -> bool:      # xs:boolean semantics
        return self.kex_attr is not None and self.kex_attr.strip() in ("true", "1")


def parse_encrypted(xml: str) -> Tuple[int, Dict[Tuple[str, int], KeyElem], Optional[bytes]]:
    """(sid, {(jid, rid): KeyElem}, payload bytes or None) of an <encrypted> element string."""
    root = ET.fromstring(xml)
    if root.tag != f"{NS}encrypted":
        raise ValueError(f"root element is {root.tag}, expected {NS}encrypted")
    header = root.find(f"{NS}header")
    if header is None:
        raise ValueError("no <header>")
    sid = int(header.get("sid", "-1"))
    keys: Dict[Tuple[str, int], KeyElem] = {}
    for keys_elt in header.findall(f"{NS}keys"):
        jid = keys_elt.get("jid", "")
        for key_elt in keys_elt.findall(f"{NS}key"):
            rid = int(key_elt.get("rid", "-1"))
            keys[(jid, rid)] = KeyElem(jid, rid, key_elt.get("kex"), base64.b64decode(key_elt.text or ""))
    payload_elt = root.find(f"{NS}payload")
    payload = None if payload_elt is None else base64.b64decode(payload_elt.text or "")
    return sid, keys, payload


def replace_key(xml: str, jid: str, rid: int, new_data: bytes) -> str:
    root = ET.fromstring(xml)
    for keys_elt in root.iter(f"{NS}keys"):
        if keys_elt.get("jid") != jid:
            continue
        for key_elt in keys_elt.findall(f"{NS}key"):
            if int(key_elt.get("rid", "-1")) == rid:
                key_elt.text = base64.b64encode(new_data).decode("ascii")
                return to_xml(root)
    raise KeyError(f"no <key> for {jid}/{rid}")


def replace_payload(xml: str, new_payload: bytes) -> str:
    root = ET.fromstring(xml)
    payload_elt = root.find(f"{NS}payload")
    if payload_elt is None:
        raise KeyError("no <payload>")
    payload_elt.text = base64.b64encode(new_payload).decode("ascii")
    return to_xml(root)


def flip_byte(data: bytes, offset: int, mask: int = 0x01) -> bytes:
    b = bytearray(data)
    b[offset] ^= mask
    return bytes(b)


# ---------------------------------------------------------------------------------------------------------
# Minimal protobuf walker (to find byte offsets of fields for tampering)
# ---------------------------------------------------------------------------------------------------------

def _varint(buf: bytes, i: int) -> Tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def pb_fields(buf: bytes, base: int = 0) -> Dict[int, Tuple[int, int]]:
    """{field number: (start, end)} of each field's *value* bytes (absolute offsets from ``base``)."""
    out: Dict[int, Tuple[int, int]] = {}
    i = 0
    while i < len(buf):
        tag, i = _varint(buf, i)
        field, wt = tag >> 3, tag & 7
        if wt == 0:
            start = i
            _, i = _varint(buf, i)
            out[field] = (base + start, base + i)
        elif wt == 2:
            length, i = _varint(buf, i)
            out[field] = (base + i, base + i + length)
            i += length
        else:
            raise ValueError(f"unexpected wire type {wt}")
    return out


def key_field_offsets(data: bytes, is_kex: bool) -> Dict[str, Tuple[int, int]]:
    """Offsets (start, end) inside a <key>'s protobuf bytes of: mac, message, n, pn, dh_pub, ciphertext and,
    for a key exchange, pk_id, spk_id, ik, ek."""
    out: Dict[str, Tuple[int, int]] = {}
    auth_start, auth_end = 0, len(data)
    if is_kex:
        kx = pb_fields(data)
        out.update(pk_id=kx[1], spk_id=kx[2], ik=kx[3], ek=kx[4])
        auth_start, auth_end = kx[5]
    auth = pb_fields(data[auth_start:auth_end], auth_start)
    out["mac"] = auth[1]
    out["message"] = auth[2]
    m_start, m_end = auth[2]
    msg = pb_fields(data[m_start:m_end], m_start)
    out["n"] = msg[1]
    out["pn"] = msg[2]
    out["dh_pub"] = msg[3]
    if 4 in msg:
        out["ciphertext"] = msg[4]
    return out


def kex_header(data: bytes) -> Tuple[int, int, bytes, bytes]:
    """(pk_id, spk_id, ik, ek) of an OMEMOKeyExchange."""
    kx, _ = KeyExchangeImpl.parse(data)
    return kx.pre_key_id, kx.signed_pre_key_id, kx.header.identity_key, kx.header.ephemeral_key


def bundle_info(bundle_xml: str) -> Tuple[int, bytes, Dict[int, bytes]]:
    """(spk id, ik, {pk id: pk}) of a bundle, validated with twomemo's schema."""
    b = twomemo.etree.parse_bundle(ET.fromstring(bundle_xml), "x@example.org", 1)
    return b.signed_pre_key_id, b.identity_key, {v: k for k, v in b.pre_key_ids.items()}


# ---------------------------------------------------------------------------------------------------------
# twomemo device
# ---------------------------------------------------------------------------------------------------------

@dataclass
class Decrypted:
    plaintext: Optional[bytes]     # None for an empty OMEMO message
    sender_device: int
    kex: bool                      # the message carried a key exchange for us
    new_session: bool              # a passive session was (re)built from it


class TwomemoPeer:
    """One twomemo (urn:xmpp:omemo:2) device, backend level.

    Commit rule: a session (and the deletion of a used pre key) is stored only after the whole message
    (key material *and* payload) decrypted; a failure leaves the stored state untouched, like
    omemo.SessionManager.decrypt does.
    """

    # What differs for another python-omemo backend (oldmemo_peer.OldmemoPeer overrides these).
    NAMESPACE = NAMESPACE

    def _new_backend(self, storage: InMemoryStorage) -> omemo.Backend:
        return twomemo.Twomemo(storage)

    def _bundle_to_xml(self, bundle) -> ET.Element:
        return twomemo.etree.serialize_bundle(bundle)

    def _parse_bundle(self, elem: ET.Element, jid: str, device_id: int):
        return twomemo.etree.parse_bundle(elem, jid, device_id)

    def _message_to_xml(self, msg: omemo.Message) -> ET.Element:
        return twomemo.etree.serialize_message(msg)

    async def _parse_message(self, elem: ET.Element, sender_jid: str) -> omemo.Message:
        return twomemo.etree.parse_message(elem, sender_jid)

    def __init__(self, jid: str, device_id: int, refill: bool = True) -> None:
        self.jid = jid
        self.device_id = device_id
        self.refill = refill
        self.storage = InMemoryStorage()
        self.backend = self._new_backend(self.storage)
        # identity keys learned from bundles, like SessionManager's PublicDataInconsistency check
        self.known_ik: Dict[Tuple[str, int], bytes] = {}

    @classmethod
    async def create(cls, jid: str, device_id: int, num_pre_keys: int = 100, refill: bool = True
                     ) -> "TwomemoPeer":
        peer = cls(jid, device_id, refill)
        await peer.backend.generate_pre_keys(num_pre_keys)
        await peer.backend.get_bundle(jid, device_id)      # assigns ids, creates the SPK
        return peer

    # --- state -------------------------------------------------------------------------------------------
    def save(self) -> str:
        return json.dumps({"data": self.storage.data,
                           "known_ik": [[j, d, base64.b64encode(k).decode()] for (j, d), k in
                                        self.known_ik.items()]})

    def load(self, state: str) -> None:
        obj = json.loads(state)
        self.storage = InMemoryStorage(obj["data"])
        self.backend = self._new_backend(self.storage)
        self.known_ik = {(j, d): base64.b64decode(k) for j, d, k in obj["known_ik"]}

    # --- bundles -----------------------------------------------------------------------------------------
    async def bundle(self) -> omemo.Bundle:
        return await self.backend.get_bundle(self.jid, self.device_id)

    async def bundle_xml(self) -> str:
        return to_xml(self._bundle_to_xml(await self.bundle()))

    def learn_bundle(self, jid: str, device_id: int, bundle_xml: str) -> omemo.Bundle:
        b = self._parse_bundle(ET.fromstring(bundle_xml), jid, device_id)   # validates the schema
        self.known_ik[(jid, device_id)] = b.identity_key
        return b

    async def session(self, jid: str, device_id: int):
        return await self.backend.load_session(jid, device_id)

    # --- encryption --------------------------------------------------------------------------------------
    async def encrypt_message(self, plaintext: Optional[bytes],
                              recipients: Iterable[Tuple[str, int, Optional[str]]]) -> omemo.Message:
        """``plaintext`` None = empty OMEMO message. ``recipients``: (jid, device id, bundle xml or None);
        the bundle is used only when no session exists yet."""
        be = self.backend
        if plaintext is None:
            content, pkm = await be.encrypt_empty()
        else:
            content, pkm = await be.encrypt_plaintext(plaintext)
        keys = set()
        for jid, did, bxml in recipients:
            s = await be.load_session(jid, did)
            if s is None:
                if bxml is None:
                    raise NoSession(f"no session with {jid}/{did} and no bundle given")
                bundle = self.learn_bundle(jid, did, bxml) if isinstance(bxml, str) else bxml
                s, ekm = await be.build_session_active(jid, did, bundle, pkm)      # verifies spks
            else:
                ekm = await be.encrypt_key_material(s, pkm)
            kex = s.key_exchange if (s.initiation is omemo.session.Initiation.ACTIVE and not s.confirmed) else None
            await be.store_session(s)                                          # always store after use
            keys.add((ekm, kex))
        return omemo.Message(self.NAMESPACE, self.jid, self.device_id, content, frozenset(keys))

    async def encrypt(self, plaintext: Optional[bytes],
                      recipients: Iterable[Tuple[str, int, Optional[str]]], prefixed: bool = False) -> str:
        msg = await self.encrypt_message(plaintext, recipients)
        return to_xml(self._message_to_xml(msg), prefixed)

    async def encrypt_empty(self, recipients, prefixed: bool = False) -> str:
        return await self.encrypt(None, recipients, prefixed)

    # --- decryption --------------------------------------------------------------------------------------
    async def decrypt(self, enc_xml: str, sender_jid: str) -> Decrypted:
        """Raises on any failure (twomemo's DecryptionFailed / KeyExchangeFailed, ValueError, schema errors,
        or the PeerError subclasses). Nothing is stored unless everything succeeded."""
        be = self.backend
        m = await self._parse_message(ET.fromstring(enc_xml), sender_jid)
        mine = [k for k in m.keys if k[0].bare_jid == self.jid and k[0].device_id == self.device_id]
        if not mine:
            raise NotForThisDevice(f"no <key> for {self.jid}/{self.device_id}")
        ekm, kex = mine[0]
        s = await be.load_session(m.bare_jid, m.device_id)
        new_session = False
        if kex is not None:
            known = self.known_ik.get((m.bare_jid, m.device_id))
            if known is not None and kex.identity_key != known:
                raise IdentityMismatch("ik of the key exchange differs from the sender's bundle")
        if kex is not None and not (s is not None and s.initiation is omemo.session.Initiation.PASSIVE
                                    and s.key_exchange.builds_same_session(kex)):
            s, pkm = await be.build_session_passive(m.bare_jid, m.device_id, kex, ekm)
            new_session = True
        else:
            if s is None:
                raise NoSession(f"no session with {m.bare_jid}/{m.device_id}")
            pkm = await be.decrypt_key_material(s, ekm)   # marks an active session as confirmed
        pt = None if m.content.empty else await be.decrypt_plaintext(m.content, pkm)
        # commit only now
        await be.store_session(s)
        if new_session:
            await be.delete_pre_key(s)
            if self.refill:
                missing = 100 - await be.get_num_visible_pre_keys()
                if missing > 0:
                    await be.generate_pre_keys(missing)
        return Decrypted(pt, m.device_id, kex is not None, new_session)


# ---------------------------------------------------------------------------------------------------------
# C++ tool driver
# ---------------------------------------------------------------------------------------------------------

class ToolError(Exception):
    pass


class CppDevice:
    """One omemo_interop_tool process (JSON-lines over stdin/stdout)."""

    def __init__(self, tool: str, jid: str, device_id: int, seed: Optional[int] = None,
                 timeout: float = 30.0) -> None:
        self.jid = jid
        self.device_id = device_id
        self.timeout = timeout
        argv = shlex.split(tool) + ["--jid", jid, "--device", str(device_id)]
        if seed is not None:
            argv += ["--seed", str(seed)]
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self._stderr: deque = deque(maxlen=40)
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        threading.Thread(target=self._pump_stderr, daemon=True).start()

    def _pump_stdout(self) -> None:
        try:
            for line in self.proc.stdout:
                self._lines.put(line)
        except (ValueError, OSError):
            pass
        self._lines.put(None)

    def _pump_stderr(self) -> None:
        try:
            for line in self.proc.stderr:
                self._stderr.append(line.rstrip("\n"))
        except (ValueError, OSError):
            pass

    def stderr_tail(self, n: int = 8) -> str:
        return " / ".join(list(self._stderr)[-n:])

    def request(self, obj: Dict[str, Any], timeout: Optional[float] = None) -> Dict[str, Any]:
        if self.proc.poll() is not None:
            raise ToolError(f"tool is not running (rc={self.proc.returncode}); stderr: {self.stderr_tail()}")
        try:
            self.proc.stdin.write(json.dumps(obj) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise ToolError(f"cannot write to tool: {e}; stderr: {self.stderr_tail()}") from e
        while True:
            try:
                line = self._lines.get(timeout=timeout or self.timeout)
            except queue.Empty:
                self.kill()
                raise ToolError(f"timeout after {timeout or self.timeout}s waiting for reply to op "
                                f"{obj.get('op')!r}; stderr: {self.stderr_tail()}") from None
            if line is None:
                rc = self.proc.wait(timeout=5)
                raise ToolError(f"tool exited (rc={rc}) during op {obj.get('op')!r}; stderr: "
                                f"{self.stderr_tail()}")
            if line.strip():
                break
        try:
            resp = json.loads(line)
        except json.JSONDecodeError as e:
            raise ToolError(f"non-JSON reply to op {obj.get('op')!r}: {line[:200]!r}") from e
        if not isinstance(resp, dict) or not isinstance(resp.get("ok"), bool):
            raise ToolError(f"reply without boolean 'ok' to op {obj.get('op')!r}: {line[:200]!r}")
        return resp

    def _ok(self, obj: Dict[str, Any]) -> Dict[str, Any]:
        resp = self.request(obj)
        if not resp["ok"]:
            raise ToolError(f"op {obj.get('op')!r} failed: {resp.get('error')}: {resp.get('message')}")
        return resp

    # --- ops ---------------------------------------------------------------------------------------------
    def bundle(self) -> str:
        resp = self._ok({"op": "bundle"})
        return resp["bundle"]

    @staticmethod
    def _recipients(recipients: Iterable[Tuple[str, int, Optional[str]]]) -> List[Dict[str, Any]]:
        out = []
        for jid, did, bxml in recipients:
            r: Dict[str, Any] = {"jid": jid, "device": did}
            if bxml is not None:
                r["bundle"] = bxml
            out.append(r)
        return out

    def encrypt(self, plaintext: bytes, recipients: Iterable[Tuple[str, int, Optional[str]]]) -> str:
        resp = self._ok({"op": "encrypt", "plaintext": base64.b64encode(plaintext).decode("ascii"),
                         "recipients": self._recipients(recipients)})
        return resp["encrypted"]

    def encrypt_empty(self, recipients: Iterable[Tuple[str, int, Optional[str]]]) -> str:
        resp = self._ok({"op": "encrypt_empty", "recipients": self._recipients(recipients)})
        return resp["encrypted"]

    def decrypt(self, sender: str, encrypted: str) -> Dict[str, Any]:
        """Raw response; on success 'plaintext' is decoded to bytes (or None)."""
        resp = self.request({"op": "decrypt", "sender": sender, "encrypted": encrypted})
        if resp["ok"]:
            pt = resp.get("plaintext")
            resp["plaintext_bytes"] = None if pt is None else base64.b64decode(pt)
        return resp

    def save(self) -> str:
        return self._ok({"op": "save"})["state"]

    def load(self, state: str) -> None:
        self._ok({"op": "load", "state": state})

    def alive(self) -> bool:
        return self.proc.poll() is None

    def quit(self, timeout: float = 5.0) -> Optional[int]:
        """Send quit and wait; returns the exit code (None if it had to be killed)."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                pass
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def close(self) -> None:
        self.quit()
        self.kill()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except Exception:
                pass
