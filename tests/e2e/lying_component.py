"""A lying archive component for e2e tests: it connects to the real XMPP server in place of
Multiend's component (XEP-0114) and answers just enough for a client to start, then lies about
the archive. Modes:

* ``no-progress``: every MAM query gets the same one-message page and ``complete='false'``
  with the same ``<last/>``, forever.
* ``flood``: every MAM query gets 300 results (more than the 250 asked for), then its fin.
* ``cycle``: pages point at each other (after 5 comes 6, after 6 comes 5), never complete.
* ``expired``: every MAM query is answered item-not-found (the position "expired", always).
* ``no-list``: one message from ``bob``'s device 7 with a key for our device, complete; the
  device-list request for bob is answered with an error.
* ``overflow``: the first MAM query is preceded by 150 fan-out headlines of ~64 KiB each (more
  than a client may hold while it catches up), then one result, complete; later queries are
  answered complete and empty.
* ``silent-once``: the first MAM query is never answered (as if the component died right after
  reading it); later ones get one result, complete.

Device-list requests are answered with ``devices`` (bare JID → device ids); any other iq with
an empty result. Runs its own asyncio loop in a thread: ``with LyingComponent(...) as c:``.
"""
from __future__ import annotations

import asyncio
import hashlib
import threading
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional
from xml.sax.saxutils import quoteattr

NS_STREAM = "http://etherx.jabber.org/streams"
NS_ACCEPT = "jabber:component:accept"
NS_MAM = "urn:xmpp:mam:2"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"


class LyingComponent:
    def __init__(self, env, mode: str, devices: Dict[str, List[int]], me: str = "", my_device: int = 0) -> None:
        self.env, self.mode, self.devices = env, mode, devices
        self.me, self.my_device = me, my_device
        self.mam_queries = 0
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._stop: Optional[asyncio.Event] = None

    def __enter__(self) -> "LyingComponent":
        self._thread.start()
        if not self._ready.wait(15) or self._error:
            raise RuntimeError(f"the lying component did not connect: {self._error}")
        return self

    def __exit__(self, *exc) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as e:  # noqa: BLE001 — reported through __enter__
            self._error = e
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        reader, writer = await asyncio.open_connection(self.env.host, self.env.component_port)
        domain = self.env.component_domain
        writer.write(f"<stream:stream xmlns='{NS_ACCEPT}' xmlns:stream='{NS_STREAM}' to='{domain}'>".encode())
        parser = ET.XMLPullParser(events=("start", "end"))
        depth = 0
        stream_id = None
        while stream_id is None:
            parser.feed(await reader.read(4096))
            for ev, el in parser.read_events():
                if ev == "start" and depth == 0:
                    stream_id = el.get("id")
                depth += 1 if ev == "start" else -1
        digest = hashlib.sha1((stream_id + self.env.component_secret).encode()).hexdigest()
        writer.write(f"<handshake>{digest}</handshake>".encode())
        read = asyncio.ensure_future(reader.read(65536))
        stop = asyncio.ensure_future(self._stop.wait())
        while True:
            done, _ = await asyncio.wait({read, stop}, return_when=asyncio.FIRST_COMPLETED)
            if stop in done:
                read.cancel()
                break
            data = read.result()
            if not data:
                break
            parser.feed(data)
            for ev, el in parser.read_events():
                depth += 1 if ev == "start" else -1
                if ev == "end" and depth == 1:
                    if el.tag == f"{{{NS_ACCEPT}}}handshake":
                        self._ready.set()
                    else:
                        for out in self._answer(el):
                            writer.write(out.encode())
                    el.clear()
            await writer.drain()
            read = asyncio.ensure_future(reader.read(65536))
        writer.write(b"</stream:stream>")
        writer.close()

    def _answer(self, st: ET.Element) -> List[str]:
        if st.tag != f"{{{NS_ACCEPT}}}iq" or st.get("type") not in ("get", "set"):
            return []
        me, peer, iq_id = st.get("to", ""), st.get("from", ""), st.get("id", "")
        head = f"<iq type='result' from={quoteattr(me)} to={quoteattr(peer)} id={quoteattr(iq_id)}>"
        query = st.find(f"{{{NS_MAM}}}query")
        if query is not None:
            self.mam_queries += 1
            if self.mode == "silent-once" and self.mam_queries == 1:
                return []
            if self.mode == "expired":
                return [f"<iq type='error' from={quoteattr(me)} to={quoteattr(peer)} id={quoteattr(iq_id)}>"
                        "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                        "</error></iq>"]
            after = query.find("{http://jabber.org/protocol/rsm}set/{http://jabber.org/protocol/rsm}after")
            if self.mode == "overflow":
                if self.mam_queries > 1:
                    return [head + f"<fin xmlns='{NS_MAM}' complete='true'><set xmlns='http://jabber.org/protocol/rsm'/>"
                            "</fin></iq>"]
                junk = "x" * (64 * 1024)
                fanout = [f"<message from={quoteattr(me)} to={quoteattr(peer)} type='headline'>"
                          f"<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' "
                          f"from='nobody@{self.env.user_domain}/x' to={quoteattr(me)} type='normal'><body>{junk}</body>"
                          f"</message></forwarded><stanza-id xmlns='urn:xmpp:sid:0' by={quoteattr(me)} id='{1000 + i}'/>"
                          "</message>" for i in range(150)]
                return fanout + self._mam(query.get("queryid", ""), me, peer, head, None)
            return self._mam(query.get("queryid", ""), me, peer, head, None if after is None else after.text)
        items = st.find(f"{{{NS_PUBSUB}}}pubsub/{{{NS_PUBSUB}}}items")
        if items is not None and items.get("node") == "urn:xmpp:omemo:2:devices":
            owner = me.split("@", 1)[0] + "@" + self.env.user_domain
            if self.mode == "no-list" and owner.startswith("bob@"):
                return [f"<iq type='error' from={quoteattr(me)} to={quoteattr(peer)} id={quoteattr(iq_id)}>"
                        "<error type='wait'><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                        "</error></iq>"]
            devs = "".join(f"<device id='{d}'/>" for d in self.devices.get(owner, []))
            return [head + f"<pubsub xmlns='{NS_PUBSUB}'><items node='urn:xmpp:omemo:2:devices'><item id='current'>"
                    f"<devices xmlns='urn:xmpp:omemo:2'>{devs}</devices></item></items></pubsub></iq>"]
        return [head + "</iq>"]

    def _mam(self, qid: str, me: str, peer: str, head: str, after: Optional[str]) -> List[str]:
        complete = "false"
        if self.mode == "no-progress":
            ids = ["5"]
        elif self.mode == "cycle":
            ids = ["6"] if after == "5" else ["5"]
        elif self.mode in ("no-list", "overflow", "silent-once"):
            ids, complete = ["9"], "true"
        else:
            ids = [str(i) for i in range(1, 301)]
        content = "<body>junk</body>"
        sender = f"nobody@{self.env.user_domain}/x"
        if self.mode == "no-list":
            sender = f"bob@{self.env.user_domain}/x"
            content = (f"<encrypted xmlns='urn:xmpp:omemo:2'><header sid='7'><keys jid={quoteattr(self.me)}>"
                       f"<key rid='{self.my_device}'>AAAA</key></keys></header><payload>AAAA</payload></encrypted>")
        out = [f"<message from={quoteattr(me)} to={quoteattr(peer)}><result xmlns='{NS_MAM}' queryid={quoteattr(qid)} "
               f"id='{i}'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' "
               f"stamp='2026-01-01T00:00:00Z'/><message xmlns='jabber:client' from={quoteattr(sender)} "
               f"to={quoteattr(me)} type='normal'>{content}</message></forwarded></result></message>"
               for i in ids]
        out.append(head + f"<fin xmlns='{NS_MAM}' complete='{complete}'><set xmlns='http://jabber.org/protocol/rsm'>"
                   f"<first>{ids[0]}</first><last>{ids[-1]}</last></set></fin></iq>")
        return out
