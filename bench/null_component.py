#!/usr/bin/python3
"""A do-nothing archive component, the ceiling for bench/e2e_bench.sh: it connects to the XMPP
server in the archive component's place (XEP-0114) and answers what a sending client needs
without storing anything — a receipt for every message (a made-up stanza-id), one fan-out
headline per recipient (the header's JIDs and the sender's, the message forwarded as it came),
device lists from a snapshot (JSON: bare JID → device ids), complete empty MAM pages, and an
empty result for any other iq. What it costs the XMPP server per message is what the real
component costs it; what it does not cost is the archive.

    bench/null_component.py --testbed-dir DIR --devices FILE.json

Runs until SIGTERM; then prints {"messages": N, "cpu_seconds": S} on stdout.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import resource
import signal
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from xml.sax.saxutils import quoteattr

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
from xmpp_client import TestbedEnv  # noqa: E402

NS_ACCEPT = "jabber:component:accept"
NS_STREAM = "http://etherx.jabber.org/streams"
NS_OMEMO = "urn:xmpp:omemo:2"
NS_SID = "urn:xmpp:sid:0"
NS_MAM = "urn:xmpp:mam:2"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"


def bare(jid: str) -> str:
    return jid.split("/", 1)[0]


class NullComponent:
    def __init__(self, env: TestbedEnv, devices: dict) -> None:
        self.env, self.devices, self.messages, self.next_id = env, devices, 0, 1

    def answer(self, st: ET.Element) -> list:
        me, peer, sid = st.get("to", ""), st.get("from", ""), st.get("id", "")
        if st.tag == f"{{{NS_ACCEPT}}}message":
            enc = st.find(f"{{{NS_OMEMO}}}encrypted")
            if enc is None or st.get("type") == "error":
                return []
            self.messages += 1
            stanza_id, self.next_id = str(self.next_id), self.next_id + 1
            out = [f"<message from={quoteattr(me)} to={quoteattr(peer)}><received xmlns='urn:xmpp:receipts' "
                   f"id={quoteattr(sid)}/><stanza-id xmlns='{NS_SID}' by={quoteattr(me)} id='{stanza_id}'/></message>"]
            recipients = {k.get("jid", "") for k in enc.iter(f"{{{NS_OMEMO}}}keys")}
            if enc.find(f"{{{NS_OMEMO}}}payload") is not None:
                recipients.add(bare(peer))
            st.tag = "{jabber:client}message"
            inner = ET.tostring(st, encoding="unicode")  # prefixed (ns0:), the same XML to a parser
            for r in sorted(x for x in recipients if x):
                out.append(f"<message from={quoteattr(me)} to={quoteattr(r)} type='headline'>"
                           f"<forwarded xmlns='urn:xmpp:forward:0'>{inner}</forwarded>"
                           f"<stanza-id xmlns='{NS_SID}' by={quoteattr(me)} id='{stanza_id}'/></message>")
            return out
        if st.tag != f"{{{NS_ACCEPT}}}iq" or st.get("type") not in ("get", "set"):
            return []
        head = f"<iq type='result' from={quoteattr(me)} to={quoteattr(peer)} id={quoteattr(sid)}>"
        if st.find(f"{{{NS_MAM}}}query") is not None:
            return [head + f"<fin xmlns='{NS_MAM}' complete='true'><set xmlns='http://jabber.org/protocol/rsm'/></fin></iq>"]
        items = st.find(f"{{{NS_PUBSUB}}}pubsub/{{{NS_PUBSUB}}}items")
        if items is not None and items.get("node") == "urn:xmpp:omemo:2:devices":
            owner = me.split("@", 1)[0] + "@" + self.env.user_domain
            devs = "".join(f"<device id='{d}'/>" for d in self.devices.get(owner, []))
            return [head + f"<pubsub xmlns='{NS_PUBSUB}'><items node='urn:xmpp:omemo:2:devices'><item id='current'>"
                    f"<devices xmlns='{NS_OMEMO}'>{devs}</devices></item></items></pubsub></iq>"]
        return [head + "</iq>"]

    async def run(self, stop: asyncio.Event) -> None:
        reader, writer = await asyncio.open_connection(self.env.host, self.env.component_port)
        writer.write(f"<stream:stream xmlns='{NS_ACCEPT}' xmlns:stream='{NS_STREAM}' "
                     f"to='{self.env.component_domain}'>".encode())
        parser = ET.XMLPullParser(events=("start", "end"))
        depth, stream_id = 0, None
        while stream_id is None:
            parser.feed(await reader.read(4096))
            for ev, el in parser.read_events():
                if ev == "start" and depth == 0:
                    stream_id = el.get("id")
                depth += 1 if ev == "start" else -1
        writer.write(f"<handshake>{hashlib.sha1((stream_id + self.env.component_secret).encode()).hexdigest()}"
                     "</handshake>".encode())
        print("attached", file=sys.stderr, flush=True)
        read = asyncio.ensure_future(reader.read(1 << 16))
        stopped = asyncio.ensure_future(stop.wait())
        while True:
            done, _ = await asyncio.wait({read, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if stopped in done:
                read.cancel()
                break
            data = read.result()
            if not data:
                break
            parser.feed(data)
            out = []
            for ev, el in parser.read_events():
                depth += 1 if ev == "start" else -1
                if ev == "end" and depth == 1:
                    try:
                        out.extend(self.answer(el))
                    except Exception as e:  # noqa: BLE001 — a bench tool: say it, go on
                        print(f"null component: {e!r}", file=sys.stderr, flush=True)
                    el.clear()
            if out:
                writer.write("".join(out).encode())
                await writer.drain()
            read = asyncio.ensure_future(reader.read(1 << 16))
        writer.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--testbed-dir", required=True)
    ap.add_argument("--devices", required=True)
    args = ap.parse_args()
    env = TestbedEnv.from_file(Path(args.testbed_dir) / "env")
    comp = NullComponent(env, json.loads(Path(args.devices).read_text()))

    async def go() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await comp.run(stop)

    asyncio.run(go())
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"messages": comp.messages, "cpu_seconds": ru.ru_utime + ru.ru_stime}), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
