#!/usr/bin/python3
"""End-to-end tests of the `multiend` CLI through a real Prosody (or ejabberd), PostgreSQL and
the archive component, all started here (deploy/testbed) and torn down afterwards.

    tests/e2e/test_e2e.py --cli build/client/multiend --component build/server/multiend-component
                          [--server prosody|ejabberd] [--only a,b] [--keep] [-v]

Every scenario drives real CLI processes and checks what they print (docs/cli.md). Exit 0 when
all scenarios pass.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
import xmpp_client  # noqa: E402  (the integration suite's raw XMPP client)

USERS = "alice bob carol dave eve frank grace heidi ivan judy mallory oscar peggy trent victor"


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Failure(AssertionError):
    pass


def check(cond: bool, what: str) -> None:
    if not cond:
        raise Failure(what)


class Cli:
    """One device: a state file driven through the CLI."""

    def __init__(self, bed: "Bed", name: str, user: str, domain: Optional[str] = None,
                 component: Optional[str] = None) -> None:
        self.bed, self.name, self.user = bed, name, user
        self.jid = f"{user}@{domain or bed.env.user_domain}"
        self.component = component or bed.env.component_domain
        self.state = bed.work / f"{name}.db"
        self.device: Optional[int] = None

    def run(self, *args: str, stdin: Optional[str] = None, expect: int = 0, timeout: float = 120,
            state: Optional[Path] = None) -> List[Dict[str, Any]]:
        cmd = [str(self.bed.cli), args[0], "--state", str(state or self.state), *args[1:]]
        r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
        self.bed.log(f"$ {' '.join(cmd)}\n  -> {r.returncode}\n{r.stdout}{r.stderr}")
        if r.returncode != expect:
            raise Failure(f"{self.name}: {' '.join(args[:1])} exited {r.returncode}, expected {expect}: "
                          f"{r.stderr.strip()[-500:]}")
        if expect != 0:
            lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
            check(len(lines) >= 1 and lines[-1].startswith("multiend: "), f"no readable error line: {r.stderr!r}")
            self.last_error = lines[-1]
        return [json.loads(ln) for ln in r.stdout.splitlines() if ln.strip()]

    def init(self, **kw: Any) -> Dict[str, Any]:
        args = ["init", "--jid", self.jid, "--password-file", str(self.bed.password_file(self.user)),
                "--server", f"{self.bed.env.host}:{self.bed.env.c2s_port}", "--ca-file", self.bed.env.ca_file,
                "--component", self.component, "--label", self.name]
        if kw.get("no_pep"):
            args.append("--no-pep")
        out = self.run(*args)
        check(len(out) == 1 and out[0]["type"] == "device", f"init printed {out}")
        self.device = out[0]["device"]
        return out[0]

    def send(self, to: List[str], body: str, expect: int = 0) -> Dict[str, Any]:
        args = ["send"]
        for t in to:
            args += ["--to", t if "@" in t else f"{t}@{self.bed.env.user_domain}"]
        out = self.run(*args, "--body", body, expect=expect)
        if expect != 0:
            return {}
        sent = [o for o in out if o["type"] == "sent" and not o.get("resent")]
        check(len(sent) == 1 and sent[0]["id"], f"send printed {out}")
        return sent[0]

    def sync(self, state: Optional[Path] = None) -> List[Dict[str, Any]]:
        out = self.run("sync", state=state, timeout=600)
        check(out and out[-1]["type"] == "synced", f"sync printed {out[-3:]}")
        return out[:-1]

    def history(self) -> List[Dict[str, Any]]:
        return self.run("history")


class Peer(Cli):
    """One device of the independent twomemo-based client (tests/e2e/twomemo_xmpp_peer.py)."""

    def __init__(self, bed: "Bed", name: str, user: str) -> None:
        super().__init__(bed, name, user)
        self.state = bed.work / f"{name}.json"

    def run(self, *args: str, stdin: Optional[str] = None, expect: int = 0, timeout: float = 180,
            state: Optional[Path] = None) -> List[Dict[str, Any]]:
        cmd = ["/usr/bin/python3", str(HERE / "twomemo_xmpp_peer.py"), args[0], "--state", str(self.state), *args[1:]]
        r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
        self.bed.log(f"$ {' '.join(cmd)}\n  -> {r.returncode}\n{r.stdout}{r.stderr}")
        if r.returncode != expect:
            raise Failure(f"{self.name} (twomemo): {args[0]} exited {r.returncode}: {r.stderr.strip()[-500:]}")
        check("protocol deviation" not in r.stderr, f"twomemo peer saw a protocol deviation: {r.stderr[-500:]}")
        return [json.loads(ln) for ln in r.stdout.splitlines() if ln.strip()]

    def init(self, **kw: Any) -> Dict[str, Any]:
        out = self.run("init", "--jid", self.jid, "--password", f"{self.user}pw", "--server",
                       f"{self.bed.env.host}:{self.bed.env.c2s_port}", "--ca-file", self.bed.env.ca_file,
                       "--component", self.bed.env.component_domain)
        check(len(out) == 1 and out[0]["type"] == "device", f"init printed {out}")
        self.device = out[0]["device"]
        return out[0]


class Bed:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cli = Path(args.cli).resolve()
        self.component_bin = Path(args.component).resolve()
        self.work = Path(tempfile.mkdtemp(prefix="multiend-e2e."))
        self.work.chmod(0o755)  # the testbed's PostgreSQL runs as `postgres` below it
        self.tb_dir = self.work / "testbed"
        self.logf = open(self.work / "e2e.log", "w")
        self.proc: Optional[subprocess.Popen] = None
        self.env: Any = None

    def log(self, s: str) -> None:
        self.logf.write(s + "\n")
        self.logf.flush()
        if self.args.verbose:
            print(s, file=sys.stderr)

    def password_file(self, user: str) -> Path:
        p = self.work / f"{user}.pw"
        if not p.exists():
            p.write_text(f"{user}pw\n")
            p.chmod(0o600)
        return p

    def up(self) -> None:
        r = subprocess.run([str(REPO / "deploy" / "testbed"), "up", "--dir", str(self.tb_dir), "--server",
                            self.args.server, "--users", USERS], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"deploy/testbed up failed:\n{r.stderr[-3000:]}")
        self.env = xmpp_client.TestbedEnv.from_file(self.tb_dir / "env")
        self.start_component()

    def start_component(self, **extra: Any) -> None:
        cfg = {"xmpp_host": self.env.host, "component_port": self.env.component_port,
               "component_domain": self.env.component_domain, "user_domain": self.env.user_domain,
               "database_url": self.env.pg_url, "http_address": f"127.0.0.1:{free_port()}", "log_level": "info",
               **extra}
        (self.work / "component.json").write_text(json.dumps(cfg))
        os.chmod(self.work / "component.json", 0o600)  # it holds the database password
        env = dict(os.environ, MULTIEND_COMPONENT_SECRET=self.env.component_secret)
        log = self.work / "component.log"
        start = len(log.read_text()) if log.exists() else 0  # a restart appends
        self.comp_log = open(log, "a")
        self.proc = subprocess.Popen([str(self.component_bin), "--config", str(self.work / "component.json")],
                                     env=env, stdout=self.comp_log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            if "authenticated as" in log.read_text()[start:]:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("the component did not connect:\n" + (self.work / "component.log").read_text()[-2000:])

    def stop_component(self) -> None:
        """Stops the component, checking that it exited cleanly (a sanitizer report fails it)."""
        assert self.proc is not None
        self.proc.terminate()
        rc = self.proc.wait(30)
        if rc != 0:
            raise Failure(f"the component exited {rc} on SIGTERM:\n" + (self.work / "component.log").read_text()[-2000:])

    def restart_component(self, **extra: Any) -> None:
        """Stops the component (checking it exited cleanly) and starts it with extra settings."""
        self.stop_component()
        self.start_component(**extra)

    def signal_component(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def down(self) -> Optional[str]:
        """Tears down; what went wrong with the component's exit (a sanitizer report, a crash), if anything."""
        problem = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                rc = self.proc.wait(15)
                if rc != 0:
                    problem = f"the component exited {rc} on SIGTERM"
            except subprocess.TimeoutExpired:
                self.proc.kill()
                problem = "the component ignored SIGTERM for 15 s"
        elif self.proc is not None and self.proc.returncode not in (0, None):
            problem = f"the component had exited with {self.proc.returncode}"
        subprocess.run([str(REPO / "deploy" / "testbed"), "down", "--dir", str(self.tb_dir)],
                       capture_output=True, text=True, timeout=120)
        if problem:
            comp = self.work / "component.log"
            if comp.exists():
                print("--- component log (tail) ---\n" + comp.read_text()[-3000:], file=sys.stderr)
        if self.args.keep:
            print(f"kept {self.work}", file=sys.stderr)
        else:
            shutil.rmtree(self.work, ignore_errors=True)
        return problem

    def psql(self, sql: str) -> str:
        r = subprocess.run(["psql", self.env.pg_url, "-At", "-c", sql], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"psql failed: {r.stderr}")
        return r.stdout

    def raw_client(self, user: str) -> xmpp_client.Client:
        return xmpp_client.Client(self.env, user)


def key(e: Dict[str, Any]) -> tuple:
    return (e["id"], e["type"], e["from"], e["from_device"], e["body"], e["direction"])


def messages(h: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [e for e in h if e["type"] == "message"]


# --------------------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------------------

def scenario_every_device_same_history(bed: Bed) -> None:
    """alice has 3 devices, bob 2, carol 1; messages in every direction; everyone agrees."""
    a = [Cli(bed, f"alice{i}", "alice") for i in (1, 2, 3)]
    b = [Cli(bed, f"bob{i}", "bob") for i in (1, 2)]
    c = [Cli(bed, "carol1", "carol")]
    for d in a + b + c:
        d.init()
    sent: List[tuple] = []  # (stanza-id, sender device, body, participants)
    plan = [(a[0], ["bob"]), (b[0], ["alice"]), (c[0], ["alice", "bob"]), (a[1], ["carol"]),
            (b[1], ["alice", "carol"]), (a[2], ["bob", "carol"]), (c[0], ["bob"]), (a[0], ["alice"])]
    for round_ in range(2):
        for sender, to in plan:
            body = f"r{round_} from {sender.name} to {','.join(to)} ✓ <&>"
            s = sender.send(to, body)
            recipients = {f"{t}@{bed.env.user_domain}" for t in to}
            # Every device of the recipients and the sender's other devices got a key.
            want = {(d.jid, d.device) for d in a + b + c if d.jid in recipients | {sender.jid}} - {(sender.jid, sender.device)}
            got = {(x["jid"], x["device"]) for x in s["devices"]}
            check(got == want, f"{sender.name} encrypted for {sorted(got)}, expected {sorted(want)}")
            sent.append((s["id"], sender, body, recipients | {sender.jid}))
    for d in a + b + c:
        d.sync()
    by_account: Dict[str, List[tuple]] = {}
    for d in a + b + c:
        h = d.history()
        mine = [x for x in sent if d.jid in x[3]]
        check([e["id"] for e in h] == [x[0] for x in mine],
              f"{d.name} history ids {[e['id'] for e in h]} != expected {[x[0] for x in mine]}")
        for e, (sid, sender, body, _) in zip(h, mine):
            check(e["type"] == "message" and e["body"] == body and e["from"] == sender.jid
                  and e["from_device"] == sender.device, f"{d.name}: entry {e} != ({sid}, {sender.name}, {body!r})")
            check(e["direction"] == ("out" if sender.jid == d.jid else "in"), f"{d.name}: direction of {e}")
        rows = [key(e) for e in h]
        prev = by_account.setdefault(d.jid, rows)
        check(prev == rows, f"{d.name} disagrees with its account's other devices")
    bed.devices = {"alice": a, "bob": b, "carol": c}


def scenario_offline_device_catches_up(bed: Bed) -> None:
    """A device offline while 300 messages flow catches up completely with sync."""
    f1, f2 = Cli(bed, "frank1", "frank"), Cli(bed, "frank2", "frank")
    g1 = Cli(bed, "grace1", "grace")
    for d in (f1, f2, g1):
        d.init()
    ids = []
    for i in range(300):
        s = (g1.send(["frank"], f"g{i}") if i % 3 else f1.send(["grace"], f"f{i}"))
        ids.append(s["id"])
    t0 = time.time()
    got = f2.sync()
    bed.log(f"frank2 caught up on {len(got)} messages in {time.time() - t0:.1f} s")
    check([e["id"] for e in got] == ids, f"frank2 got {len(got)} of 300, in order: {[e['id'] for e in got][:5]}…")
    check(all(e["type"] == "message" for e in got), "undecryptable entries in the catch-up")
    check([e["body"] for e in got] == [f"g{i}" if i % 3 else f"f{i}" for i in range(300)], "bodies differ")
    check(f2.sync() == [], "a second sync found more")


def scenario_late_and_removed_devices(bed: Bed) -> None:
    """A device added later sees only what came after it joined; a removed one gets nothing new."""
    h1, i1 = Cli(bed, "heidi1", "heidi"), Cli(bed, "ivan1", "ivan")
    h1.init()
    i1.init()
    old = i1.send(["heidi"], "before heidi2 existed")
    h2 = Cli(bed, "heidi2", "heidi")
    h2.init()
    new = i1.send(["heidi"], "after heidi2 joined")
    got = {e["id"]: e for e in h2.sync()}
    check(got[old["id"]]["type"] == "undecryptable" and
          got[old["id"]]["reason"].startswith("not-encrypted-for-this-device"), f"old message: {got.get(old['id'])}")
    check(got[new["id"]]["type"] == "message" and got[new["id"]]["body"] == "after heidi2 joined",
          f"new message: {got.get(new['id'])}")
    # heidi1 removes heidi2: ivan no longer encrypts for it, and it reads nothing new.
    out = h1.run("remove-device", str(h2.device))
    check(out == [{"type": "removed", "jid": h1.jid, "device": h2.device}], f"remove-device printed {out}")
    later = i1.send(["heidi"], "after heidi2 was removed")
    check((h2.jid, h2.device) not in {(x["jid"], x["device"]) for x in later["devices"]}, "removed device got a key")
    got = {e["id"]: e for e in h2.sync()}
    check(got[later["id"]]["type"] == "undecryptable", f"removed device read {got.get(later['id'])}")
    check(h1.sync()[-1]["body"] == "after heidi2 was removed", "heidi1 missed the message")
    h2.send(["ivan"], "from a removed device", expect=3)
    devs = {d["device"]: d for d in h1.run("devices") if d["type"] == "device"}
    check(h2.device not in devs or not devs[h2.device]["active"], f"heidi2 still listed: {devs}")


def scenario_forward_secrecy_on_disk(bed: Bed) -> None:
    """A copy of a device's state taken after it read message N opens no message before N."""
    j1, e1 = Cli(bed, "judy1", "judy"), Cli(bed, "eve1", "eve")
    j1.init()
    e1.init()
    before = [e1.send(["judy"], f"secret {i}")["id"] for i in range(5)]
    before.append(j1.send(["eve"], "reply")["id"])
    before += [e1.send(["judy"], f"secret {i}")["id"] for i in range(5, 8)]
    j1.sync()
    check([e["id"] for e in j1.history() if e["direction"] == "in"] == [x for x in before if x != before[5]],
          "judy did not read the messages")
    stolen = bed.work / "judy1-stolen.db"
    shutil.copy(j1.state, stolen)
    after = [e1.send(["judy"], f"unread {i}")["id"] for i in range(3)]
    # The thief forgets the plaintext history the copy carries and asks the archive again.
    with sqlite3.connect(stolen) as db:
        db.execute("DELETE FROM history_recipients")
        db.execute("DELETE FROM history")
        db.execute("DELETE FROM meta WHERE key = 'last_stanza_id'")
    got = {e["id"]: e for e in j1.sync(state=stolen)}
    for sid in before:
        if sid == before[5]:
            continue  # judy's own message: never decryptable by the sender's own device
        # Its key is gone: a re-read cannot be authenticated, so it is ignored (XEP-0384).
        check(sid not in got or got[sid]["type"] == "undecryptable",
              f"stolen state opened an already-read message: {got.get(sid)}")
    for sid in after:
        check(got[sid]["type"] == "message", f"unread message {sid}: {got[sid]}")


def scenario_killed_sender_exactly_once(bed: Bed) -> None:
    """Kill the sending process between send and receipt: the message arrives exactly once."""
    a = bed.devices["alice"][0]
    b = bed.devices["bob"][0]
    b.sync()
    # MULTIEND_TEST_FAILPOINT ends the process with _Exit (as SIGKILL would) right before the
    # stanza leaves, or right after the component's receipt arrived but before it was recorded.
    for failpoint in ("before-send", "before-receipt"):
        body = f"exactly once: {failpoint}"
        last_id = int(bed.psql("SELECT coalesce(max(id), 0) FROM messages").strip())
        r = subprocess.run([str(bed.cli), "send", "--state", str(a.state), "--to", b.jid, "--body", body],
                           env=dict(os.environ, MULTIEND_TEST_FAILPOINT=failpoint), capture_output=True, text=True,
                           timeout=60)
        check(r.returncode == 137 and r.stdout == "", f"{failpoint}: send exited {r.returncode}: {r.stdout}{r.stderr}")
        with sqlite3.connect(a.state) as db:
            pending = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        check(pending == 1, f"{failpoint}: {pending} messages in the outbox")
        out = a.sync()  # resends the outbox entry: same stanza, same origin-id
        check(not any(e.get("body") == body for e in out), f"{failpoint}: sync showed our own message as new")
        got = [e for e in b.sync() if e.get("body") == body]
        check(len(got) == 1, f"bob got {len(got)} copies ({failpoint})")
        mine = [e for e in a.history() if e.get("body") == body]
        check(len(mine) == 1 and mine[0]["id"] == got[0]["id"], f"alice's history: {mine} ({failpoint})")
        # Every message alice stored since (those with a payload: not ratchet upkeep) is this
        # one: a resend under another origin-id would be a second row.
        rows = bed.psql(f"SELECT string_agg(id::text, ',') FROM messages WHERE sender_bare = '{a.jid}' "
                        f"AND id > {last_id} AND stanza LIKE '%<payload>%'").strip()
        check(rows == str(int(got[0]["id"])), f"archive rows from alice since: {rows} (want {got[0]['id']})")
        with sqlite3.connect(a.state) as db:
            pending = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        check(pending == 0, f"{failpoint}: outbox not emptied")
    for d in bed.devices["alice"][1:]:
        bodies = [e.get("body") for e in d.sync()]
        check(bodies.count("exactly once: before-send") == 1 and bodies.count("exactly once: before-receipt") == 1,
              f"{d.name} saw {bodies}")
    check(len(bed.psql("SELECT 1 FROM messages")) > 0, "no archive rows")


def scenario_live_listen_and_forgery(bed: Bed) -> None:
    """listen prints fan-out as it arrives and ignores a forged 'component' message sent to its resource."""
    a = bed.devices["alice"][1]
    b = bed.devices["bob"][1]
    b.sync()
    p = subprocess.Popen([str(bed.cli), "listen", "--state", str(b.state), "--seconds", "30", "--count", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Wait for the ready line: messages sent before it would arrive through catch-up, and the
    # forgery must reach an online resource (Prosody drops a headline to a bare JID with none).
    first = p.stdout.readline()
    ready = json.loads(first) if first.strip() else {}
    check(ready.get("type") == "listening" and "/" in ready.get("jid", ""), f"listen did not announce itself: {first!r}")
    full_jid = ready["jid"]

    async def forge() -> None:
        async with bed.raw_client("mallory") as m:
            fake = (f"<message to='{full_jid}' type='headline'><forwarded xmlns='urn:xmpp:forward:0'>"
                    f"<message xmlns='jabber:client' from='{a.jid}/x' to='{bed.env.component_domain}'>"
                    f"<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'/><payload>AAAA</payload></encrypted>"
                    f"</message></forwarded><stanza-id xmlns='urn:xmpp:sid:0' by='{bed.env.component_domain}' "
                    f"id='99999999'/></message>")
            m.send_raw(fake)
            await asyncio.sleep(0.5)

    asyncio.run(forge())
    s1 = a.send(["bob"], "live 1")
    s2 = a.send(["bob"], "live 2")
    out, err = p.communicate(timeout=60)
    check(p.returncode == 0, f"listen exited {p.returncode}: {err}")
    lines = [json.loads(x) for x in out.splitlines() if x.strip()]
    check([x["id"] for x in lines] == [s1["id"], s2["id"]], f"listen printed {lines}")
    check("99999999" not in out, "the forged message was shown")
    # It reached listen's resource and the client dropped it (not lost on the way).
    check(f"ignored a forwarded message from {bed.env.jid('mallory')}" in err, f"the forgery never arrived: {err!r}")


def scenario_tampered_and_replayed(bed: Bed) -> None:
    """Replayed ciphertext is ignored silently; a tampered payload is reported as tampered; in
    both cases the session goes on."""
    import base64
    import xml.etree.ElementTree as ET
    a, b = bed.devices["alice"][2], bed.devices["bob"][0]
    b.sync()
    s = a.send(["bob"], "original")
    check([e.get("body") for e in b.sync()] == ["original"], "bob could not read alice's message")

    # The stored stanza, sent again as a new message: its key is gone, so it cannot be
    # authenticated, and duplicates are ignored silently (XEP-0384).
    stanza = bed.psql(f"SELECT stanza FROM messages WHERE id = {int(s['id'])}").strip()
    enc = ET.fromstring(stanza).find("{urn:xmpp:omemo:2}encrypted")
    check(enc is not None, f"no encrypted element in the archived stanza: {stanza[:200]}")

    async def resend() -> str:
        async with bed.raw_client("alice") as c:
            mid, _ = c.send_archive_message(ET.tostring(enc, encoding="unicode"))
            return await c.wait_receipt(mid, timeout=10)

    replayed = asyncio.run(resend())
    got = {e["id"]: e for e in b.sync()}
    check(replayed not in got, f"replay shown: {got.get(replayed)}")
    check(all(e["id"] != replayed for e in b.history()), "the replay reached the history")

    # A lying server flips one bit of a message bob has not read yet.
    s2 = a.send(["bob"], "to be tampered with")
    row = ET.fromstring(bed.psql(f"SELECT stanza FROM messages WHERE id = {int(s2['id'])}").strip())
    payload = row.find("{urn:xmpp:omemo:2}encrypted/{urn:xmpp:omemo:2}payload")
    raw = bytearray(base64.b64decode(payload.text))
    raw[len(raw) // 2] ^= 0x01
    payload.text = base64.b64encode(bytes(raw)).decode()
    bed.psql(f"UPDATE messages SET stanza = $q${ET.tostring(row, encoding='unicode')}$q$ WHERE id = {int(s2['id'])}")
    got = {e["id"]: e for e in b.sync()}
    check(got.get(s2["id"], {}).get("type") == "undecryptable" and got[s2["id"]]["reason"].startswith("tampered"),
          f"tampered: {got.get(s2['id'])}")
    after = a.send(["bob"], "still fine")
    check(messages(b.sync())[-1]["id"] == after["id"], "bob cannot read alice after the tampering")


def scenario_trust_and_changed_identity(bed: Bed) -> None:
    """Distrusted devices get no keys; verifying one device ends blind trust for that contact;
    a known device id presenting a new identity key is refused and reported."""
    a = bed.devices["alice"][0]
    b1, b2 = bed.devices["bob"]

    def targets(s: Dict[str, Any]) -> set:
        return {(x["jid"], x["device"]) for x in s["devices"]}

    out = a.run("distrust", b1.jid, str(b2.device))
    check(out[0]["trust"] == "distrusted", f"distrust printed {out}")
    s = a.send(["bob"], "not for bob2")
    check((b2.jid, b2.device) not in targets(s) and (b1.jid, b1.device) in targets(s), f"sent to {s}")
    check(any(x["device"] == b2.device and x["reason"] == "distrusted" for x in s["skipped"]), f"skipped {s}")
    check({e["id"]: e for e in b2.sync()}[s["id"]]["type"] == "undecryptable", "bob2 read a message not meant for it")
    # Verifying needs the fingerprint compared out of band (bob1 shows its own).
    fp = b1.run("fingerprint")[0]["fingerprint"]
    a.run("trust", b1.jid, str(b1.device), expect=1)
    check("--fingerprint" in a.last_error, a.last_error)
    wrong = ("0" if fp[0] != "0" else "1") + fp[1:]
    a.run("trust", b1.jid, str(b1.device), "--fingerprint", wrong, expect=3)
    check("does not match" in a.last_error, a.last_error)
    out = a.run("trust", b1.jid, str(b1.device), "--fingerprint", fp.upper().replace(" ", ""))
    check(out[0]["trust"] == "verified" and out[0]["fingerprint"] == fp, f"trust printed {out}")
    b3 = Cli(bed, "bob3", "bob")
    b3.init()
    s = a.send(["bob"], "only verified devices")
    check((b3.jid, b3.device) not in targets(s), "an unverified new device got a key after bob1 was verified")
    a.run("trust", b3.jid, str(b3.device), "--blindly")
    s = a.send(["bob"], "bob3 verified now")
    check((b3.jid, b3.device) in targets(s), f"bob3 verified but skipped: {s}")
    listed = {d["device"]: d["trust"] for d in a.run("devices", "--of", b1.jid) if d["type"] == "device"}
    check(listed.get(b1.device) == "verified" and listed.get(b2.device) == "distrusted", f"devices: {listed}")

    # Someone (a compromised account or server) speaks as bob1's device id with another key.
    async def impostor() -> str:
        async with xmpp_client.Client(bed.env, "bob", "impostor") as c:
            d = await xmpp_client.Device.create(c, device_id=b1.device)
            recips = [(x.jid, x.device) for x in bed.devices["alice"]] + [(b2.jid, b2.device), (b3.jid, b3.device)]
            enc = await d.encrypt(b"trust me", recips)
            _, _, stanza_id = await c.send_and_wait(enc)
            return stanza_id

    sid = asyncio.run(impostor())
    got = {e["id"]: e for e in a.sync()}
    check(got[sid]["type"] == "undecryptable" and got[sid]["reason"].startswith("identity-changed"),
          f"alice accepted a new identity key for bob1: {got.get(sid)}")
    # The real bob1 still gets through: the refused key exchange left its session untouched.
    s = b1.send(["alice"], "the real bob1")
    check([e["body"] for e in a.sync() if e["id"] == s["id"]] == ["the real bob1"], "alice lost bob1's session")


def scenario_interop_with_twomemo(bed: Bed) -> None:
    """The CLI and an independent twomemo-based client exchange messages through the component
    in both directions, key exchanges included, on mixed accounts."""
    o1, o2 = Cli(bed, "oscar-cli", "oscar"), Peer(bed, "oscar-twomemo", "oscar")
    p1, p2 = Peer(bed, "peggy-twomemo", "peggy"), Cli(bed, "peggy-cli", "peggy")
    everyone = [o1, o2, p1, p2]
    for d in everyone:
        d.init()
    sent = []
    seen: Dict[str, Dict[str, Any]] = {d.name: {} for d in everyone}  # what each device printed
    for sender, to, body in [(o1, "peggy", "cli → twomemo (key exchange)"), (p1, "oscar", "twomemo → cli (key exchange)"),
                             (o1, "peggy", "cli → twomemo again"), (p1, "oscar", "twomemo → cli again"),
                             (o2, "peggy", "twomemo own-account → both"), (p2, "oscar", "cli → both of oscar")]:
        s = sender.send([to], body)
        want = {(d.jid, d.device) for d in everyone if d is not sender and d.jid in (sender.jid, f"{to}@{bed.env.user_domain}")}
        got = {(x["jid"], x["device"]) for x in s["devices"]}
        check(got == want, f"{sender.name} encrypted for {sorted(got)}, expected {sorted(want)}")
        sent.append((s["id"], sender, body))
        for d in everyone:
            if d is not sender:
                for e in d.sync():
                    seen[d.name][e["id"]] = e
    for d in everyone:
        for sid, sender, body in sent:
            if sender is d:
                continue
            e = seen[d.name].get(sid)
            check(e is not None and e["type"] == "message" and e["body"] == body and e["from_device"] == sender.device,
                  f"{d.name} printed {e} for {body!r}")
    for d in (o1, p2):  # and the CLI devices hold all of it, their own included, in one order
        check([(e["id"], e["body"]) for e in d.history()] == [(sid, body) for sid, _, body in sent],
              f"{d.name} history differs")


def scenario_prekeys_refilled(bed: Bed) -> None:
    """When others claim most one-time prekeys, the device publishes fresh ones: live on the
    component's prekeys-low notice, and on the next start when it missed the notice."""
    c = bed.devices["carol"][0]
    unclaimed = (f"SELECT count(*) FROM prekeys WHERE owner = '{c.jid}' AND device_id = {c.device} "
                 f"AND claimed_by IS NULL")

    async def claim(n: int, account: str) -> None:
        # One account may take 100 fresh prekeys of carol per hour (prekey_claims_per_hour):
        # each phase claims from an account of its own.
        gate = asyncio.Semaphore(16)

        async def one(i: int) -> None:
            async with gate:
                async with xmpp_client.Client(bed.env, account, f"claimer{i}-{time.time_ns()}") as m:
                    await m.fetch_bundle(bed.env.node_jid("carol"), c.device)

        await asyncio.gather(*(one(i) for i in range(n)))

    published = (f"SELECT bundle_published_at FROM devices WHERE owner = '{c.jid}' AND device_id = {c.device}")

    # Offline: the notice goes nowhere; the next start sees fewer than 25 and refills.
    before = int(bed.psql(unclaimed))
    asyncio.run(claim(before - 20, "mallory"))
    check(int(bed.psql(unclaimed)) == 20, f"unclaimed after claiming: {bed.psql(unclaimed)}")
    c.sync()
    check(int(bed.psql(unclaimed)) >= 100, f"not refilled on start: {bed.psql(unclaimed)} unclaimed")
    # Online: listen acts on the component's headline.
    p = subprocess.Popen([str(bed.cli), "listen", "--state", str(c.state), "--seconds", "30"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = p.stdout.readline()
        check('"listening"' in ready, f"listen did not announce itself: {ready!r} {p.stderr.read() if p.poll() is not None else ''}")
        at_start = bed.psql(published).strip()
        asyncio.run(claim(int(bed.psql(unclaimed)) - 20, "oscar"))
        deadline = time.time() + 15
        while time.time() < deadline and int(bed.psql(unclaimed)) < 25:
            time.sleep(0.2)
        check(int(bed.psql(unclaimed)) >= 25, f"not refilled while online: {bed.psql(unclaimed)} unclaimed")
        check(bed.psql(published).strip() != at_start, "the bundle was not republished while listen ran")
    finally:
        p.terminate()
        p.communicate(timeout=30)
    # Sessions still build from the new prekeys.
    check(bed.devices["bob"][0].send(["carol"], "after the refill")["id"], "send failed")
    check([e["body"] for e in c.sync()] == ["after the refill"], "carol could not read it")


def scenario_bad_input(bed: Bed) -> None:
    """Wrong password, unreachable server, untrusted certificate, unknown recipient."""
    a = bed.devices["alice"][0]
    before = a.history()
    bad_pw = bed.work / "wrong.pw"
    bad_pw.write_text("not-the-password\n")
    bad_pw.chmod(0o644)
    r = subprocess.run([str(bed.cli), "sync", "--state", str(a.state), "--password-file", str(bad_pw)],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 2 and "authentication failed" in r.stderr, f"wrong password: {r.returncode} {r.stderr}")
    check("readable by other users" in r.stderr, f"no warning about a world-readable password file: {r.stderr}")
    a.send(["nobody"], "hello?", expect=3)
    check("nobody@" in a.last_error, a.last_error)
    check(a.history() == before, "a failed command changed the history")
    d = Cli(bed, "dave-unreachable", "dave")
    d.run("init", "--jid", d.jid, "--password-file", str(bed.password_file("dave")), "--server", "127.0.0.1:1",
          "--ca-file", bed.env.ca_file, expect=2)
    check(not d.state.exists(), "a failed init left a state file")
    d.run("init", "--jid", d.jid, "--password-file", str(bed.password_file("dave")), "--server",
          f"{bed.env.host}:{bed.env.c2s_port}", expect=2)
    check("certif" in a.last_error or "certif" in d.last_error, d.last_error)
    check(not d.state.exists(), "a failed init left a state file")
    d.run("sync", expect=4)
    Cli(bed, "x", "alice").run("send", "--to", "bob@localhost", expect=1)  # no --body, no stdin text
    a.run("history", "--limit", "0", expect=1)


def scenario_contact_on_another_domain(bed: Bed) -> None:
    """bob@elsewhere.test is not our bob@localhost. With no archive on elsewhere.test, a send to
    him is exit 3 naming what was looked at; once elsewhere.test has its own archive, his devices
    are read there. An archive-only device of his (--no-pep) cannot be reached from here (the
    component delivers within its domain); one that is also in his PEP gets a legacy OMEMO chat
    message. None of the local bob's prekeys is ever claimed."""
    other = bed.env.raw.get("MULTIEND_OTHER_DOMAIN")
    if not other:
        bed.log("skipped: this testbed has no second domain (Prosody only)")
        return
    remote = f"bob@{other}"
    a = Cli(bed, "alice-x1", "alice")
    local_bob = Cli(bed, "bob-x1", "bob")
    a.init()
    local_bob.init()

    def claimed_here() -> str:
        return bed.psql("SELECT count(*) FROM prekeys WHERE owner = 'bob@localhost' AND claimed_by IS NOT NULL").strip()

    def archived() -> str:
        return bed.psql("SELECT count(*) FROM messages").strip()

    before = (claimed_here(), archived())
    a.send([remote], "for the other bob", expect=3)
    # Prosody lists the route of the component that is not running and answers for it with wait
    check(other in a.last_error and "no OMEMO device" in a.last_error and "unreachable" in a.last_error, a.last_error)
    a.run("devices", "--of", remote, expect=3)
    check(f"disco#items of {other}" in a.last_error, a.last_error)
    check((claimed_here(), archived()) == before, f"prekeys claimed or messages archived: {before} -> "
                                                   f"{(claimed_here(), archived())}")

    r = subprocess.run([str(REPO / "deploy" / "testbed"), "start-component", "--other", "--dir", str(bed.tb_dir),
                        "--bin", str(bed.component_bin)], capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, f"second component: {r.stderr[-1000:]}")
    other_component = bed.env.raw["MULTIEND_OTHER_COMPONENT_DOMAIN"]
    # An archive-only device there (init --no-pep): its archive is found, and cannot deliver here.
    far_bob = Cli(bed, "bob-far", "bob", domain=other, component=other_component)
    far_bob.init(no_pep=True)
    out = a.run("devices", "--of", remote)
    listed = [d for d in out if d["type"] == "device"]
    check({d["device"] for d in listed} == {far_bob.device}, f"devices of {remote}: {listed}, want {far_bob.device}")
    # an archive-only user publishes nothing in PEP: both lists said to be unreadable, not hidden
    check(sum(1 for d in out if d["type"] == "skipped" and "not readable" in d["reason"]) == 2, f"{out}")
    a.send([remote], "for the other bob", expect=3)
    check(other_component in a.last_error and "PEP" in a.last_error, a.last_error)
    check((claimed_here(), archived()) == before, "a refused send claimed prekeys or archived a message")
    # and the contact on the other domain sees the same rule from his side
    far_bob.send(["alice@localhost"], "hello from afar", expect=3)
    check(bed.env.component_domain in far_bob.last_error, far_bob.last_error)

    # A device there that is also in its account's PEP (the default) is reached across domains,
    # by an OMEMO 2 chat message, and nothing of the local bob's is touched.
    far_bob2 = Cli(bed, "bob-far2", "bob", domain=other, component=other_component)
    far_bob2.init()
    p = subprocess.Popen([str(bed.cli), "listen", "--state", str(far_bob2.state), "--seconds", "30", "--count", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = p.stdout.readline()
    check(json.loads(first).get("type") == "listening" if first.strip() else False, f"listen: {first!r}")
    sent = a.send([remote], "across the domains")
    theirs = [d for d in sent["devices"] if d["jid"] == remote]
    check(theirs == [{"jid": remote, "device": far_bob2.device, "protocol": "omemo2", "via": "pep"}],
          f"sent to {sent['devices']}")
    out, err = p.communicate(timeout=60)
    lines = [json.loads(x) for x in out.splitlines() if x.strip()]
    check(p.returncode == 0 and [(x["body"], x["protocol"], x["via"]) for x in lines] ==
          [("across the domains", "omemo2", "pep")], f"far bob read {lines} ({err[-300:]})")
    check(claimed_here() == before[0], "a send to the other bob claimed a prekey of the local bob")


def scenario_archive_holds_ciphertext_only(bed: Bed) -> None:
    """Every body sent in this run is absent from the database."""
    dump = bed.psql("SELECT stanza FROM messages")
    for word in ("exactly once", "secret 3", "from alice1", "still fine", "after heidi2 joined"):
        check(word not in dump, f"plaintext {word!r} found in the archive")


SCENARIOS: List[Callable[[Bed], None]] = [
    scenario_every_device_same_history,
    scenario_offline_device_catches_up,
    scenario_late_and_removed_devices,
    scenario_forward_secrecy_on_disk,
    scenario_killed_sender_exactly_once,
    scenario_live_listen_and_forgery,
    scenario_tampered_and_replayed,
    scenario_interop_with_twomemo,
    scenario_prekeys_refilled,
    scenario_trust_and_changed_identity,
    scenario_bad_input,
    scenario_contact_on_another_domain,
    scenario_archive_holds_ciphertext_only,
]


def main() -> int:
    return run(SCENARIOS, __doc__)


def run(scenarios: List[Callable[[Bed], None]], doc: Optional[str]) -> int:
    """Starts the testbed, runs the scenarios in order (each reported PASS/FAIL), tears down."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", default=str(REPO / "build" / "client" / "multiend"))
    ap.add_argument("--component", default=str(REPO / "build" / "server" / "multiend-component"))
    ap.add_argument("--server", default="prosody", choices=["prosody", "ejabberd"])
    ap.add_argument("--only", default="")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    only = {x for x in args.only.split(",") if x}
    bed = Bed(args)
    failed = 0
    try:
        bed.up()
        for sc in scenarios:
            name = sc.__name__.removeprefix("scenario_")
            if only and name not in only:
                continue
            t0 = time.time()
            try:
                sc(bed)
                print(f"PASS {name} ({time.time() - t0:.1f} s)", flush=True)
            except Exception as e:  # noqa: BLE001 — report every scenario
                failed += 1
                print(f"FAIL {name}: {e}", flush=True)
                if args.verbose or not isinstance(e, Failure):
                    traceback.print_exc()
    except Exception as e:  # noqa: BLE001
        print(f"SETUP FAILED: {e}", flush=True)
        failed += 1
    finally:
        if failed and not args.keep:
            log = bed.work / "e2e.log"
            if log.exists():
                print("--- last CLI calls ---\n" + log.read_text()[-4000:], file=sys.stderr)
            comp = bed.work / "component.log"
            if comp.exists():
                print("--- component log (tail) ---\n" + comp.read_text()[-3000:], file=sys.stderr)
        problem = bed.down()
        if problem:
            failed += 1
            print(f"FAIL clean_shutdown: {problem}", flush=True)
    print(f"{'FAILED' if failed else 'OK'}: {failed} failing", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
