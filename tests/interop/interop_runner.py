"""What the interop scripts share (twomemo_interop.py, oldmemo_interop.py): the check context that
counts and prints ``PASS``/``FAIL`` lines and owns the C++ tool processes, and the command line and
scenario loop around it. Run with Debian's interpreter: ``/usr/bin/python3``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import traceback
import warnings
from typing import Callable, Dict, List, Optional

from twomemo_peer import CppDevice, ToolError, describe_error


class Abort(Exception):
    """A check failed that the rest of the scenario depends on."""


class CheckContext:
    def __init__(self, tool: str, seed: Optional[int], timeout: float, verbose: bool) -> None:
        # Every spawned tool gets its own --seed: the C++ tools' RNG is deterministic, so two
        # instances with one seed would share keys, and a process that loads another's state must not
        # replay that process's random stream.
        self.tool = tool
        self.seed = seed
        self.timeout = timeout
        self.verbose = verbose
        self.passed = 0
        self.failed = 0
        self.devices: List[CppDevice] = []
        self._spawned = 0

    def ok(self, name: str, cond: bool, reason: str = "", detail: str = "") -> bool:
        if cond:
            self.passed += 1
            print(f"PASS {name}" + (f"  ({detail})" if detail and self.verbose else ""), flush=True)
        else:
            self.failed += 1
            print(f"FAIL {name}: {reason or 'check failed'}", flush=True)
        return cond

    def must(self, name: str, cond: bool, reason: str = "") -> None:
        if not self.ok(name, cond, reason):
            raise Abort(name)

    def spawn(self, jid: str, did: int) -> CppDevice:
        seed = None if self.seed is None else self.seed + self._spawned
        self._spawned += 1
        dev = CppDevice(self.tool, jid, did, seed=seed, timeout=self.timeout)
        self.devices.append(dev)
        return dev

    def cleanup(self) -> None:
        for d in self.devices:
            try:
                d.close()
            except Exception:
                d.kill()
        self.devices.clear()


async def _run(ctx: CheckContext, scenarios: Dict[str, Callable], which: List[str]) -> None:
    for key in which:
        try:
            await scenarios[key](ctx)
        except Abort as e:
            print(f"  (scenario {key} aborted after failed check {e})", flush=True)
        except (ToolError, OSError) as e:
            ctx.ok(f"{key}.scenario", False, f"tool problem: {describe_error(e)}")
        except Exception as e:
            ctx.ok(f"{key}.scenario", False, f"exception {describe_error(e)}\n"
                   + "".join(traceback.format_exception(type(e), e, e.__traceback__)[-3:]).rstrip())
        finally:
            ctx.cleanup()


def main(doc: Optional[str], scenarios: Dict[str, Callable],
         make_ctx: Callable[[str, int, float, bool], CheckContext]) -> int:
    """``--tool CMD [--only a,c] [--seed N] [--timeout S] [-v]``; prints one line per check, then
    ``N passed, M failed``; returns 1 on any failure."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", required=True, help="command line of the tool (shlex-split; may have arguments)")
    ap.add_argument("--only", default="", help="comma-separated scenario letters (default: all)")
    ap.add_argument("--seed", type=int, default=None,
                    help="tool instances get --seed N, N+1, ... (default: a random N, printed on stderr)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each tool reply")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.CRITICAL)      # the backends log warnings for replaced sessions etc.
    warnings.filterwarnings("ignore", category=RuntimeWarning)   # protobuf warns about tampered input
    which = [s.strip() for s in args.only.split(",") if s.strip()] or list(scenarios)
    for s in which:
        if s not in scenarios:
            ap.error(f"unknown scenario {s!r}")
    seed = args.seed if args.seed is not None else random.randrange(1, 2**31)
    print(f"# tool seeds start at {seed} (rerun with --seed {seed})", file=sys.stderr, flush=True)
    ctx = make_ctx(args.tool, seed, args.timeout, args.verbose)
    try:
        asyncio.run(_run(ctx, scenarios, which))
    finally:
        ctx.cleanup()
    print(f"{ctx.passed} passed, {ctx.failed} failed", flush=True)
    return 1 if ctx.failed else 0
