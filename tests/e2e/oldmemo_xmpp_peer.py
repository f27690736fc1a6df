#!/usr/bin/python3
"""An independent plain OMEMO app, the way Conversations, Dino or Gajim run legacy OMEMO (XEP-0384
v0.3, ``eu.siacs.conversations.axolotl``) and Kaidan or slixmpp-omemo bots run OMEMO 2
(``urn:xmpp:omemo:2``): device list and bundles in the account's own PEP, messages as plain
``<message type='chat'>`` to the contact's bare JID, Carbons for the account's other clients, the
server's own MAM for catching up. No Multiend component is involved. It is the referee for the C++
``multiend`` CLI's PEP side, built from XEP-0384 and python-omemo, never from our code.

Crypto and sessions: python-omemo 1.0.2's ``SessionManager`` with the oldmemo 1.0.3 backend (what
Gajim uses) or, with ``--protocol omemo2`` at init, the twomemo 1.0.3 backend (OMEMO 2 with the
XEP-0420 envelope). XMPP: slixmpp through twomemo_xmpp_peer.Xmpp. State: one JSON file per device.

    oldmemo_xmpp_peer.py init   --state F --jid J --password P --server HOST:PORT [--insecure | --ca-file F]
                                [--protocol oldmemo|omemo2]
    oldmemo_xmpp_peer.py send   --state F --to JID --body TEXT [--repeat N]
    oldmemo_xmpp_peer.py send-plain --state F --to JID --body TEXT      (no encryption at all)
    oldmemo_xmpp_peer.py listen --state F [--seconds N] [--count N]
    oldmemo_xmpp_peer.py sync   --state F                              (the server's MAM of the account)
    oldmemo_xmpp_peer.py devices --state F --of JID                    (both device lists in JID's PEP)
    common: [--timeout S] [-v]

Lines (JSON, stdout):
  {"type":"device","jid","device","fingerprint"}
  {"type":"sent","to","devices":[{"jid","device"}],"origin_id"}
  {"type":"message","from","from_device","to","body","encrypted","carbon","direction","origin_id"}
  {"type":"undecryptable","from","from_device","reason","carbon"}
  {"type":"synced","fetched","new"}
Exit codes as twomemo_xmpp_peer.py (1 usage, 2 connection/timeout, 3 refused, 4 state, 5 internal).
Empty (KeyTransport) messages are processed and never printed. Trust: blind.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Optional, Tuple
from xml.sax.saxutils import escape, quoteattr

sys.path.insert(0, str(Path(__file__).resolve().parent))

import omemo  # noqa: E402
import oldmemo  # noqa: E402
import oldmemo.etree  # noqa: E402
import oldmemo.oldmemo  # noqa: E402
import twomemo  # noqa: E402
import twomemo.etree  # noqa: E402
import twomemo.twomemo  # noqa: E402
import xeddsa  # noqa: E402  (python3-xeddsa, python-omemo's own dependency)

from twomemo_xmpp_peer import (EXIT_CONNECTION, EXIT_INTERNAL, EXIT_REFUSED, EXIT_STATE,  # noqa: E402
                               EXIT_USAGE, BadEnvelope, JsonStorage, PeerError, PeerTwomemo, StanzaError,
                               StateFile, Xmpp, bare, build_envelope, emit, new_id, parse_envelope,
                               parse_stanza_error, split_server)

NS = oldmemo.oldmemo.NAMESPACE  # eu.siacs.conversations.axolotl
DEVICELIST_NODE = f"{NS}.devicelist"
BUNDLE_NODE = f"{NS}.bundles:"
NS2 = twomemo.twomemo.NAMESPACE  # urn:xmpp:omemo:2
DEVICES_NODE2 = f"{NS2}:devices"
BUNDLES_NODE2 = f"{NS2}:bundles"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_PUBSUB_OWNER = "http://jabber.org/protocol/pubsub#owner"
NS_CARBONS = "urn:xmpp:carbons:2"
NS_FORWARD = "urn:xmpp:forward:0"
NS_MAM = "urn:xmpp:mam:2"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_SID = "urn:xmpp:sid:0"
NS_HINTS = "urn:xmpp:hints"
NS_EME = "urn:xmpp:eme:0"
NS_CLIENT = "jabber:client"
FALLBACK = ("I sent you an OMEMO encrypted message but your client doesn\u2019t seem to support that. "
            "Find more information on https://conversations.im/omemo")
KIND = "oldmemo-xmpp-peer"
log = logging.getLogger("oldmemo-peer")


def open_form(form_type: str, keep_all: bool = False) -> str:
    extra = "<field var='pubsub#max_items'><value>max</value></field>" if keep_all else ""
    return (f"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>{form_type}"
            f"</value></field><field var='pubsub#access_model'><value>open</value></field>{extra}</x>")


class Pep:
    """The account's own PEP and other accounts' PEP nodes, as XEP-0384 v0.3 uses them."""

    def __init__(self, xmpp: Xmpp) -> None:
        self.xmpp = xmpp

    async def items(self, owner: str, node: str) -> Optional[ET.Element]:
        """The first item's payload; None when the node does not exist or has no item (Prosody answers
        forbidden for a node never created, ejabberd item-not-found)."""
        return await self._first(owner, f"<items node={quoteattr(node)} max_items='1'/>")

    async def item(self, owner: str, node: str, item_id: str) -> Optional[ET.Element]:
        """The payload of item `item_id` (OMEMO 2 keeps one bundle item per device), or None."""
        return await self._first(owner, f"<items node={quoteattr(node)}><item id={quoteattr(item_id)}/></items>")

    async def _first(self, owner: str, items_xml: str) -> Optional[ET.Element]:
        iq_id = new_id("pep")
        r = await self.xmpp.iq(f"<iq type='get' to={quoteattr(owner)} id='{iq_id}'><pubsub xmlns='{NS_PUBSUB}'>"
                               f"{items_xml}</pubsub></iq>", iq_id)
        if r.get("type") == "error":
            err = parse_stanza_error(r)
            if err.condition in ("item-not-found", "forbidden"):
                return None
            raise err
        item = r.find(f"{{{NS_PUBSUB}}}pubsub/{{{NS_PUBSUB}}}items/{{{NS_PUBSUB}}}item")
        return item[0] if item is not None and len(item) else None

    async def publish(self, node: str, payload: ET.Element, item_id: str = "current", keep_all: bool = False) -> None:
        body = ET.tostring(payload, encoding="unicode")
        form = open_form("http://jabber.org/protocol/pubsub#publish-options", keep_all)
        for attempt in range(2):
            iq_id = new_id("pub")
            r = await self.xmpp.iq(
                f"<iq type='set' id='{iq_id}'><pubsub xmlns='{NS_PUBSUB}'><publish node={quoteattr(node)}>"
                f"<item id={quoteattr(item_id)}>{body}</item></publish><publish-options>"
                f"{form}</publish-options></pubsub></iq>",
                iq_id)
            if r.get("type") != "error":
                return
            err = parse_stanza_error(r)
            precondition = r.find(".//{http://jabber.org/protocol/pubsub#errors}precondition-not-met") is not None
            if keep_all and not precondition and attempt == 0:
                # ejabberd 23.01 knows no pubsub#max_items in publish-options; its nodes keep many
                form = open_form("http://jabber.org/protocol/pubsub#publish-options", False)
                continue
            if attempt == 0 and precondition:
                cid = new_id("cfg")
                await self.xmpp.iq_ok(
                    f"<iq type='set' id='{cid}'><pubsub xmlns='{NS_PUBSUB_OWNER}'><configure node={quoteattr(node)}>"
                    f"{open_form('http://jabber.org/protocol/pubsub#node_config', keep_all)}</configure></pubsub></iq>",
                    cid)
                continue
            raise err


class PeerSessionManager(omemo.SessionManager):
    PEP: Pep
    OWN_JID: str

    async def _upload_bundle(self, bundle: Any) -> None:  # type: ignore[override]
        try:
            if bundle.namespace == NS2:
                await self.PEP.publish(BUNDLES_NODE2, twomemo.etree.serialize_bundle(bundle), str(bundle.device_id), True)
            else:
                await self.PEP.publish(BUNDLE_NODE + str(bundle.device_id), oldmemo.etree.serialize_bundle(bundle))
        except (StanzaError, PeerError) as e:
            raise omemo.BundleUploadFailed(str(e)) from e

    async def _download_bundle(self, namespace: str, bare_jid: str, device_id: int) -> Any:  # type: ignore
        if namespace not in (NS, NS2):
            raise omemo.UnknownNamespace(namespace)
        try:
            if namespace == NS2:
                el = await self.PEP.item(bare_jid, BUNDLES_NODE2, str(device_id))
            else:
                el = await self.PEP.items(bare_jid, BUNDLE_NODE + str(device_id))
        except (StanzaError, PeerError) as e:
            raise omemo.BundleDownloadFailed(str(e)) from e
        if el is None:
            raise omemo.BundleNotFound(f"no bundle of {bare_jid}/{device_id}")
        try:
            if namespace == NS2:
                return twomemo.etree.parse_bundle(el, bare_jid, device_id)
            return oldmemo.etree.parse_bundle(el, bare_jid, device_id)
        except Exception as e:
            raise omemo.BundleDownloadFailed(f"bundle of {bare_jid}/{device_id} unusable: {e}") from e

    async def _delete_bundle(self, namespace: str, device_id: int) -> None:  # type: ignore[override]
        return None  # a stale bundle harms nobody: the device is gone from the list

    async def _upload_device_list(self, namespace: str, device_list: Dict[int, Optional[str]]) -> None:  # type: ignore
        try:
            if namespace == NS2:
                await self.PEP.publish(DEVICES_NODE2, twomemo.etree.serialize_device_list(device_list))
            else:
                await self.PEP.publish(DEVICELIST_NODE, oldmemo.etree.serialize_device_list(device_list))
        except (StanzaError, PeerError) as e:
            raise omemo.DeviceListUploadFailed(str(e)) from e

    async def _download_device_list(self, namespace: str, bare_jid: str) -> Dict[int, Optional[str]]:  # type: ignore
        if namespace not in (NS, NS2):
            raise omemo.UnknownNamespace(namespace)
        try:
            el = await self.PEP.items(bare_jid, DEVICES_NODE2 if namespace == NS2 else DEVICELIST_NODE)
        except (StanzaError, PeerError) as e:
            raise omemo.DeviceListDownloadFailed(str(e)) from e
        if el is None:
            return {}
        return (twomemo.etree if namespace == NS2 else oldmemo.etree).parse_device_list(el)

    async def _evaluate_custom_trust_level(self, device: omemo.DeviceInformation) -> omemo.TrustLevel:
        return omemo.TrustLevel.DISTRUSTED if device.trust_level_name == "distrusted" else omemo.TrustLevel.TRUSTED

    async def _make_trust_decision(self, undecided: FrozenSet[omemo.DeviceInformation],
                                   identifier: Optional[str]) -> None:
        for d in undecided:
            await self.set_trust(d.bare_jid, d.identity_key, "blind")

    async def _send_message(self, message: omemo.Message, bare_jid: str) -> None:  # type: ignore[override]
        """Empty messages python-omemo sends by itself (key-exchange completion, heartbeats)."""
        etree = twomemo.etree if message.namespace == NS2 else oldmemo.etree
        enc = ET.tostring(etree.serialize_message(message), encoding="unicode")
        try:
            self.PEP.xmpp.send_raw(f"<message type='chat' to={quoteattr(bare_jid)} id='{new_id('kt')}'>{enc}"
                                   f"<store xmlns='{NS_HINTS}'/></message>")
        except PeerError as e:
            raise omemo.MessageSendingFailed(str(e)) from e


class Peer:
    def __init__(self, st: StateFile, timeout: float) -> None:
        self.st = st
        d = st.data
        host, port = split_server(d["server"])
        self.jid = d["jid"]
        self.xmpp = Xmpp(self.jid, d["resource"], d["password"], host, port, "", d.get("ca_file"),
                         bool(d.get("insecure")), timeout)
        self.pep = Pep(self.xmpp)
        self.storage = JsonStorage(d["omemo"])
        self.protocol = d.get("protocol", "oldmemo")
        self.ns = NS2 if self.protocol == "omemo2" else NS
        self.mgr: Optional[PeerSessionManager] = None

    async def start(self) -> None:
        await self.xmpp.connect()
        cls = type("BoundOldmemoManager", (PeerSessionManager,), {"PEP": self.pep, "OWN_JID": self.jid})
        try:
            backend = PeerTwomemo(self.storage) if self.protocol == "omemo2" else oldmemo.Oldmemo(self.storage)
            self.mgr = await cls.create([backend], self.storage, self.jid, None, "blind", pre_key_refill_threshold=99)
        except (omemo.XMPPInteractionFailed, StanzaError) as e:
            raise PeerError(EXIT_REFUSED, f"setting up the legacy OMEMO device failed: {e}") from e
        cid = new_id("carbons")
        await self.xmpp.iq_ok(f"<iq type='set' id='{cid}'><enable xmlns='{NS_CARBONS}'/></iq>", cid)

    async def close(self) -> None:
        self.st.save()
        await self.xmpp.close()

    async def device(self) -> Dict[str, Any]:
        assert self.mgr is not None
        dev, _ = await self.mgr.get_own_device_information()
        # the fingerprint as Conversations prints it: the Curve25519 form of the identity, in hex
        curve = xeddsa.ed25519_pub_to_curve25519_pub(dev.identity_key)
        fp = " ".join(curve.hex()[i:i + 8] for i in range(0, 64, 8))
        return {"type": "device", "jid": self.jid, "device": dev.device_id, "fingerprint": fp}

    async def send(self, to: str, body: str) -> Dict[str, Any]:
        assert self.mgr is not None
        to = bare(to)
        try:
            # python-omemo encrypts for the device lists it stored; apps refresh them from PEP first
            # (or keep them current through +notify events, which this one does not subscribe to)
            for jid in (to, self.jid):
                await self.mgr.refresh_device_list(self.ns, jid)
            plaintext = build_envelope(body, self.jid) if self.ns == NS2 else body.encode()
            messages, errors = await self.mgr.encrypt(frozenset([to]), {self.ns: plaintext})
        except omemo.SessionManagerException as e:
            raise PeerError(EXIT_REFUSED, f"cannot encrypt for {to}: {e}") from e
        for err in errors:
            log.warning("encryption error: %s", err)
        msg = next((m for m in messages if m.namespace == self.ns), None)
        if msg is None:
            raise PeerError(EXIT_REFUSED, f"no {self.protocol} device of {to} or of this account can receive keys")
        etree = twomemo.etree if self.ns == NS2 else oldmemo.etree
        enc = ET.tostring(etree.serialize_message(msg), encoding="unicode")
        origin = uuid.uuid4().hex
        fallback = f"<body>{escape(FALLBACK)}</body>" if self.ns == NS else ""
        self.xmpp.send_raw(f"<message type='chat' to={quoteattr(to)} id='{new_id('m')}'>{enc}"
                           f"<store xmlns='{NS_HINTS}'/><origin-id xmlns='{NS_SID}' id='{origin}'/>"
                           f"<encryption xmlns='{NS_EME}' namespace='{self.ns}' name='OMEMO'/>{fallback}</message>")
        devices = sorted({(k[0].bare_jid, k[0].device_id) for k in msg.keys})
        # oldmemo addresses keys by device id only: the library files them all under the recipient
        return {"type": "sent", "to": [to], "origin_id": origin,
                "devices": [{"jid": j, "device": d} for j, d in devices]}

    def send_plain(self, to: str, body: str) -> Dict[str, Any]:
        origin = uuid.uuid4().hex
        self.xmpp.send_raw(f"<message type='chat' to={quoteattr(bare(to))} id='{new_id('p')}'>"
                           f"<body>{escape(body)}</body><origin-id xmlns='{NS_SID}' id='{origin}'/></message>")
        return {"type": "sent", "to": [bare(to)], "origin_id": origin, "devices": [], "encrypted": False}

    def unwrap(self, el: ET.Element) -> Tuple[Optional[ET.Element], bool]:
        """A live message, or the inner message of a Carbons copy from our own account (else None)."""
        for tag in ("sent", "received"):
            c = el.find(f"{{{NS_CARBONS}}}{tag}")
            if c is not None:
                if el.get("from", "") != self.jid:
                    log.warning("ignored a Carbons copy from %s", el.get("from"))
                    return None, True
                return c.find(f"{{{NS_FORWARD}}}forwarded/{{{NS_CLIENT}}}message"), True
        return el, False

    async def process(self, m: ET.Element, carbon: bool) -> Optional[Dict[str, Any]]:
        assert self.mgr is not None
        if m.get("type", "normal") not in ("chat", "normal"):
            return None
        sender = bare(m.get("from", "")) or self.jid
        to = bare(m.get("to", "")) or self.jid
        oid = m.find(f"{{{NS_SID}}}origin-id")
        origin = oid.get("id") if oid is not None else m.get("id")
        seen: List[str] = self.st.data.setdefault("seen", [])
        key = f"{sender}:{origin}"
        if origin and key in seen:
            return None
        line: Dict[str, Any] = {"from": sender, "to": to, "carbon": carbon, "origin_id": origin,
                                "direction": "out" if sender == self.jid else "in"}
        enc = m.find(f"{{{self.ns}}}encrypted")
        if enc is None:
            body = m.find(f"{{{NS_CLIENT}}}body")
            if body is None:
                return None
            line.update({"type": "message", "body": body.text or "", "encrypted": False, "from_device": None})
        else:
            try:
                if self.ns == NS2:
                    msg = twomemo.etree.parse_message(enc, sender)
                else:
                    msg = await oldmemo.etree.parse_message(enc, sender, self.jid, self.mgr)
                plaintext, dev, _ = await self.mgr.decrypt(msg)
                if plaintext is not None and self.ns == NS2:
                    plaintext = parse_envelope(plaintext, sender).encode()
            except (Exception, BadEnvelope) as e:  # noqa: BLE001 - reported, never fatal
                header = enc.find(f"{{{self.ns}}}header")
                line.update({"type": "undecryptable", "reason": f"{type(e).__name__}: {e}",
                             "from_device": int(header.get("sid", "0")) if header is not None else None})
                return line
            if plaintext is None:
                return None
            line.update({"type": "message", "body": plaintext.decode("utf-8", "replace"), "encrypted": True,
                         "from_device": dev.device_id})
        if origin:
            seen.append(key)
            del seen[:-5000]
        return line

    async def listen(self, seconds: Optional[float], count: Optional[int]) -> int:
        self.xmpp.send_raw("<presence/>")
        shown = 0
        deadline = time.monotonic() + seconds if seconds else None
        while count is None or shown < count:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return EXIT_CONNECTION if count is not None else 0
            try:
                el = await asyncio.wait_for(self.xmpp.live.get(), left)
            except asyncio.TimeoutError:
                continue
            if el.tag == "disconnected":
                raise PeerError(EXIT_CONNECTION, self.xmpp.disconnect_reason or "disconnected")
            if el.tag != f"{{{NS_CLIENT}}}message":
                continue
            inner, carbon = self.unwrap(el)
            if inner is None:
                continue
            line = await self.process(inner, carbon)
            if line is not None:
                emit(line)
                shown += 1
                self.st.save()
        return 0

    async def sync(self) -> Dict[str, Any]:
        """Pages through the account's server archive (XEP-0313 on our own bare JID) after the last id."""
        fetched = new = 0
        after = self.st.data.get("mam_after")
        while True:
            qid, iq_id = new_id("q"), new_id("mam")
            rsm = "<max>50</max>" + (f"<after>{escape(after)}</after>" if after else "")
            got: List[ET.Element] = []
            self.xmpp._mam[qid] = got
            try:
                r = await self.xmpp.iq(f"<iq type='set' id='{iq_id}'><query xmlns='{NS_MAM}' queryid='{qid}'>"
                                       f"<set xmlns='{NS_RSM}'>{rsm}</set></query></iq>", iq_id, 30.0)
            finally:
                self.xmpp._mam.pop(qid, None)
            if r.get("type") == "error":
                raise PeerError(EXIT_REFUSED, f"MAM query refused: {parse_stanza_error(r)}")
            for res_msg in got:
                res = res_msg.find(f"{{{NS_MAM}}}result")
                inner = res.find(f"{{{NS_FORWARD}}}forwarded/{{{NS_CLIENT}}}message") if res is not None else None
                if inner is None:
                    continue
                fetched += 1
                line = await self.process(inner, False)
                if line is not None:
                    emit(line)
                    new += 1
            fin = r.find(f"{{{NS_MAM}}}fin")
            last = fin.find(f"{{{NS_RSM}}}set/{{{NS_RSM}}}last") if fin is not None else None
            if last is not None and last.text:
                after = last.text
                self.st.data["mam_after"] = after
            if fin is None or fin.get("complete") == "true" or not got:
                break
        return {"type": "synced", "fetched": fetched, "new": new}


def load_state(path: Path, timeout: float) -> StateFile:
    st = StateFile(path)
    st.lock(timeout)
    try:
        st.data = json.loads(path.read_text())
    except FileNotFoundError:
        st.unlock()
        raise PeerError(EXIT_STATE, f"state file {path} does not exist (run init first)") from None
    except (OSError, json.JSONDecodeError) as e:
        st.unlock()
        raise PeerError(EXIT_STATE, f"state file {path} unreadable: {e}") from None
    if st.data.get("kind") != KIND:
        st.unlock()
        raise PeerError(EXIT_STATE, f"{path} is not an {KIND} state file")
    return st


async def run(args: argparse.Namespace) -> int:
    path = Path(args.state)
    if args.cmd == "init":
        if path.exists():
            raise PeerError(EXIT_USAGE, f"state file {path} already exists")
        split_server(args.server)
        st = StateFile(path)
        st.lock(args.timeout)
        st.data = {"kind": KIND, "jid": bare(args.jid), "password": args.password, "server": args.server,
                   "ca_file": str(Path(args.ca_file).resolve()) if args.ca_file else None,
                   "insecure": bool(args.insecure), "resource": f"{args.protocol}-" + secrets.token_hex(4), "omemo": {},
                   "protocol": args.protocol}
    else:
        st = load_state(path, args.timeout)
    peer = Peer(st, args.timeout)
    try:
        await peer.start()
        if args.cmd == "init":
            emit(await peer.device())
        elif args.cmd == "send":
            for i in range(args.repeat):
                emit(await peer.send(args.to, args.body if args.repeat == 1 else f"{args.body} {i}"))
            await asyncio.sleep(0.3)  # let the stream carry it before closing
        elif args.cmd == "send-plain":
            emit(peer.send_plain(args.to, args.body))
            await asyncio.sleep(0.3)
        elif args.cmd == "listen":
            return await peer.listen(args.seconds, args.count)
        elif args.cmd == "sync":
            emit(await peer.sync())
        elif args.cmd == "devices":
            lists = {}
            for name, node, etree in (("omemo2", DEVICES_NODE2, twomemo.etree), ("oldmemo", DEVICELIST_NODE, oldmemo.etree)):
                el = await peer.pep.items(bare(args.of), node)
                lists[name] = sorted(etree.parse_device_list(el)) if el is not None else []
            emit({"type": "devices", "jid": bare(args.of), **lists})
        return 0
    finally:
        try:
            await peer.close()
        finally:
            st.unlock()


def main() -> int:
    p = argparse.ArgumentParser(prog="oldmemo_xmpp_peer.py")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("init", "send", "send-plain", "listen", "sync", "devices"):
        sp = sub.add_parser(name)
        sp.add_argument("--state", required=True)
        sp.add_argument("--timeout", type=float, default=20.0)
        sp.add_argument("-v", action="store_true")
        if name == "init":
            sp.add_argument("--jid", required=True)
            sp.add_argument("--password", required=True)
            sp.add_argument("--server", required=True)
            sp.add_argument("--insecure", action="store_true")
            sp.add_argument("--ca-file")
            sp.add_argument("--protocol", choices=["oldmemo", "omemo2"], default="oldmemo")
        if name in ("send", "send-plain"):
            sp.add_argument("--to", required=True)
            sp.add_argument("--body", required=True)
        if name == "send":
            sp.add_argument("--repeat", type=int, default=1, help="N messages '<body> <i>' over one connection")
        if name == "devices":
            sp.add_argument("--of", required=True)
        if name == "listen":
            sp.add_argument("--seconds", type=float)
            sp.add_argument("--count", type=int)
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.v else logging.WARNING, stream=sys.stderr,
                        format="oldmemo-peer: %(levelname)s: %(message)s")
    try:
        return asyncio.run(run(args))
    except PeerError as e:
        print(f"oldmemo-peer: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        return 0
    except Exception as e:  # noqa: BLE001
        print(f"oldmemo-peer: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
