"""The matrix: the reference and zoo servers against the kit, as a table of server x category.

    python tests/matrix.py [--profile quick] [--jobs 2] [--only SUBSTRING] [--runs K]
                           [--xdist N] [--json FILE] [--against FILE]

Builds the C servers, runs `conformance run` once per server (K times with --runs, which is
how the flake figure is measured), and prints one row per server: each category's outcome,
`F` marking a failure, and whether the failed set is exactly the expected one. With --runs K
it also prints, per server and category, how many of the K verdicts agreed with the first.
`--xdist 2 --against FILE` checks that kits run with `-n 2` give, requirement by requirement,
outcomes seen in an earlier run without it (saved with --json).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from conformance.spec import CATEGORIES, REQUIREMENTS  # noqa: E402
from tests.servers.build import (  # noqa: E402
    build_c_servers,
    build_go_servers,
    build_java_servers,
    have_go,
    have_javac,
)
from tests.servers.zoo import ZOO, ZooServer, command  # noqa: E402

SHORT = {
    "passed": ".",
    "failed": "F",
    "blocked": "b",
    "kit-error": "E",
    "skipped": "s",
    "not-applicable": "-",
}


#: The reference servers, checked like the zoo's correct servers.
REFERENCES = tuple(
    ZooServer(name, "python", name, None, protocol, frozenset())
    for name in ("fork", "thread", "select", "pool")
    for protocol in ("ok", "echo")
)


def run_kit(
    server: ZooServer, build_dir: Path, profile: str, out_dir: Path, n: int = 0, xdist: int = 0
) -> dict:
    report = out_dir / f"{server.id}.{n}.json"
    if server in REFERENCES:
        where = ["--server", server.name]
    else:
        where = ["--server-cmd", command(server, build_dir)]
    argv = [sys.executable, "-m", "conformance", "run", *where, "--protocol", server.protocol]
    argv += ["--profile", profile, "--json-report", str(report)]
    if xdist:
        argv += ["-n", str(xdist)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=HERE.parent)
    if not report.exists():
        return {"error": proc.stdout[-2000:] + proc.stderr[-2000:], "categories": {}}
    doc = json.loads(report.read_text())
    doc["exit_code"] = proc.returncode
    return doc


def failed(doc: dict) -> frozenset[str]:
    return frozenset(c for c, o in doc.get("categories", {}).items() if o == "failed")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--only", default="", help="comma-separated substrings of server ids")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--json", help="write all reports here")
    ap.add_argument("--xdist", type=int, default=0, help="run each kit with -n N (0: without)")
    ap.add_argument(
        "--against",
        help="a --json file of an earlier run (e.g. without -n): compare every outcome with "
        "its runs, requirement by requirement",
    )
    ns = ap.parse_args()
    wanted = [w for w in ns.only.split(",")]
    servers = [s for s in (*REFERENCES, *ZOO) if any(w in s.id for w in wanted)]
    if not have_javac():  # no JDK: the Java servers cannot be built
        servers = [s for s in servers if s.language != "java"]
    if not have_go():  # no Go toolchain: the Go servers cannot be built
        servers = [s for s in servers if s.language != "go"]
    with tempfile.TemporaryDirectory() as tmp:
        build_dir = Path(tmp) / "build"
        build_c_servers(build_dir)
        if have_javac():
            build_java_servers(build_dir)
        if have_go():
            build_go_servers(build_dir)
        jobs = [(s, k) for s in servers for k in range(ns.runs)]
        with ThreadPoolExecutor(ns.jobs) as pool:
            docs = list(
                pool.map(
                    lambda j: run_kit(j[0], build_dir, ns.profile, Path(tmp), j[1], ns.xdist),
                    jobs,
                )
            )
    by_server: dict[str, list[dict]] = {}
    for (server, _), doc in zip(jobs, docs):
        by_server.setdefault(server.id, []).append(doc)
    header = f"{'server':<34} {'model':<10} " + " ".join(f"{c[:6]:>6}" for c in CATEGORIES)
    print(header + "  verdict")
    mismatches = 0
    agreed = total = exact_runs = all_runs = req_agreed = req_total = 0
    for server in servers:
        runs = by_server[server.id]
        first = runs[0]
        cells = " ".join(
            f"{SHORT.get(first.get('categories', {}).get(c, ''), '?'):>6}" for c in CATEGORIES
        )
        got = failed(first)
        ok = got == server.expected_failures and "error" not in first
        mismatches += not ok
        note = (
            "as expected"
            if ok
            else (
                f"expected {sorted(server.expected_failures)}, got {sorted(got)}"
                + (f" ERROR {first['error'][-300:]}" if "error" in first else "")
            )
        )
        print(f"{server.id:<34} {first.get('model', '?'):<10} {cells}  {note}")
        if ns.runs > 1:
            for c in CATEGORIES:
                same = sum(
                    r.get("categories", {}).get(c) == first.get("categories", {}).get(c)
                    for r in runs
                )
                agreed += same
                total += len(runs)
                if same != len(runs):
                    print(f"    flaky: {c} agreed in {same}/{len(runs)} runs")
            firsts = {r["id"]: r["outcome"] for r in first.get("requirements", [])}
            for run in runs:
                outcomes = {r["id"]: r["outcome"] for r in run.get("requirements", [])}
                req_total += len(firsts)
                req_agreed += sum(outcomes.get(i) == o for i, o in firsts.items())
                changed = sorted(i for i, o in firsts.items() if outcomes.get(i) != o)
                if changed:
                    print(f"    requirements that changed in a run: {', '.join(changed)}")
            exact = sum(failed(r) == server.expected_failures for r in runs)
            exact_runs += exact
            all_runs += len(runs)
            if exact != len(runs):
                print(f"    failed set as expected in {exact}/{len(runs)} runs")
    xd = f", each kit with -n {ns.xdist}" if ns.xdist else ""
    print(f"legend: . passed  F failed  s skipped  - not-applicable; profile {ns.profile}{xd}")
    print(f"{len(servers) - mismatches}/{len(servers)} servers got exactly their expected verdict")
    if ns.runs > 1:
        print(
            f"flake figure: {agreed}/{total} (server, category) verdicts agreed with the first "
            f"run over {ns.runs} runs; the failed set was exactly the expected one in "
            f"{exact_runs}/{all_runs} runs; {req_agreed}/{req_total} (server, requirement) "
            "outcomes agreed with the first run"
        )
    caught: dict[str, set[str]] = {}
    for server in servers:
        for doc in by_server[server.id]:
            for r in doc.get("requirements", []):
                if r["outcome"] == "failed" and server.defect is not None:
                    caught.setdefault(r["id"], set()).add(server.language)
    print("requirements failed by some defective server, per language:")
    print("  " + ", ".join(f"{req}:{'+'.join(sorted(langs))}" for req, langs in caught.items()))
    missing = [r.id for r in REQUIREMENTS if r.id not in caught]
    print(f"  never failed here: {', '.join(missing) or 'none'}")
    if ns.json:
        Path(ns.json).write_text(json.dumps(by_server, indent=1))
    differ = compare(by_server, json.loads(Path(ns.against).read_text())) if ns.against else 0
    return 1 if mismatches or differ else 0


def outcomes(doc: dict) -> dict[str, str]:
    return {r["id"]: r["outcome"] for r in doc.get("requirements", [])}


def compare(ours: dict[str, list[dict]], theirs: dict[str, list[dict]]) -> int:
    """Print where this run's outcomes differ from every run of the earlier one; count them."""
    differ = same = 0
    for server_id, runs in ours.items():
        earlier = [outcomes(d) for d in theirs.get(server_id, [])]
        if not earlier:
            print(f"  {server_id}: not in the earlier run")
            continue
        for run in runs:
            for req, outcome in outcomes(run).items():
                seen = {e.get(req) for e in earlier}
                if outcome in seen:
                    same += 1
                else:
                    differ += 1
                    before = "/".join(sorted(map(str, seen)))
                    print(f"  {server_id} {req}: {outcome} here, {before} before")
    print(f"against the earlier run: {same}/{same + differ} (server, requirement) outcomes matched")
    return differ


if __name__ == "__main__":
    raise SystemExit(main())
