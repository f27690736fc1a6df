#!/usr/bin/python3
"""End-to-end: the multiend CLI and people on plain legacy OMEMO apps (eu.siacs.conversations.axolotl,
what Conversations, Dino, Gajim and Monal speak), through a real Prosody (or ejabberd), PostgreSQL and
the archive component (the harness of test_e2e.py). The legacy app is tests/e2e/oldmemo_xmpp_peer.py:
python-omemo with python3-oldmemo, its keys in its own account's PEP, no component.

    tests/e2e/test_e2e_legacy.py --cli build/client/multiend --component build/server/multiend-component
                                 [--server prosody|ejabberd] [--only a,b] [--keep] [-v]

* legacy_contact_both_ways: carol's phone app (legacy only) and alice's CLI: `devices --of` finds
  the app in carol's PEP with the fingerprint the app itself shows; alice sends, the app
  decrypts it live, once; the app answers, alice's `listen` shows it as protocol oldmemo via pep.
  The sent line names the app's device with protocol/via.
* own_legacy_app_sees_cli: alice has a CLI device and a legacy phone app: a message the CLI sends to
  bob reaches the app by Carbons (encrypted for it), and one the app sends to bob shows in the CLI's
  `listen` as a Carbons copy (direction out).
* unencrypted_message_shown: a plain chat message is shown as `encrypted: false`, never dropped.
* forged_carbon_ignored: a contact's message wrapped as a Carbons copy "sent by alice" is not shown.
* offline_both_sides_catch_up: the CLI offline reads a legacy contact's messages and its own phone
  app's sent ones from the server archive with `sync`, once; the legacy app offline reads the
  CLI's message from its own server archive.
* three_kinds_of_device: grace with a Multiend device, a legacy app and a plain OMEMO 2 app: one
  send reaches each once, each its own way; the OMEMO 2 app's answer reaches alice's CLI and
  grace's own Multiend device.
* concurrent_inits_all_listed: four Multiend devices of one account start at once beside its
  legacy app: all five stay on the PEP device lists (merged, read back, merged again).
* killed_sender_reaches_apps: a send killed before its chat messages (or its archive copy) left
  is sent by the next command from the outbox; each app reads it once.
* bulk_reaches_apps: `send --lines` and `run` reach legacy apps (with and without an archive copy).
* nobody_reachable: a user with no OMEMO device anywhere is exit 3 naming what was looked at.
"""
from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import test_e2e  # noqa: E402
from test_e2e import Bed, Cli, Failure, check  # noqa: E402


class LegacyApp(Cli):
    """One device of the independent plain OMEMO app (oldmemo_xmpp_peer.py), PEP only: legacy
    OMEMO, or OMEMO 2 with protocol="omemo2"."""

    def __init__(self, bed: Bed, name: str, user: str, protocol: str = "oldmemo") -> None:
        super().__init__(bed, name, user)
        self.state = bed.work / f"{name}.json"
        self.protocol = protocol

    def cmd(self, *args: str) -> List[str]:
        return ["/usr/bin/python3", str(HERE / "oldmemo_xmpp_peer.py"), args[0], "--state", str(self.state), *args[1:]]

    def run(self, *args: str, stdin: Optional[str] = None, expect: int = 0, timeout: float = 120,
            state: Optional[Path] = None) -> List[Dict[str, Any]]:
        r = subprocess.run(self.cmd(*args), input=stdin, capture_output=True, text=True, timeout=timeout)
        self.bed.log(f"$ oldmemo {' '.join(args)}\n  -> {r.returncode}\n{r.stdout}{r.stderr}")
        if r.returncode != expect:
            raise Failure(f"{self.name} (oldmemo): {args[0]} exited {r.returncode}: {r.stderr.strip()[-500:]}")
        return [json.loads(ln) for ln in r.stdout.splitlines() if ln.strip()]

    def init(self, **kw: Any) -> Dict[str, Any]:
        out = self.run("init", "--jid", self.jid, "--password", f"{self.user}pw", "--server",
                       f"{self.bed.env.host}:{self.bed.env.c2s_port}", "--ca-file", self.bed.env.ca_file,
                       "--protocol", self.protocol)
        check(len(out) == 1 and out[0]["type"] == "device", f"init printed {out}")
        self.device = out[0]["device"]
        return out[0]

    def send(self, to: List[str], body: str, expect: int = 0) -> Dict[str, Any]:
        out = self.run("send", "--to", to[0], "--body", body, expect=expect)
        return out[0] if out else {}


class Background:
    """A listening process whose JSON lines are collected until it exits."""

    def __init__(self, bed: Bed, cmd: List[str], what: str) -> None:
        self.bed, self.what = bed, what
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: List[Dict[str, Any]] = []
        self.ready = threading.Event()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for ln in self.p.stdout:
            if not ln.strip():
                continue
            obj = json.loads(ln)
            if obj.get("type") == "listening":
                self.ready.set()
            self.lines.append(obj)

    def wait(self, timeout: float = 90) -> int:
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        self.t.join(5)
        err = self.p.stderr.read() if self.p.stderr else ""
        self.bed.log(f"$ {self.what} -> {rc}\n{json.dumps(self.lines)}\n{err}")
        self.stderr = err
        return rc

    def messages(self) -> List[Dict[str, Any]]:
        return [x for x in self.lines if x.get("type") in ("message", "undecryptable")]


def cli_listen(bed: Bed, dev: Cli, count: int, seconds: int = 60) -> Background:
    bg = Background(bed, [str(bed.cli), "listen", "--state", str(dev.state), "--count", str(count), "--seconds",
                          str(seconds)], f"{dev.name} listen")
    return bg


def app_listen(app: LegacyApp, count: int, seconds: int = 60) -> Background:
    bg = Background(app.bed, app.cmd("listen", "--count", str(count), "--seconds", str(seconds)), f"{app.name} listen")
    time.sleep(2.5)  # connected, Carbons on, presence sent
    return bg


def settle(bg: Background) -> None:
    """Until a CLI `listen` has caught up and announced itself."""
    deadline = time.time() + 30
    while time.time() < deadline and not any(x.get("type") in ("listening", "synced") for x in bg.lines):
        time.sleep(0.2)
    time.sleep(0.5)


def scenario_legacy_contact_both_ways(bed: Bed) -> None:
    a = Cli(bed, "alice-lg1", "alice")
    a.init()
    carol = LegacyApp(bed, "carol-phone", "carol")
    dev = carol.init()
    # discovery in carol's PEP: her app's device, its fingerprint as her app shows it
    listed = [d for d in a.run("devices", "--of", carol.jid) if d["type"] == "device"]
    check([(d["device"], d["protocol"], d["via"], d["fingerprint"], d["active"]) for d in listed] ==
          [(carol.device, "oldmemo", "pep", dev["fingerprint"], True)], f"devices --of carol: {listed}")
    listener = app_listen(carol, 1)
    sent = a.send(["carol"], "hello carol's phone")
    rc = listener.wait()
    got = listener.messages()
    check(rc == 0 and len(got) == 1 and got[0]["body"] == "hello carol's phone" and got[0]["encrypted"],
          f"carol's app read {got} (rc {rc}, {listener.stderr[-300:]})")
    check(got[0]["from"] == a.jid and got[0]["from_device"] == a.device, f"sender: {got[0]}")
    entries = [d for d in sent["devices"] if d["jid"] == carol.jid]
    check(entries == [{"jid": carol.jid, "device": carol.device, "protocol": "oldmemo", "via": "pep"}],
          f"sent line devices: {sent['devices']}")

    bg = cli_listen(bed, a, 1)
    settle(bg)
    carol.send([a.jid], "hello back from the phone")
    rc = bg.wait()
    got = bg.messages()
    check(rc == 0 and len(got) == 1, f"alice's listen: rc {rc}, {got}, {bg.stderr[-300:]}")
    m = got[0]
    check(m["type"] == "message" and m["body"] == "hello back from the phone" and m["protocol"] == "oldmemo"
          and m["via"] == "pep" and m["encrypted"] is True and m["from"] == carol.jid
          and m["from_device"] == carol.device, f"alice saw {m}")
    # a second round on the now-confirmed sessions, both ways
    listener = app_listen(carol, 1)
    a.send(["carol"], "second to the phone")
    listener.wait()
    check([x["body"] for x in listener.messages()] == ["second to the phone"], f"second: {listener.messages()}")
    hist = [h for h in a.history() if h.get("via") == "pep"]
    check({h["body"] for h in hist} >= {"hello carol's phone", "hello back from the phone", "second to the phone"},
          f"alice's history: {hist}")


def scenario_own_legacy_app_sees_cli(bed: Bed) -> None:
    a = Cli(bed, "alice-lg2", "alice")
    a.init()
    a.sync()
    phone = LegacyApp(bed, "alice-phone", "alice")
    phone.init()
    bob = LegacyApp(bed, "bob-phone", "bob")
    bob.init()
    listener = app_listen(phone, 1)
    sent = a.send(["bob"], "to bob, seen on my phone")
    listener.wait()
    got = listener.messages()
    check(len(got) == 1 and got[0]["body"] == "to bob, seen on my phone" and got[0]["carbon"]
          and got[0]["direction"] == "out", f"alice's phone read {got}")
    check({(d["jid"], d["device"]) for d in sent["devices"] if d["via"] == "pep"} >=
          {(phone.jid, phone.device), (bob.jid, bob.device)}, f"sent: {sent}")

    bg = cli_listen(bed, a, 1)
    settle(bg)
    phone.send([bob.jid], "from my phone to bob")
    bg.wait()
    got = bg.messages()
    check(len(got) == 1 and got[0]["body"] == "from my phone to bob" and got[0]["direction"] == "out"
          and got[0]["to"] == [bob.jid] and got[0]["from_device"] == phone.device, f"alice's CLI saw {got}")


def scenario_unencrypted_message_shown(bed: Bed) -> None:
    a = Cli(bed, "alice-lg3", "alice")
    a.init()
    a.sync()  # what the archive holds from before this device is not what this test counts
    dave = LegacyApp(bed, "dave-plain", "dave")
    dave.init()
    bg = cli_listen(bed, a, 1)
    settle(bg)
    dave.run("send-plain", "--to", a.jid, "--body", "no encryption here")
    bg.wait()
    got = bg.messages()
    check(len(got) == 1 and got[0]["encrypted"] is False and got[0]["protocol"] is None
          and got[0]["body"] == "no encryption here", f"alice saw {got}")


def scenario_forged_carbon_ignored(bed: Bed) -> None:
    """mallory wraps a message in <sent xmlns='urn:xmpp:carbons:2'> as if alice's other client had
    sent it: only alice's own server may say that, so the CLI shows nothing of it."""
    a = Cli(bed, "alice-lg4", "alice")
    a.init()
    a.sync()
    bg = cli_listen(bed, a, 1, seconds=12)
    settle(bg)
    async def forge() -> None:
        async with bed.raw_client("mallory") as c:
            c.send_raw(f"<message to='{a.jid}' type='chat' id='forge1'><sent xmlns='urn:xmpp:carbons:2'>"
                       f"<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' type='chat' "
                       f"from='{a.jid}/phone' to='bob@{bed.env.user_domain}' id='x1'>"
                       f"<body>I owe mallory 1000 EUR</body><origin-id xmlns='urn:xmpp:sid:0' id='forged-1'/>"
                       f"</message></forwarded></sent></message>")
            await asyncio.sleep(1.0)
            c.send_raw(f"<message to='{a.jid}' type='chat' id='real1'><body>a real one</body>"
                       f"<origin-id xmlns='urn:xmpp:sid:0' id='real-1'/></message>")
            await asyncio.sleep(0.5)

    asyncio.run(forge())
    bg.wait()
    got = bg.messages()
    check(len(got) == 1 and got[0]["body"] == "a real one" and got[0]["from"].startswith("mallory@"),
          f"alice saw {got}")


def scenario_offline_both_sides_catch_up(bed: Bed) -> None:
    """While alice's CLI is offline, eve's legacy app writes to her and alice's own phone app writes
    to eve: `sync` reads both from alice's server archive, in order, once (a second sync, and the
    server's offline delivery at the next listen, show nothing again). While eve's app is offline
    the CLI writes to her: her app reads it from her own server archive."""
    a = Cli(bed, "alice-lg6", "alice")
    a.init()
    a.sync()
    phone = LegacyApp(bed, "alice-phone6", "alice")
    phone.init()
    eve = LegacyApp(bed, "eve-phone", "eve")
    eve.init()
    for i in range(3):
        eve.send([a.jid], f"offline {i}")
    phone.send([eve.jid], "from alice's phone while the CLI sleeps")
    got = [x for x in a.sync() if x["type"] in ("message", "undecryptable")]
    check([(x["body"], x["direction"], x["protocol"], x["via"]) for x in got] ==
          [(f"offline {i}", "in", "oldmemo", "pep") for i in range(3)] +
          [("from alice's phone while the CLI sleeps", "out", "oldmemo", "pep")], f"alice's sync: {got}")
    check(got[-1]["from_device"] == phone.device and got[-1]["to"] == [eve.jid], f"{got[-1]}")
    check(a.sync() == [], "a second sync showed messages again")
    bg = cli_listen(bed, a, 1, seconds=8)
    rc = bg.wait()
    check(rc == 0 and bg.messages() == [], f"offline delivery showed again: {bg.messages()}")

    # the other way: eve's app offline, the CLI writes, her app catches up from her server's archive
    a.send([eve.jid], "while your phone was off")
    out = eve.run("sync")
    bodies = [x["body"] for x in out if x.get("type") == "message" and x["direction"] == "in"]
    check("while your phone was off" in bodies, f"eve's app synced {out}")


def scenario_three_kinds_of_device(bed: Bed) -> None:
    """grace has a Multiend device, a legacy app and a plain OMEMO 2 app (Kaidan-like): one `send`
    reaches all three, each once, each its own way; the OMEMO 2 app's answer shows in alice's
    `listen` (omemo2 via pep) and, as grace's own sent message, in her Multiend device's `sync`."""
    a = Cli(bed, "alice-lg7", "alice")
    a.init()
    a.sync()
    b = Cli(bed, "grace-lg7", "grace")
    b.init()
    b.sync()
    old = LegacyApp(bed, "grace-legacy7", "grace")
    old.init()
    new = LegacyApp(bed, "grace-kaidan7", "grace", protocol="omemo2")
    new.init()
    # the OMEMO 2 app listens for two: it gets the legacy app's chat message too, which must show
    # nothing there (no fallback body beside the real message)
    listeners = [app_listen(old, 1), app_listen(new, 2, seconds=15)]
    sent = a.send(["grace"], "to all of grace's devices")
    got_bob = {(d["device"], d["protocol"], d["via"]) for d in sent["devices"] if d["jid"] == b.jid}
    check(got_bob == {(b.device, "omemo2", "archive"), (new.device, "omemo2", "pep"), (old.device, "oldmemo", "pep")},
          f"sent to {sent['devices']}")
    for app, bg in zip((old, new), listeners):
        bg.wait()
        bodies = [(m["body"], m["encrypted"]) for m in bg.messages()]
        check(bodies == [("to all of grace's devices", True)], f"{app.name} read {bodies} ({bg.stderr[-300:]})")
    mine = [m for m in b.sync() if m["type"] == "message"]
    check([m["body"] for m in mine] == ["to all of grace's devices"], f"grace's Multiend device read {mine}")

    bg = cli_listen(bed, a, 1)
    settle(bg)
    new.send([a.jid], "from grace's OMEMO 2 app")
    bg.wait()
    got = bg.messages()
    check(len(got) == 1 and got[0]["body"] == "from grace's OMEMO 2 app" and got[0]["protocol"] == "omemo2"
          and got[0]["via"] == "pep" and got[0]["from_device"] == new.device, f"alice saw {got}")
    mine = [m for m in b.sync() if m["type"] == "message"]
    check([(m["body"], m["direction"]) for m in mine] == [("from grace's OMEMO 2 app", "out")],
          f"grace's Multiend device read {mine}")


def scenario_concurrent_inits_all_listed(bed: Bed) -> None:
    """judy's phone app is on her lists; then four Multiend devices of hers start at the same time.
    Each merges itself into both PEP device lists and reads them back, merging again when another
    one won the race: all five end up listed, none dropped.
    PEP has no compare-and-swap: without keeping every device seen and reading back after the
    others' writes settled, ejabberd 23.01 lost an id in two runs of three (session 8); its
    concurrent auto-creation of the bundles node also answers item-not-found once.
    """
    phone = LegacyApp(bed, "judy-phone", "judy")
    phone.init()
    clis = [Cli(bed, f"judy-c{i}", "judy") for i in range(4)]
    procs = []
    for c in clis:
        args = [str(bed.cli), "init", "--state", str(c.state), "--jid", c.jid, "--password-file",
                str(bed.password_file("judy")), "--server", f"{bed.env.host}:{bed.env.c2s_port}",
                "--ca-file", bed.env.ca_file, "--component", c.component, "--log-level", "debug"]
        procs.append(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for c, p in zip(clis, procs):
        out, err = p.communicate(timeout=120)
        bed.log(f"$ {c.name} init (concurrent) -> {p.returncode}\n{out}{err}")
        check(p.returncode == 0, f"{c.name} init: {err[-300:]}")
        c.device = json.loads(out.splitlines()[-1])["device"]
    viewer = LegacyApp(bed, "peggy-phone", "peggy")
    viewer.init()
    lists = viewer.run("devices", "--of", phone.jid)[0]
    ids = {c.device for c in clis}
    check(set(lists["oldmemo"]) == ids | {phone.device}, f"legacy list {lists['oldmemo']}, want {ids | {phone.device}}")
    check(set(lists["omemo2"]) == ids, f"OMEMO 2 list {lists['omemo2']}, want {ids}")


def scenario_killed_sender_reaches_apps(bed: Bed) -> None:
    """The sending process dies before its chat messages leave: they are in the outbox, and the
    next command sends them, so the apps get the message once. Without an outbox for chat
    messages, they were lost for PEP devices (session 7's closing note)."""
    f, ivan = Cli(bed, "frank-lg", "frank"), Cli(bed, "ivan-lg", "ivan")
    heidi, ivan_app = LegacyApp(bed, "heidi-phone", "heidi"), LegacyApp(bed, "ivan-phone", "ivan")
    for d in (f, heidi, ivan, ivan_app):
        d.init()

    def chats_pending() -> int:
        with sqlite3.connect(f.state) as db:
            return db.execute("SELECT count(*) FROM outbox WHERE origin_id LIKE 'chat:%'").fetchone()[0]

    # (1) chat messages are the whole send (heidi has an app only): killed before they left
    # (2) ivan has a Multiend device and an app: killed before the archive copy left, which is
    #     after the chat message was queued
    for to, failpoint, app in (("heidi", "before-chat-send", heidi), ("ivan", "before-send", ivan_app)):
        body = f"killed at {failpoint}"
        r = subprocess.run([str(bed.cli), "send", "--state", str(f.state), "--to", f"{to}@{bed.env.user_domain}",
                            "--body", body], env=dict(os.environ, MULTIEND_TEST_FAILPOINT=failpoint),
                           capture_output=True, text=True, timeout=120)
        bed.log(f"$ frank send (failpoint {failpoint}) -> {r.returncode}\n{r.stdout}{r.stderr}")
        check(r.returncode == 137 and r.stdout == "", f"{failpoint}: send exited {r.returncode}: {r.stderr[-300:]}")
        check(chats_pending() == 1, f"{failpoint}: {chats_pending()} chat messages in the outbox")
        listener = app_listen(app, 1, seconds=40)
        f.sync()  # the next command sends what the outbox holds
        rc = listener.wait()
        got = [m["body"] for m in listener.messages()]
        check(rc == 0 and got == [body], f"{app.name} read {got} (rc {rc}, {listener.stderr[-300:]})")
        check(chats_pending() == 0, f"{failpoint}: outbox not emptied")
        mine = [h for h in f.history() if h.get("body") == body]
        check(len(mine) == 1, f"frank's history has {mine}")
    got = [e.get("body") for e in ivan.sync()]
    check(got.count("killed at before-send") == 1, f"ivan's Multiend device read {got}")
    # a second sync sends nothing again
    listener = app_listen(heidi, 1, seconds=8)
    f.sync()
    listener.wait()
    check(listener.messages() == [], f"heidi's app got again {listener.messages()}")


def scenario_bulk_reaches_apps(bed: Bed) -> None:
    """`send --lines` and `run` reach devices in PEP as one-shot `send` does: trent has a Multiend
    device and a legacy app, victor a legacy app only. Three lines to both reach all three
    devices once each, in order; a `run` message from trent's Multiend device (his account has no
    other archive device) to victor is chat messages only."""
    a, trent = Cli(bed, "alice-lg9", "alice"), Cli(bed, "trent-lg9", "trent")
    trent_app, victor_app = LegacyApp(bed, "trent-phone", "trent"), LegacyApp(bed, "victor-phone", "victor")
    for d in (a, trent, trent_app, victor_app):
        d.init()
    a.sync()
    lines = ["bulk one", "bulk two", "bulk three"]
    listeners = [app_listen(trent_app, 3), app_listen(victor_app, 4)]
    out = a.run("send", "--to", trent.jid, "--to", victor_app.jid, "--lines", stdin="\n".join(lines) + "\n")
    sent = [o for o in out if o["type"] == "sent"]
    check(len(sent) == 3, f"send --lines printed {out}")
    for o in sent:
        got = {(d["jid"], d["device"], d["protocol"], d["via"]) for d in o["devices"] if d["jid"] != a.jid}
        check(got == {(trent.jid, trent.device, "omemo2", "archive"), (trent.jid, trent_app.device, "oldmemo", "pep"),
                      (victor_app.jid, victor_app.device, "oldmemo", "pep")}, f"sent line devices: {o['devices']}")
    with sqlite3.connect(a.state) as db:
        check(db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0, "the outbox is not empty")

    p = subprocess.Popen([str(bed.cli), "run", "--state", str(trent.state)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out_run, err_run = p.communicate(json.dumps({"send": {"to": [victor_app.jid], "body": "run to victor", "ref": 1}}) + "\n",
                                     timeout=120)
    bed.log(f"$ trent run -> {p.returncode}\n{out_run}{err_run}")
    ran = [json.loads(ln) for ln in out_run.splitlines() if ln.strip()]
    ran_sent = [o for o in ran if o["type"] == "sent"]
    check(p.returncode == 0 and len(ran_sent) == 1 and ran_sent[0]["id"].startswith("pep:")
          and {(d["jid"], d["via"]) for d in ran_sent[0]["devices"]} == {(victor_app.jid, "pep"), (trent.jid, "pep")},
          f"run printed {ran} (rc {p.returncode}, {err_run[-300:]})")

    for app, bg, want in ((trent_app, listeners[0], lines), (victor_app, listeners[1], lines + ["run to victor"])):
        bg.wait()
        got = [m["body"] for m in bg.messages()]
        check(got == want, f"{app.name} read {got}")
    mine = [m["body"] for m in trent.history() if m.get("body") in lines + ["run to victor"]]
    check(mine == lines + ["run to victor"], f"trent's Multiend device has {mine}")
    hist = [h["body"] for h in a.history() if h.get("body") in lines]
    check(hist == lines, f"alice's history: {hist}")


def scenario_nobody_reachable(bed: Bed) -> None:
    a = Cli(bed, "alice-lg5", "alice")
    a.init()
    a.send(["oscar"], "anyone there?", expect=3)
    check("oscar@" in a.last_error and "PEP" in a.last_error, a.last_error)


SCENARIOS = [scenario_legacy_contact_both_ways, scenario_own_legacy_app_sees_cli, scenario_unencrypted_message_shown,
             scenario_forged_carbon_ignored, scenario_offline_both_sides_catch_up, scenario_three_kinds_of_device,
             scenario_concurrent_inits_all_listed, scenario_killed_sender_reaches_apps,
             scenario_bulk_reaches_apps, scenario_nobody_reachable]

if __name__ == "__main__":
    sys.exit(test_e2e.run(SCENARIOS, __doc__))
