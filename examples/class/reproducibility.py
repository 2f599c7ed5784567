"""Grade the sample class N times and count how many scores came out the same every time.

    python examples/class/reproducibility.py --runs 10 -j 2

Each run regrades every submission (`--force`) with the same config and seed into its own
directory, then every (student, requirement) score and every student's total is compared with
the first run's. The figure in the README comes from this script.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLASS = Path(__file__).resolve().parent


def scores(out: Path) -> dict[tuple[str, str], float]:
    found = {}
    for report in sorted(out.glob("*/report.json")):
        doc = json.loads(report.read_text())
        found[(report.parent.name, "total")] = doc["score"]
        for r in doc["requirements"]:
            found[(report.parent.name, r["id"])] = r["score"]
    return found


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("-j", "--jobs", type=int, default=2)
    ns = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="conformance-repro-"))
    runs: list[dict[tuple[str, str], float]] = []
    for i in range(ns.runs):
        out = base / f"run{i}"
        t0 = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "conformance", "grade", str(CLASS), "--out", str(out),
             "-j", str(ns.jobs), "--force"],
            check=True, stderr=subprocess.DEVNULL, timeout=1800,
        )  # fmt: skip
        runs.append(scores(out))
        totals = {k[0]: v for k, v in runs[-1].items() if k[1] == "total"}
        print(f"run {i + 1}: {time.monotonic() - t0:.0f} s  {totals}", flush=True)
    first = runs[0]
    cells = [(run, key) for run in runs[1:] for key in first]
    same = sum(run.get(key) == first[key] for run, key in cells)
    total_keys = [k for k in first if k[1] == "total"]
    same_totals = sum(run.get(k) == first[k] for run in runs[1:] for k in total_keys)
    print(
        f"{same}/{len(cells)} (student, requirement) scores and "
        f"{same_totals}/{len(total_keys) * (len(runs) - 1)} student totals matched the first "
        f"run over {len(runs)} runs"
    )
    for run_index, run in enumerate(runs[1:], 2):
        for key in first:
            if run.get(key) != first[key]:
                print(f"  run {run_index}: {key[0]} {key[1]}: {run.get(key)} != {first[key]}")
    print(f"reports kept in {base}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
