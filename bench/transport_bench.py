#!/usr/bin/python3
"""The two transports side by side, in one run on one testbed (Prosody, PostgreSQL, the component):

1. send: `multiend send` (one process per message, as a script would run it) to bob, a Multiend
   contact (archive, OMEMO 2), and to carol, a legacy OMEMO app (PEP, chat message), alternating,
   SENDS of each; median and p90 wall time per send, and their ratio. A third series sends to
   carol with the record of the published PEP bundles erased first, so the upkeep publishes both
   bundles again as every command did before they were republished only when changed: the
   ratio of the two is what that saves.
2. catch-up: an offline Multiend device of alice reads MESSAGES messages from the archive
   (bob's `send --lines`) and then MESSAGES from the server's MAM (carol's legacy app), each with
   one `multiend sync`, timed; rates and their ratio.

    bench/transport_bench.py [--cli build/client/multiend] [--component build/server/multiend-component]
    environment: SENDS=20 MESSAGES=500
Root (the testbed runs PostgreSQL as `postgres`). Prints one JSON line per figure and a summary.
"""
from __future__ import annotations

import json
import os
import resource
import sqlite3
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "e2e"))
import test_e2e  # noqa: E402
from test_e2e import Bed, Cli, check  # noqa: E402
from test_e2e_legacy import LegacyApp  # noqa: E402

SENDS = int(os.environ.get("SENDS", "20"))
MESSAGES = int(os.environ.get("MESSAGES", "500"))


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def scenario_transports(bed: Bed) -> None:
    alice, bob = Cli(bed, "alice-t1", "alice"), Cli(bed, "bob-t1", "bob")
    alice.init()
    bob.init()
    carol = LegacyApp(bed, "carol-t", "carol")
    carol.init()
    # warm both paths (sessions built, bundles fetched), and let carol's app read the key exchange
    alice.send(["bob"], "warm-up")
    alice.send(["carol"], "warm-up")
    carol.run("sync")
    to_archive, to_pep, to_pep_republish = [], [], []

    def forget_bundles() -> None:
        with sqlite3.connect(alice.state) as db:
            db.execute("DELETE FROM settings WHERE key = 'pep_bundles'")

    for i in range(SENDS):
        to_archive.append(timed(lambda: alice.send(["bob"], f"archive {i}")))
        to_pep.append(timed(lambda: alice.send(["carol"], f"pep {i}")))
        forget_bundles()
        to_pep_republish.append(timed(lambda: alice.send(["carol"], f"pep, bundles published again {i}")))

    def q(v, p):
        return sorted(v)[min(len(v) - 1, int(p * len(v)))]
    res = {"sends": SENDS, "archive_p50_ms": 1000 * statistics.median(to_archive),
           "archive_p90_ms": 1000 * q(to_archive, 0.9), "pep_p50_ms": 1000 * statistics.median(to_pep),
           "pep_p90_ms": 1000 * q(to_pep, 0.9)}
    res["pep_vs_archive_p50"] = res["pep_p50_ms"] / res["archive_p50_ms"]
    res["pep_republishing_p50_ms"] = 1000 * statistics.median(to_pep_republish)
    res["pep_vs_republishing_p50"] = res["pep_p50_ms"] / res["pep_republishing_p50_ms"]
    print(json.dumps({"figure": "send", **res}), flush=True)

    # catch-up: alice's second device offline while both kinds arrive
    laptop = Cli(bed, "alice-t2", "alice")
    laptop.init()
    laptop.sync()
    lines = "".join(f"to the laptop {i}\n" for i in range(MESSAGES))
    bob.run("send", "--to", alice.jid, "--lines", stdin=lines, timeout=600)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t_archive = timed(lambda: laptop.run("sync", timeout=900))
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_archive = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    carol.run("send", "--to", alice.jid, "--body", "from carol's app", "--repeat", str(MESSAGES), timeout=900)
    out: list = []
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t_server = timed(lambda: out.extend(laptop.run("sync", timeout=900)))
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_server = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    synced = out[-1]
    check(synced["from_server"] == MESSAGES, f"server catch-up read {synced}")
    cu = {"messages": MESSAGES, "archive_s": t_archive, "archive_rate": MESSAGES / t_archive,
          "archive_cli_cpu_s": cpu_archive, "server_mam_s": t_server, "server_mam_rate": MESSAGES / t_server,
          "server_mam_cli_cpu_s": cpu_server}
    cu["server_vs_archive_rate"] = cu["server_mam_rate"] / cu["archive_rate"]
    print(json.dumps({"figure": "catch-up", **cu}), flush=True)
    print(f"send: archive p50 {res['archive_p50_ms']:.0f} ms, pep p50 {res['pep_p50_ms']:.0f} ms "
          f"(×{res['pep_vs_archive_p50']:.2f}), pep republishing bundles p50 {res['pep_republishing_p50_ms']:.0f} ms "
          f"(only when changed: ×{res['pep_vs_republishing_p50']:.2f}); catch-up of {MESSAGES}: archive {cu['archive_rate']:.0f} msg/s, "
          f"server MAM {cu['server_mam_rate']:.0f} msg/s (×{cu['server_vs_archive_rate']:.2f})", flush=True)


if __name__ == "__main__":
    sys.exit(test_e2e.run([scenario_transports], __doc__))
