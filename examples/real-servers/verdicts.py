"""Run the kit against every real server of servers.toml and print each one's verdict.

    python examples/real-servers/verdicts.py [--profile quick] [--runs 1] [--jobs 1] [--only NAME]

From the repository's root. Each server is launched with its command (`conformance run
--server-cmd ...`); one not installed here is skipped with the reason. Prints, per server and
run, the requirements that failed, were blocked or were skipped, and whether they are the ones
servers.toml records; exit status 0 when every run agrees with it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
SERVERS: dict[str, dict] = tomllib.loads((HERE / "servers.toml").read_text())
OUTCOMES = ("failed", "blocked", "skipped")


def missing(server: dict) -> list[str]:
    """The programs `server` needs that are not on PATH."""
    return [name for name in server["needs"] if shutil.which(name) is None]


def argv(server: dict, profile: str, report: Path) -> list[str]:
    """The `conformance run` command line for `server`."""
    return [
        sys.executable, "-m", "conformance", "run",
        "--server-cmd", server["command"],
        "--protocol", server["protocol"], *server.get("options", []),
        "--profile", profile, "--json-report", str(report),
    ]  # fmt: skip


def verdict(server: dict, profile: str, timeout: float = 900) -> dict[str, set[str]]:
    """The requirements with each outcome of OUTCOMES, from one run of the kit."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            argv(server, profile, report),
            cwd=HERE.parent.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
        doc = json.loads(report.read_text())
    return {o: {r["id"] for r in doc["requirements"] if r["outcome"] == o} for o in OUTCOMES}


def expected(server: dict) -> dict[str, set[str]]:
    return {o: set(server.get(o, [])) for o in OUTCOMES}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--only", default="", help="comma-separated server names")
    ns = ap.parse_args()
    names = [n for n in SERVERS if not ns.only or n in ns.only.split(",")]
    runnable = []
    for name in names:
        if gone := missing(SERVERS[name]):
            print(f"{name}: skipped: {', '.join(gone)} not installed")
        else:
            runnable += [(name, k) for k in range(ns.runs)]
    with ThreadPoolExecutor(ns.jobs) as pool:
        results = list(pool.map(lambda j: (j, verdict(SERVERS[j[0]], ns.profile)), runnable))
    agree = 0
    for (name, k), got in results:
        same = got == expected(SERVERS[name])
        agree += same
        shown = "; ".join(f"{o}: {', '.join(sorted(got[o])) or '-'}" for o in OUTCOMES)
        print(f"{name} run {k + 1}: {shown} [{'as recorded' if same else 'DIFFERS'}]")
    print(f"{agree}/{len(results)} runs as servers.toml records ({ns.profile} profile)")
    return 0 if agree == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
