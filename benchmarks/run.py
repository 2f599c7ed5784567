"""Measure every design side by side, in one run, and write the tables into BENCHMARKS.md.

    python benchmarks/run.py [--duration 3] [--repeats 3] [--out BENCHMARKS.md]

One run, so the figures share one machine state (recorded: CPUs, load average before and
after each section). Every number comes from the same commands a user runs, printed beside
each table: `conformance bench` for throughput and latency, `conformance run` (timed) for
time to verdict, and benchmarks/load_client.c for the driver's efficiency. The tables go
between the `generated` markers of the output file; the prose around them is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conformance.harness.launcher import launch  # noqa: E402
from tests.servers.build import build_c_servers  # noqa: E402

BEGIN, END = "<!-- generated:begin -->", "<!-- generated:end -->"
KIT = [sys.executable, "-m", "conformance"]
#: (label, bench target option, client counts). 10,000 only where the design holds them;
#: the thread reference is also run past its 1024-session cap to show what the cap does.
DESIGNS = [
    ("python fork", ["--server", "fork"], "1,100,1000"),
    ("python thread", ["--server", "thread"], "1,100,1000,2000"),
    ("python select", ["--server", "select"], "1,100,1000,10000"),
    ("python pool", ["--server", "pool"], "1,100,1000,10000"),
    ("C ok_fork", ["--server-cmd", "{build}/ok_fork {{port}}"], "1,100,1000,10000"),
    ("C ok_thread", ["--server-cmd", "{build}/ok_thread {{port}}"], "1,100,1000,10000"),
    ("C ok_prefork", ["--server-cmd", "{build}/ok_prefork {{port}}"], "1,100,1000,10000"),
    ("C ok_epoll", ["--server-cmd", "{build}/ok_epoll {{port}}"], "1,100,1000,10000"),
]
EFFICIENCY_CLIENTS = (1, 100, 1000, 10000)
REFERENCES = ("fork", "thread", "select", "pool")
VERDICT_PROFILES = ("quick", "default")
#: CONC-2 opens 64 clients at every profile; the profiles differ in what else they repeat.
CONC2_PROFILES = ("quick", "default", "thorough")
#: Bound on any one command of this script.
COMMAND_TIMEOUT = 900


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def shown(argv: list[str]) -> str:
    """The command as a user types it (`conformance ...`, paths relative to the checkout)."""
    text = shlex.join(argv)
    text = text.replace(shlex.join(KIT), "conformance").replace(str(ROOT) + "/", "")
    return text.replace(sys.executable, "python")


def bench(label: str, target: list[str], clients: str, duration: float, tmp: Path) -> dict:
    slug = re.sub(r"\W+", "_", label)
    out = tmp / f"{slug}-{time.monotonic_ns()}.json"
    argv = [*KIT, "bench", *target, "--clients", clients, "--duration", f"{duration:g}"]
    print(f"$ {shown(argv)}", file=sys.stderr, flush=True)
    proc = subprocess.run(
        [*argv, "--json", str(out), "-q"], capture_output=True, text=True, timeout=COMMAND_TIMEOUT
    )
    sys.stderr.write(proc.stdout)
    if not out.exists():
        raise RuntimeError(f"{label}: bench wrote no JSON\n{proc.stdout}\n{proc.stderr}")
    doc = json.loads(out.read_text())
    doc["command"] = shown(argv)
    return doc


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def designs_table(docs: list[tuple[str, dict]]) -> list[str]:
    lines = [
        "| design | clients | served | req/s | conn/s | p50 ms | p99 ms | max ms | errors "
        "| procs | threads | PSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for label, doc in docs:
        for r in doc["results"]:
            errors = str(r["errors"])
            if r["errors"]:
                kinds = ", ".join(f"{n} {k}" for k, n in sorted(r["error_kinds"].items()))
                errors += f" ({kinds})"
            lines.append(
                f"| {label} | {r['clients']} | {r['served']} | {r['requests_per_s']:.0f} "
                f"| {r['connections_per_s']:.0f} | {_ms(r['p50_ms'])} | {_ms(r['p99_ms'])} "
                f"| {_ms(r['max_ms'])} | {errors} | {r['server_processes'] or '-'} "
                f"| {r['server_threads'] or '-'} | {r['server_memory_mb'] or 0:.0f} |"
            )
    return lines


def c_client(binary: Path, server_cmd: str, clients: int, duration: float) -> dict:
    server = launch(server_cmd, ready_timeout=10.0)
    try:
        argv = [str(binary), str(server.port), str(clients), str(duration)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
        return json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        server.stop()


def efficiency(build: Path, client: Path, duration: float, repeats: int, tmp: Path) -> list[str]:
    """Driver vs C client on the C epoll server, alternated, median of `repeats` each."""
    server_cmd = f"{build}/ok_epoll {{port}}"
    lines = [
        "| clients | C load_client req/s (runs) | kit driver req/s (runs) | ratio "
        "| driver errors | C errors |",
        "|---:|---|---|---:|---:|---:|",
    ]
    for n in EFFICIENCY_CLIENTS:
        c_runs, d_runs, d_errors, c_errors = [], [], 0, 0
        for _ in range(repeats):
            c = c_client(client, server_cmd, n, duration)
            c_runs.append(c["requests_per_s"])
            c_errors += c["errors"]
            d = bench("efficiency", ["--server-cmd", server_cmd], str(n), duration, tmp)
            d_runs.append(d["results"][0]["requests_per_s"])
            d_errors += d["results"][0]["errors"]
        c_med, d_med = statistics.median(c_runs), statistics.median(d_runs)
        lines.append(
            f"| {n} | **{c_med:.0f}** ({', '.join(f'{x:.0f}' for x in c_runs)}) "
            f"| **{d_med:.0f}** ({', '.join(f'{x:.0f}' for x in d_runs)}) "
            f"| **{d_med / c_med:.2f}** | {d_errors} | {c_errors} |"
        )
    return lines


def timed_run(argv: list[str]) -> tuple[float, int, str]:
    """Wall time, exit status, and for a failed run its first `Actual:` line (why)."""
    print(f"$ {shown(argv)}", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    wall = time.monotonic() - t0
    why = next((x.strip() for x in proc.stdout.splitlines() if "Actual:" in x), "")
    if proc.returncode:
        print(f"  exit {proc.returncode}: {why}", file=sys.stderr, flush=True)
    return wall, proc.returncode, why


def verdict_tables() -> list[str]:
    lines = ["| reference | " + " | ".join(VERDICT_PROFILES) + " | exit codes |"]
    lines.append("|---|" + "---:|" * len(VERDICT_PROFILES) + "---|")
    for ref in REFERENCES:
        cells, codes = [], []
        for profile in VERDICT_PROFILES:
            wall, code, _why = timed_run([*KIT, "run", "--server", ref, "--profile", profile])
            cells.append(f"{wall:.1f} s")
            codes.append(str(code))
        lines.append(f"| {ref} | " + " | ".join(cells) + f" | {', '.join(codes)} |")
    lines += [
        "",
        (
            "CONC-2 alone (64 clients at every profile; the profile changes only how many "
            "generated examples other checks try):"
        ),
        "",
    ]
    head = " | ".join(CONC2_PROFILES)
    lines += [f"| reference | {head} |", "|---|" + "---:|" * len(CONC2_PROFILES)]
    notes = []
    for ref in REFERENCES:
        cells = []
        for profile in CONC2_PROFILES:
            argv = [*KIT, "run", "--server", ref, "--profile", profile, "--requirement", "CONC-2"]
            wall, code, why = timed_run(argv)
            cells.append(f"{wall:.1f} s" + ("" if code == 0 else f" (exit {code})"))
            if code:
                notes.append(f"- {ref}, {profile}: exit {code}: {why}")
        lines.append(f"| {ref} | " + " | ".join(cells) + " |")
    return lines + (["", *notes] if notes else [])


def build(tmp: Path) -> tuple[Path, Path]:
    out = tmp / "build"
    build_c_servers(out)
    client = out / "load_client"
    src = ROOT / "benchmarks" / "load_client.c"
    subprocess.run(["cc", "-O2", "-Wall", "-o", str(client), str(src)], check=True)
    return out, client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--skip-verdicts", action="store_true", help="skip time to verdict")
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="conformance-bench-") as name:
        tmp = Path(name)
        build_dir, client = build(tmp)
        cpus = os.cpu_count()
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        md = [
            BEGIN,
            f"Measured {started} on this machine ({cpus} CPUs), by `python benchmarks/run.py "
            f"--duration {args.duration:g} --repeats {args.repeats}`; {args.duration:g} s of "
            "load per row, protocol `ok`, 16-byte messages, a fresh server per row.",
            "",
            f"### Each design against clients ({load()} at the start)",
            "",
        ]
        docs = []
        for label, target, clients in DESIGNS:
            target = [t.format(build=build_dir) for t in target]
            docs.append((label, bench(label, target, clients, args.duration, tmp)))
        md += designs_table(docs)
        md += ["", "Commands:", "", "```"]
        md += [doc["command"].replace(str(build_dir), "BUILD") for _, doc in docs]
        md += ["```", "", f"### Driver efficiency ({load()} at the start)", ""]
        md += efficiency(build_dir, client, args.duration, args.repeats, tmp)
        md += [
            "",
            f"Commands: `BUILD/load_client PORT N {args.duration:g}` against "
            f"`BUILD/ok_epoll PORT`, alternated with `conformance bench --server-cmd "
            f"'BUILD/ok_epoll {{port}}' --clients N --duration {args.duration:g}`; "
            f"{args.repeats} runs each, median in bold.",
        ]
        if not args.skip_verdicts:
            md += ["", f"### Time to verdict ({load()} at the start)", ""]
            md += verdict_tables()
            md += [
                "",
                "Commands: `time conformance run --server REF --profile P` and "
                "`time conformance run --server REF --profile P --requirement CONC-2`.",
            ]
        md += ["", f"Whole run: {time.monotonic() - t0:.0f} s; {load()} at the end.", END]
    text = args.out.read_text() if args.out.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    args.out.write_text(head + "\n".join(md) + tail)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
