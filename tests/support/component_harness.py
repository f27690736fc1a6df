#!/usr/bin/python3
"""The shared harness of the component's integration suites (tests/integration/test_component*.py).

A suite is a list of scenarios (async functions of a Ctx) registered with a ``Registry``; ``main`` parses the
common options (--component-cmd, --server, --only/--skip/--list, --keep, --testbed-dir, -v), brings up a private
testbed (deploy/testbed: PostgreSQL 15 + Prosody 0.12 or ejabberd 23.01 on free loopback ports), starts the
component with a JSON config written from the testbed env, waits for GET /readyz = 200, runs the scenarios,
stops the component with SIGTERM (its exit status is a result of its own: ``clean_shutdown``) and tears
everything down, also on failure or Ctrl-C. Output: one ``PASS name`` / ``FAIL name: reason`` line per
scenario, then exactly ``N passed, M failed``; exit status 0 only if nothing failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TESTBED = REPO / "deploy" / "testbed"
sys.path.insert(0, str(REPO / "tests" / "integration"))

from xmpp_client import (  # noqa: E402
    Client, Device, Stanza, StanzaError, TestbedEnv, close_all, new_id,
)

class SetupError(Exception):
    pass


def tail(path: Path, n: int = 25) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n:]) if lines else "(empty log)"


def free_port() -> int:
    for _ in range(200):
        p = random.randint(20000, 31999)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", p)) == 0:
                continue
        return p
    raise SetupError("no free port found")


def http_status(url: str, timeout: float = 1.0) -> Optional[int]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------------------
# Harness: testbed and component lifecycle
# ---------------------------------------------------------------------------------------------------------

def teardown_testbed(h: Any) -> None:
    """Stops the testbed a harness brought up (not one it was given) and removes its temp dir, unless
    --keep. `h` has own_testbed, testbed_dir, work, component_log and args.keep (every suite's harness)."""
    if h.own_testbed and h.testbed_dir is not None and h.testbed_dir.exists():
        cmd = [str(TESTBED), "down", "--dir", str(h.testbed_dir)] + (["--keep"] if h.args.keep else [])
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            print(f"warning: deploy/testbed down failed: {r.stderr.strip()}", file=sys.stderr)
    if h.work is not None and not h.args.keep:
        shutil.rmtree(h.work, ignore_errors=True)
    elif h.work is not None:
        print(f"kept {h.work} (component log: {h.component_log})", file=sys.stderr)


class Harness:
    def __init__(self, args: argparse.Namespace, users: str, config_extra: Dict[str, Any]) -> None:
        self.args = args
        self.users = users
        self.config_extra = dict(config_extra)
        self.work: Optional[Path] = None
        self.testbed_dir: Optional[Path] = None
        self.own_testbed = args.testbed_dir is None
        self.env: Optional[TestbedEnv] = None
        self.proc: Optional[subprocess.Popen] = None
        self.proc_log: Optional[Any] = None
        self.http_address = ""
        self.config_path: Optional[Path] = None
        self.component_log: Optional[Path] = None
        self.starts = 0

    # --- testbed --------------------------------------------------------------------------------------
    def setup_testbed(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="multiend-it."))
        os.chmod(self.work, 0o755)
        self.component_log = self.work / "component.log"
        if self.own_testbed:
            self.testbed_dir = self.work / "testbed"
            try:
                r = subprocess.run([str(TESTBED), "up", "--dir", str(self.testbed_dir), "--users", self.users,
                                    "--server", self.args.server],
                                   capture_output=True, text=True, timeout=120)
            except subprocess.TimeoutExpired:
                raise SetupError("deploy/testbed up did not finish within 120s") from None
            if r.returncode != 0:
                raise SetupError(f"deploy/testbed up failed (rc={r.returncode}): {r.stderr.strip()[-1500:]}")
        else:
            self.testbed_dir = Path(self.args.testbed_dir).resolve()
        env_file = self.testbed_dir / "env"
        if not env_file.is_file():
            raise SetupError(f"no testbed env file at {env_file}")
        self.env = TestbedEnv.from_file(env_file)
        server = self.env.raw.get("MULTIEND_TESTBED_SERVER", "prosody")
        if server != self.args.server:
            raise SetupError(f"the testbed in {self.testbed_dir} runs {server}, not {self.args.server} (pass --server)")
        missing = [u for u in self.users.split() if u not in self.env.raw.get("MULTIEND_USERS", self.users).split()]
        if missing:
            raise SetupError(f"testbed lacks users {missing} (bring it up with --users \"{self.users}\")")
        self.http_address = f"127.0.0.1:{free_port()}"

    def teardown_testbed(self) -> None:
        teardown_testbed(self)

    # --- component ------------------------------------------------------------------------------------
    def write_config(self, extra: Optional[Dict[str, Any]] = None) -> Path:
        assert self.env is not None and self.work is not None
        cfg: Dict[str, Any] = {
            "xmpp_host": self.env.host,
            "component_port": self.env.component_port,
            "component_domain": self.env.component_domain,
            "user_domain": self.env.user_domain,
            "database_url": self.env.pg_url,
            "http_address": self.http_address,
            "log_level": self.args.log_level,
        }
        cfg.update(self.config_extra)
        cfg.update(extra or {})
        self.starts += 1
        path = self.work / ("component.json" if self.starts == 1 else f"component-{self.starts}.json")
        path.write_text(json.dumps(cfg, indent=2) + "\n")
        os.chmod(path, 0o600)  # it holds the database password: the component refuses it otherwise
        return path

    def start_component(self, extra: Optional[Dict[str, Any]] = None) -> None:
        assert self.env is not None and self.component_log is not None
        self.config_path = self.write_config(extra)
        cmd = self.args.component_cmd.replace("{config}", shlex.quote(str(self.config_path)))
        try:
            argv = shlex.split(cmd)
        except ValueError as e:
            raise SetupError(f"cannot parse --component-cmd: {e}") from None
        if not argv:
            raise SetupError("empty --component-cmd")
        env = dict(os.environ)
        env.update({k: v for k, v in self.env.raw.items() if k.startswith("MULTIEND_")})
        env["MULTIEND_COMPONENT_SECRET"] = self.env.component_secret
        env["MULTIEND_DATABASE_URL"] = self.env.pg_url
        env["MULTIEND_CONFIG"] = str(self.config_path)
        self.proc_log = open(self.component_log, "a")
        self.proc_log.write(f"=== {time.strftime('%H:%M:%S')} start: {cmd}\n")
        self.proc_log.flush()
        try:
            self.proc = subprocess.Popen(argv, cwd=str(REPO), env=env, stdin=subprocess.DEVNULL,
                                         stdout=self.proc_log, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            raise SetupError(f"cannot start component {argv[0]!r}: {e}") from None

    def component_env(self, secret: bool = True) -> Dict[str, str]:
        """The environment the component runs with (testbed MULTIEND_* variables); without the secret if asked."""
        assert self.env is not None
        env = dict(os.environ)
        env.update({k: v for k, v in self.env.raw.items() if k.startswith("MULTIEND_")})
        env["MULTIEND_DATABASE_URL"] = self.env.pg_url
        env.pop("MULTIEND_COMPONENT_SECRET_FILE", None)
        if secret:
            env["MULTIEND_COMPONENT_SECRET"] = self.env.component_secret
        else:
            env.pop("MULTIEND_COMPONENT_SECRET", None)
        return env

    def component_alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def readyz_url(self) -> str:
        return f"http://{self.http_address}/readyz"

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Optional[int] = None
        while time.monotonic() < deadline:
            if not self.component_alive():
                rc = self.proc.returncode if self.proc else None
                raise SetupError(f"component exited with code {rc} before /readyz answered 200 "
                                 f"(its log is below)")
            last = http_status(self.readyz_url())
            if last == 200:
                return
            time.sleep(0.2)
        raise SetupError(f"component's {self.readyz_url()} not 200 within {timeout:.0f}s "
                         f"(last answer: {last if last is not None else 'no connection'}; its log is below)")

    def stop_component(self, grace: float = 15.0) -> Tuple[Optional[int], float, bool]:
        """SIGTERM to the component's process group; (exit code, seconds, killed)."""
        p = self.proc
        if p is None:
            return None, 0.0, False
        t0 = time.monotonic()
        killed = False
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                killed = True
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=10)
        # children that outlived the leader
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc = None
        if self.proc_log is not None:
            self.proc_log.write(f"=== {time.strftime('%H:%M:%S')} exit code {p.returncode}"
                                f"{' (killed after grace)' if killed else ''}\n")
            self.proc_log.close()
            self.proc_log = None
        return p.returncode, time.monotonic() - t0, killed

    def restart_component(self, extra: Optional[Dict[str, Any]] = None, ready_timeout: float = 30.0) -> None:
        rc, secs, killed = self.stop_component()
        if rc != 0 or killed:
            raise AssertionError(f"the component exited with code {rc}{' after SIGKILL' if killed else ''} "
                                 f"when stopped for a restart (a crash or a sanitizer report: see its log)")
        self.start_component(extra)
        self.wait_ready(ready_timeout)


# ---------------------------------------------------------------------------------------------------------
# Scenario context and helpers
# ---------------------------------------------------------------------------------------------------------

def check(cond: Any, msg: str) -> None:
    if not cond:
        raise AssertionError(msg)


def expect_error(err: Optional[StanzaError], type_: str, condition: str, what: str) -> StanzaError:
    check(err is not None, f"{what}: expected {type_}/{condition}, got a result")
    check(err.type == type_ and err.condition == condition, f"{what}: expected {type_}/{condition}, got {err}")
    return err


def expect_error_in(err: Optional[StanzaError], allowed: Sequence[Tuple[str, str]], what: str) -> StanzaError:
    check(err is not None, f"{what}: expected one of {allowed}, got a result")
    check((err.type, err.condition) in allowed, f"{what}: expected one of {allowed}, got {err}")
    return err


def result_of(r: Stanza, what: str) -> Stanza:
    if r.type == "error":
        raise AssertionError(f"{what}: got error {r.error}")
    check(r.type == "result", f"{what}: unexpected answer {r!r}")
    return r


class Ctx:
    def __init__(self, h: Harness) -> None:
        self.h = h
        self.env: TestbedEnv = h.env
        self.clients: List[Client] = []
        self.comp = self.env.component_domain
        self.note = ""                 # shown after PASS

    async def client(self, user: str, resource: Optional[str] = None, **kw: Any) -> Client:
        c = Client(self.env, user, resource or f"{user[0]}{new_id()[:6]}", **kw)
        self.clients.append(c)
        await c.connect()
        return c

    async def clients_for(self, *specs: Tuple[str, str]) -> List[Client]:
        return list(await asyncio.gather(*(self.client(u, r) for u, r in specs)))

    async def close(self) -> None:
        await close_all(self.clients)
        self.clients.clear()

    async def device(self, client: Client, device_id: Optional[int] = None, n: int = 100) -> Device:
        return await Device.create(client, device_id, n)

    async def set_devices(self, owner: Client, bundles: Sequence[Tuple[int, str]]) -> None:
        """Makes ``owner``'s device list exactly these devices with these bundles."""
        for did, bxml in bundles:
            result_of(await owner.publish_bundle(did, bxml), f"publish bundle {did} of {owner.bare}")
        result_of(await owner.publish_device_list([d for d, _ in bundles]), f"publish device list of {owner.bare}")

    async def set_twomemo_devices(self, owner: Client, devices: Sequence[Device]) -> None:
        await self.set_devices(owner, [(d.device_id, await d.bundle_xml()) for d in devices])

    async def readyz(self) -> Optional[int]:
        return await asyncio.to_thread(http_status, self.h.readyz_url())

    async def wait_readyz(self, ok: bool, timeout: float, what: str) -> float:
        t0 = time.monotonic()
        last = None
        while time.monotonic() - t0 < timeout:
            last = await self.readyz()
            if (last == 200) == ok:
                return time.monotonic() - t0
            await asyncio.sleep(0.1)
        raise AssertionError(f"{what}: /readyz did not become {'200' if ok else 'non-200'} within {timeout}s "
                             f"(last: {last})")

    async def testbed(self, *args: str) -> None:
        p = await asyncio.create_subprocess_exec(str(TESTBED), *args, "--dir", str(self.h.testbed_dir),
                                                 stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await p.communicate()
        if p.returncode != 0:
            raise AssertionError(f"deploy/testbed {' '.join(args)} failed: {err.decode().strip()}")

    async def mam_count(self, c: Client, **kw: Any) -> int:
        page = await c.mam_query(max_=0, **kw)
        check(page.count is not None, f"MAM max=0 answered without <count>: {page.fin!r}")
        check(not page.messages, f"MAM max=0 returned {len(page.messages)} messages")
        return page.count


async def wait_receipts(c: Client, msg_ids: Iterable[str], timeout: float) -> Dict[str, Any]:
    """{msg id: stanza-id or StanzaError} for the ids that got an answer within ``timeout``."""
    want = set(msg_ids)
    out: Dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while want - set(out):
        for s in c.take(lambda s: (s.receipt is not None and s.receipt[0] in want)
                        or (s.type == "error" and s.id in want)):
            if s.type == "error":
                out[s.id] = s.error
            else:
                out[s.receipt[0]] = s.receipt[1]
        if not want - set(out) or time.monotonic() > deadline or not c.connected:
            break
        await asyncio.sleep(0.05)
    return out


def is_decimal(s: Optional[str]) -> bool:
    return bool(s) and s.isdigit()


# ---------------------------------------------------------------------------------------------------------

@dataclass
class Scenario:
    name: str
    fn: Callable[[Ctx], Awaitable[None]]
    timeout: float
    doc: str


class Registry:
    """The scenarios of one suite, in the order they are declared: ``@scenario("name")``."""

    def __init__(self) -> None:
        self.all: List[Scenario] = []

    def __call__(self, name: str, timeout: float = 30.0):
        def deco(fn: Callable[[Ctx], Awaitable[None]]):
            self.all.append(Scenario(name, fn, timeout, (fn.__doc__ or "").strip().splitlines()[0]))
            return fn
        return deco


# ---------------------------------------------------------------------------------------------------------
# Runner
# ---------------------------------------------------------------------------------------------------------

class Results:
    def __init__(self) -> None:
        self.passed: List[str] = []
        self.failed: List[Tuple[str, str]] = []

    def ok(self, name: str, note: str = "") -> None:
        self.passed.append(name)
        print(f"PASS {name}" + (f"  ({note})" if note else ""), flush=True)

    def fail(self, name: str, reason: str) -> None:
        reason = " ".join(str(reason).split()) or "(no message)"
        self.failed.append((name, reason))
        print(f"FAIL {name}: {reason}", flush=True)


def describe(e: BaseException) -> str:
    if isinstance(e, asyncio.TimeoutError) and not str(e):
        return "timed out"
    if isinstance(e, StanzaError):
        return f"unexpected error answer {e}"
    return f"{type(e).__name__}: {e}" if not isinstance(e, AssertionError) else str(e)


async def run_scenarios(h: Harness, selected: List[Scenario], res: Results) -> None:
    for sc in selected:
        if not h.component_alive():
            rc = h.proc.returncode if h.proc else None
            res.fail(sc.name, f"component is not running (exit code {rc})")
            continue
        ctx = Ctx(h)
        t0 = time.monotonic()
        try:
            await asyncio.wait_for(sc.fn(ctx), sc.timeout)
        except asyncio.TimeoutError as e:
            msg = str(e) or f"scenario timed out after {sc.timeout:.0f}s"
            res.fail(sc.name, msg + _component_state(h))
            if h.args.verbose:
                traceback.print_exc()
        except Exception as e:  # noqa: BLE001 - every failure is reported per scenario
            res.fail(sc.name, describe(e) + _component_state(h))
            if h.args.verbose:
                traceback.print_exc()
        else:
            if not h.component_alive():
                res.fail(sc.name, "component exited during the scenario" + _component_state(h))
            else:
                note = ctx.note
                if h.args.verbose:
                    note = (note + "; " if note else "") + f"{time.monotonic() - t0:.1f}s"
                res.ok(sc.name, note)
        finally:
            await ctx.close()


def _component_state(h: Harness) -> str:
    if h.proc is not None and h.proc.poll() is not None:
        return f" [component exited with code {h.proc.returncode}]"
    return ""


def add_selection_options(ap: argparse.ArgumentParser) -> None:
    """--only, --skip, --list, --keep and -v, as every suite has them."""
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    ap.add_argument("--skip", default="", help="comma-separated scenario names to leave out")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (testbed stopped, logs kept)")
    ap.add_argument("-v", "--verbose", action="store_true", help="tracebacks and timings")


def select_scenarios(ap: argparse.ArgumentParser, args: argparse.Namespace, scenarios: Sequence[Any]) -> List[Any]:
    """The scenarios --only/--skip select (anything with .name and .doc); --list prints them and exits."""
    if args.list:
        for sc in scenarios:
            print(f"{sc.name:32} {sc.doc}")
        sys.exit(0)
    if not args.component_cmd:
        ap.error("--component-cmd is required")
    names = {s.name for s in scenarios}
    only = [n for n in args.only.split(",") if n]
    skip = [n for n in args.skip.split(",") if n]
    unknown = [n for n in only + skip if n not in names]
    if unknown:
        ap.error(f"unknown scenario(s): {', '.join(unknown)} (see --list)")
    return [s for s in scenarios if (not only or s.name in only) and s.name not in skip]


def main(scenarios: Registry, doc: str, users: str, config_extra: Dict[str, Any]) -> int:
    SCENARIOS = scenarios.all
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--component-cmd", help="command starting the component; {config} = JSON config path")
    add_selection_options(ap)
    ap.add_argument("--testbed-dir", help="use this running testbed (deploy/testbed up --users …) and leave it up")
    ap.add_argument("--server", choices=("prosody", "ejabberd"), default="prosody",
                    help="XMPP server of the testbed (deploy/testbed up --server; default prosody)")
    ap.add_argument("--ready-timeout", type=float, default=30.0, help="seconds to wait for /readyz = 200")
    ap.add_argument("--log-level", default="info", help="component log_level (default info)")
    args = ap.parse_args()
    selected = select_scenarios(ap, args, SCENARIOS)

    res = Results()
    h = Harness(args, users, config_extra)
    interrupted = False

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    started = time.monotonic()
    setup_ok = False
    try:
        try:
            h.setup_testbed()
            h.start_component()
            h.wait_ready(args.ready_timeout)
            setup_ok = True
        except (SetupError, OSError, subprocess.SubprocessError, ValueError) as e:
            res.fail("setup", str(e) if isinstance(e, SetupError) else f"{type(e).__name__}: {e}")
            if selected:
                print(f"not run: {len(selected)} scenarios", flush=True)
        if setup_ok:
            asyncio.run(run_scenarios(h, selected, res))
    except KeyboardInterrupt:
        interrupted = True
        res.fail("interrupted", "stopped by Ctrl-C / signal; cleaning up")
    finally:
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)          # let the cleanup finish
        try:
            if h.proc is not None:
                alive = h.component_alive()
                rc, secs, killed = h.stop_component()
                if setup_ok and not interrupted:
                    if not alive:
                        res.fail("clean_shutdown", f"component had already exited (code {rc})")
                    elif killed:
                        res.fail("clean_shutdown", f"component ignored SIGTERM for {secs:.0f}s and was killed")
                    elif rc != 0:
                        res.fail("clean_shutdown", f"component exited with code {rc} on SIGTERM")
                    else:
                        res.ok("clean_shutdown", f"{secs:.1f}s" if args.verbose else "")
            if res.failed and h.component_log is not None and h.component_log.exists():
                print(f"--- component log (last lines of {h.component_log}) ---", file=sys.stderr)
                print(tail(h.component_log, 30), file=sys.stderr)
        finally:
            h.teardown_testbed()
    if args.verbose:
        print(f"total {time.monotonic() - started:.1f}s", file=sys.stderr)
    print(f"{len(res.passed)} passed, {len(res.failed)} failed", flush=True)
    return 0 if not res.failed else 1
