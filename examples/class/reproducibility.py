"""Grade the sample class on a quiet machine, then K times on a busy one, and compare.

    python examples/class/reproducibility.py --runs 4 --jobs 1,2

Issue 14: the same submission must get the same grade however busy the grading machine is.
The script grades the class once with no load of its own (the reference), then `--runs`
times (cycling through `--jobs`) while it keeps the machine busy itself: `--spinners`
processes that burn CPU and one forker that keeps up to `--churn` short-lived children
alive, so the grader competes for CPU and for fork() as on a shared machine during a deadline.
Every (student, requirement) score and every total of each loaded run is compared with the
reference; each difference is printed with both verdicts and the loaded run's failure text.

The load is bounded and stops by itself: every load process has an alarm() of
`--load-limit` seconds (the kernel ends it even if this script dies) and dies with its
parent (PR_SET_PDEATHSIG); the script stops the load after each run and checks that none of
its processes is left. At most spinners + churn + 1 processes, a few dozen by default. The
1-minute load average is sampled while the class is graded; its highest value is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CLASS = Path(__file__).resolve().parent
#: Processes this script may start for the load, whatever the options say.
MAX_LOAD_PROCESSES = 300
_PR_SET_PDEATHSIG = 1

Scores = dict[tuple[str, str], tuple[object, str, str]]


# -- the load -----------------------------------------------------------------------------------
def _die_with_parent_after(seconds: int) -> None:
    """In a load process: end after `seconds` (SIGALRM's default action) or with its parent."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.alarm(seconds)
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _spin(seconds: int) -> None:
    _die_with_parent_after(seconds)
    while True:
        pass


def _churn(seconds: int, most: int) -> None:
    """Fork children that burn 20 ms of CPU and exit, keeping up to `most` alive."""
    _die_with_parent_after(seconds)
    alive = 0
    while True:
        if alive >= most:
            os.wait()
            alive -= 1
            continue
        if os.fork() == 0:
            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            end = time.process_time() + 0.02
            while time.process_time() < end:
                pass
            os._exit(0)
        alive += 1


class Load:
    """CPU and fork load in a process group of its own, so that one kill reaches every load
    process, even a churner's child, and a scan of /proc proves none is left."""

    def __init__(self, spinners: int, churn: int, limit_s: int) -> None:
        if spinners + churn + 1 > MAX_LOAD_PROCESSES:
            raise SystemExit(f"at most {MAX_LOAD_PROCESSES} load processes")
        self.spinners, self.churn, self.limit_s = spinners, churn, limit_s
        self.pids: list[int] = []
        self.pgid = 0

    def start(self) -> None:
        for i in range(self.spinners + (1 if self.churn else 0)):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - child
                try:
                    os.setpgid(0, self.pgid)
                    if i < self.spinners:
                        _spin(self.limit_s)
                    _churn(self.limit_s, self.churn)
                finally:
                    os._exit(0)
            self.pgid = self.pgid or pid
            with contextlib.suppress(PermissionError, ProcessLookupError):
                os.setpgid(pid, self.pgid)  # both sides, so neither races the other
            self.pids.append(pid)

    def stop(self) -> int:
        """Kill the load and wait for it; how many of its processes are still alive (0)."""
        if self.pgid:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signal.SIGKILL)
        for pid in self.pids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        deadline = time.monotonic() + 5
        while _in_group(self.pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        left, self.pids, self.pgid = len(_in_group(self.pgid)), [], 0
        return left


def _in_group(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group `pgid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _ppid, group = stat[stat.rindex(")") + 2 :].split()[:3]
        if state != "Z" and int(group) == pgid:
            found.append(int(entry.name))
    return found


def load_average_sampler(stop: threading.Event, peaks: list[float]) -> None:
    while not stop.wait(2.0):
        peaks.append(os.getloadavg()[0])


# -- grading and comparing ------------------------------------------------------------------------
def scores(out: Path) -> Scores:
    """(student, requirement) -> (score, outcome, detail); the total under "total"."""
    found: Scores = {}
    for report in sorted(out.glob("*/report.json")):
        doc = json.loads(report.read_text())
        found[(report.parent.name, "total")] = (doc["score"], "", "")
        for r in doc["requirements"]:
            found[(report.parent.name, r["id"])] = (r["score"], r["outcome"], r["detail"])
    return found


def grade(klass: Path, out: Path, jobs: int, timeout: float) -> float:
    t0 = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "conformance", "grade", str(klass), "--out", str(out),
         "-j", str(jobs), "--force"],
        check=True, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=timeout,
    )  # fmt: skip
    return time.monotonic() - t0


def differences(reference: Scores, run: Scores) -> list[str]:
    lines = []
    for key, (score, outcome, _) in reference.items():
        other = run.get(key)
        if other is None or other[0] != score:
            got = f"{other[0]} ({other[1]})" if other else "missing"
            detail = (other[2] if other else "").strip().replace("\n", "\n      ")
            lines.append(
                f"  {key[0]} {key[1]}: {got}, quiet run {score} ({outcome})\n      {detail}"
            )
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=4, help="loaded runs (K)")
    p.add_argument("-j", "--jobs", default="1,2", help="-j of the loaded runs, in turn: 1,2")
    p.add_argument("--quiet-jobs", type=int, default=1, help="-j of the reference run")
    p.add_argument("--class", dest="klass", type=Path, default=CLASS, help="the class to grade")
    p.add_argument("--spinners", type=int, default=16, help="CPU-burning load processes")
    p.add_argument("--churn", type=int, default=16, help="short-lived children kept alive")
    p.add_argument("--load-limit", type=int, default=900, help="seconds a load process lives")
    p.add_argument("--warmup", type=float, default=20.0, help="seconds of load before a run")
    ns = p.parse_args()
    jobs = [int(j) for j in ns.jobs.split(",")]
    base = Path(tempfile.mkdtemp(prefix="conformance-repro-"))
    seconds = grade(ns.klass, base / "quiet", ns.quiet_jobs, ns.load_limit)
    print(f"quiet run (-j {ns.quiet_jobs}): {seconds:.0f} s", flush=True)
    reference = scores(base / "quiet")
    peaks: list[float] = []
    results: list[tuple[int, Scores]] = []
    for i in range(ns.runs):
        j = jobs[i % len(jobs)]
        load = Load(ns.spinners, ns.churn, ns.load_limit)
        stop = threading.Event()
        mine: list[float] = []
        sampler = threading.Thread(target=load_average_sampler, args=(stop, mine), daemon=True)
        load.start()
        try:
            time.sleep(ns.warmup)
            sampler.start()
            seconds = grade(ns.klass, base / f"run{i + 1}", j, ns.load_limit)
        finally:
            stop.set()
            left = load.stop()
        if left:
            print(f"warning: {left} load processes outlived the stop", flush=True)
        peaks += mine
        results.append((j, scores(base / f"run{i + 1}")))
        print(
            f"loaded run {i + 1} (-j {j}): {seconds:.0f} s, load average (1 min) "
            f"{min(mine, default=0):.1f} to {max(mine, default=0):.1f}",
            flush=True,
        )
    keys = list(reference)
    cells = [(run, key) for _, run in results for key in keys if key[1] != "total"]
    same = sum(run.get(key, (None,))[0] == reference[key][0] for run, key in cells)
    totals = [(run, key) for _, run in results for key in keys if key[1] == "total"]
    same_totals = sum(run.get(key, (None,))[0] == reference[key][0] for run, key in totals)
    print(
        f"{same}/{len(cells)} (student, requirement) scores and {same_totals}/{len(totals)} "
        f"student totals of {len(results)} loaded runs (-j {ns.jobs}) matched the quiet run; "
        f"highest 1-minute load average {max(peaks, default=0):.1f} on {os.cpu_count()} CPUs"
    )
    for index, (j, run) in enumerate(results, 1):
        for line in differences(reference, run):
            print(f"run {index} (-j {j}):{line}")
    print(f"reports kept in {base}")
    return 0 if same == len(cells) and same_totals == len(totals) else 1


if __name__ == "__main__":
    sys.exit(main())
