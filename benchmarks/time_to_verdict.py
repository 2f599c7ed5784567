"""Time to verdict: how long `conformance run` takes, for the README's figure (its kit tests).

    python benchmarks/time_to_verdict.py [--runs 3] [--profiles quick,default] [--mute]
    python benchmarks/time_to_verdict.py --zoo defective [--runs 1] [--profiles default]
    python benchmarks/time_to_verdict.py --zoo c-serial-ok,java-thread_cap2 --stacks

Runs the kit against each reference server and protocol, one run at a time, `--runs` times per
profile, and prints a table of the median wall time (all runs in brackets) and whether every
run passed. With `--mute` it also times the two servers that never answer: one accepts and
stays silent, one listens and never accepts; each must get a complete report (every check
failing on its own deadlines) within the spec's 90 s. A benchmark, not a test: it asserts
nothing and is not part of the test run. Run it on a quiet machine.

With `--zoo` it times zoo servers instead (tests/servers/zoo.py; the C, Java and Go ones are
built first): `defective`, `correct`, `all`, or ids and substrings of ids separated by commas
(`c-serial-ok,python-one_message`). Each row gives the median wall time, whether the failed
categories were the expected ones in every run, and the three checks that took longest; the
slowest server comes last. With `--stacks` each run is a pair, one with the failures' stacks
and one without (`TCP_CONFORMANCE_STACKS=0`), in alternating order, and the row gives both
medians, their difference and how many failures showed a stack: what stacks cost a failing
run, side by side on the same machine and load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SERVERS = ("fork", "thread", "select", "pool")
PROTOCOLS = ("ok", "echo")

#: Accepts every connection and never sends a byte.
SILENT = """
import socket, sys
s = socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=128)
held = []
while True:
    held.append(s.accept()[0])
"""
#: Listens and never accepts: connections wait in the backlog until it is full.
DEAF = """
import socket, sys, time
s = socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=128)
while True:
    time.sleep(1)
"""


#: The environment variable that turns stacks off (conformance/harness/stacks.py).
STACKS_OFF = {"TCP_CONFORMANCE_STACKS": "0"}


def run_kit(
    where: list[str], args: list[str], report: Path, env: dict[str, str] | None = None
) -> tuple[float, dict]:
    """One `conformance run` (with `env` added to this environment); its wall time and JSON
    report."""
    argv = [sys.executable, "-m", "conformance", "run", *where, *args]
    argv += ["--json-report", str(report)]
    environ = {**os.environ, **(env or {})}
    t0 = time.monotonic()
    subprocess.run(argv, cwd=ROOT, capture_output=True, timeout=600, check=False, env=environ)
    wall = time.monotonic() - t0
    doc = json.loads(report.read_text()) if report.exists() else {}
    return wall, doc


def failed(doc: dict) -> list[str]:
    return sorted(c for c, o in doc.get("categories", {}).items() if o == "failed")


def time_zoo(which: str, profiles: list[str], runs: int, out: Path, stacks: bool = False) -> None:
    """The `--zoo` table: one row per (server, profile), slowest last; with `stacks`, each
    run with and without the failures' stacks."""
    sys.path.insert(0, str(ROOT))
    from tests.servers import build
    from tests.servers.zoo import CORRECT, DEFECTIVE, ZOO, command

    chosen = {"defective": DEFECTIVE, "correct": CORRECT, "all": ZOO}.get(which)
    if chosen is None:
        wanted = [w for w in which.split(",") if w]
        chosen = tuple(s for s in ZOO if any(w in s.id for w in wanted))
    build_dir = out / "build"
    languages = {s.language for s in chosen}
    if "c" in languages:
        build.build_c_servers(build_dir)
    if "java" in languages and build.have_javac():
        build.build_java_servers(build_dir)
    if "go" in languages and build.have_go():
        build.build_go_servers(build_dir)
    if stacks:
        time_stacks(chosen, profiles, runs, out, build_dir, command)
        return
    rows = []
    for profile in profiles:
        for server in chosen:
            walls, as_expected, slow = [], True, {}
            for i in range(runs):
                args = ["--protocol", server.protocol, "--profile", profile]
                where = ["--server-cmd", command(server, build_dir)]
                wall, doc = run_kit(where, args, out / f"{server.id}-{profile}-{i}.json")
                walls.append(wall)
                as_expected &= bool(doc) and set(failed(doc)) == set(server.expected_failures)
                for r in doc.get("requirements", []):
                    slow[r["id"]] = max(slow.get(r["id"], 0.0), r["duration_s"])
            top = sorted(slow.items(), key=lambda kv: -kv[1])[:3]
            rows.append((statistics.median(walls), server.id, profile, walls, as_expected, top))
            print(f"{server.id} {profile}: {statistics.median(walls):.1f} s", flush=True)
    print("\n| server | profile | time to verdict | runs | as expected | slowest checks |")
    print("|---|---|---|---|---|---|")
    for median, sid, profile, walls, ok, top in sorted(rows):
        spread = ", ".join(f"{w:.1f}" for w in walls)
        checks = ", ".join(f"{rid} {d:.1f} s" for rid, d in top)
        verdict = "yes" if ok else "NO"
        print(f"| {sid} | {profile} | {median:.1f} s | {spread} | {verdict} | {checks} |")


def time_stacks(
    chosen: Sequence[Any],
    profiles: list[str],
    runs: int,
    out: Path,
    build_dir: Path,
    command: Callable[[Any, Path], str],
) -> None:
    """The `--zoo ... --stacks` table: per (server, profile), `runs` pairs of runs, with and
    without stacks, the pair's order alternating so neither side always runs second."""
    rows = []
    for profile in profiles:
        for server in chosen:
            walls: dict[bool, list[float]] = {True: [], False: []}
            shown, same = [], True
            for i in range(runs):
                verdicts = {}
                for on in (True, False) if i % 2 == 0 else (False, True):
                    args = ["--protocol", server.protocol, "--profile", profile]
                    where = ["--server-cmd", command(server, build_dir)]
                    report = out / f"{server.id}-{profile}-{i}-{'on' if on else 'off'}.json"
                    wall, doc = run_kit(where, args, report, None if on else STACKS_OFF)
                    walls[on].append(wall)
                    verdicts[on] = failed(doc) if doc else ["no report"]
                    if on:
                        shown.append(sum(1 for r in doc.get("requirements", []) if "stacks" in r))
                same &= verdicts[True] == verdicts[False]
            with_s, without_s = statistics.median(walls[True]), statistics.median(walls[False])
            rows.append(
                (server.id, profile, without_s, walls[False], with_s, walls[True], shown, same)
            )
            print(
                f"{server.id} {profile}: {without_s:.1f} s without, {with_s:.1f} s with", flush=True
            )
    print("\n| server | profile | without stacks | with stacks | difference | failures with "
          "stacks | same verdict |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for sid, profile, off_s, offs, on_s, ons, shown, same in rows:
        spread_off = ", ".join(f"{w:.1f}" for w in offs)
        spread_on = ", ".join(f"{w:.1f}" for w in ons)
        print(
            f"| {sid} | {profile} | {off_s:.1f} s ({spread_off}) | {on_s:.1f} s ({spread_on}) | "
            f"{on_s - off_s:+.1f} s | {', '.join(map(str, shown))} | {'yes' if same else 'NO'} |"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--profiles", default="quick,default")
    ap.add_argument("--mute", action="store_true", help="also time the two mute servers")
    ap.add_argument(
        "--stacks",
        action="store_true",
        help="with --zoo: each run with and without the failures' stacks, side by side",
    )
    ap.add_argument(
        "--zoo",
        metavar="WHICH",
        help="time zoo servers instead: defective, correct, all, or ids/substrings, commas",
    )
    ns = ap.parse_args()
    profiles = [p for p in ns.profiles.split(",") if p]
    with tempfile.TemporaryDirectory(prefix="ttv-") as tmp:
        out = Path(tmp)
        if ns.zoo:
            time_zoo(ns.zoo, profiles, ns.runs, out, ns.stacks)
            return 0
        columns = [f"{s} {p}" for p in PROTOCOLS for s in SERVERS]
        print("| profile | " + " | ".join(columns) + " |")
        print("|---" * (len(columns) + 1) + "|")
        for profile in profiles:
            cells = []
            for protocol in PROTOCOLS:
                for server in SERVERS:
                    walls, bad = [], []
                    for i in range(ns.runs):
                        report = out / f"{server}-{protocol}-{profile}-{i}.json"
                        args = ["--protocol", protocol, "--profile", profile]
                        wall, doc = run_kit(["--server", server], args, report)
                        walls.append(wall)
                        bad += failed(doc) or ([] if doc else ["no report"])
                    runs = "–".join(f"{w:.1f}" for w in (min(walls), max(walls)))
                    cell = f"{statistics.median(walls):.1f} s"
                    cell += f" ({runs})" if ns.runs > 1 else ""
                    cells.append(cell + (f" FAILED {sorted(set(bad))}" if bad else ""))
            print(f"| {profile} | " + " | ".join(cells) + " |", flush=True)
        if ns.mute:
            print()
            for name, source in (("accepts, never answers", SILENT), ("never accepts", DEAF)):
                script = out / "mute.py"
                script.write_text(source)
                command = f"{sys.executable} -S {script} {{port}}"
                wall, doc = run_kit(["--server-cmd", command], [], out / "mute.json")
                slowest = max(
                    (r.get("duration_s", 0.0) for r in doc.get("requirements", [])), default=0.0
                )
                print(
                    f"mute server ({name}), default profile: {wall:.1f} s; "
                    f"failed {', '.join(failed(doc)) or 'nothing'}; "
                    f"slowest check {slowest:.1f} s",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
