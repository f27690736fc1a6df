#!/usr/bin/python3
"""Stand-in for omemo_interop_tool, backed by twomemo (self-check of twomemo_interop.py).

    /usr/bin/python3 tests/interop/twomemo_interop.py --tool "/usr/bin/python3 tests/interop/fake_tool_twomemo.py"

Speaks the same JSON-lines protocol as the C++ tool (one request per stdin line, one response per stdout
line). --seed is accepted and ignored (twomemo draws from `secrets`). save/load use the storage dict as JSON.
"""

import argparse
import asyncio
import base64
import json
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from twomemo_peer import TwomemoPeer, classify_error, describe_error  # noqa: E402


def recipients_of(req):
    return [(r["jid"], int(r["device"]), r.get("bundle")) for r in req.get("recipients", [])]


async def handle(peer: TwomemoPeer, req):
    op = req.get("op")
    if op == "bundle":
        return {"ok": True, "jid": peer.jid, "device": peer.device_id, "bundle": await peer.bundle_xml()}
    if op == "encrypt":
        pt = base64.b64decode(req["plaintext"], validate=True)
        return {"ok": True, "encrypted": await peer.encrypt(pt, recipients_of(req))}
    if op == "encrypt_empty":
        return {"ok": True, "encrypted": await peer.encrypt_empty(recipients_of(req))}
    if op == "decrypt":
        try:
            d = await peer.decrypt(req["encrypted"], req["sender"])
        except Exception as e:  # every failure becomes an error reply
            return {"ok": False, "error": classify_error(e), "message": describe_error(e)}
        return {"ok": True,
                "plaintext": None if d.plaintext is None else base64.b64encode(d.plaintext).decode("ascii"),
                "sender_device": d.sender_device, "kex": d.kex}
    if op == "save":
        return {"ok": True, "state": base64.b64encode(peer.save().encode()).decode("ascii")}
    if op == "load":
        peer.load(base64.b64decode(req["state"]).decode())
        return {"ok": True}
    return {"ok": False, "error": "bad_request", "message": f"unknown op {op!r}"}


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jid", required=True)
    ap.add_argument("--device", type=int, required=True)
    ap.add_argument("--seed", type=int)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    peer = await TwomemoPeer.create(args.jid, args.device)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return 0
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            if req.get("op") == "quit":
                return 0
            resp = await handle(peer, req)
        except Exception as e:
            resp = {"ok": False, "error": "bad_request", "message": describe_error(e)}
        sys.stdout.write(json.dumps(resp) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
