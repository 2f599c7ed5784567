"""`conformance bench`: how far a server scales, measured with the kit's own driver.

For each client count it starts a fresh server (launch mode; a running one in address mode),
opens that many connections with the driver (harness/driver.py), runs closed-loop round
trips on all of them for `--duration` seconds and ends every session as the protocol says.
It prints requests/s, connections/s, latency percentiles and errors per count, with progress
on stderr while it runs. Errors are counted by kind and printed, never folded into a mean.

Benchmarks are not checks: nothing here passes or fails a server. The exit status says only
whether the measurement was clean: 0 no errors, 1 some errors (see the table), 2 usage error
or the server could not be started, 130 interrupted (every server stopped).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import signal
import sys
import time
from pathlib import Path

import psutil

from conformance import __version__, options, protocols
from conformance.bench.report import (
    HEADER,
    PLOT_MISSING,
    Row,
    error_lines,
    plot_available,
    table_line,
    write_json,
    write_plot,
)
from conformance.errors import INTERRUPTED_EXIT, USAGE_EXIT, UsageError
from conformance.harness.driver import Driver, RunStats
from conformance.harness.launcher import LaunchedServer, LaunchError, launch
from conformance.harness.limits import DescriptorLimitError, ensure_descriptors
from conformance.harness.processes import GONE, listener_owner
from conformance.harness.server import Target, check_reachable
from conformance.settings import launch_hint, target_from_options

EXIT_ERRORS = 1
DEFAULT_CLIENTS = "1,10,100,1000"
#: Upper bound of --duration: a benchmark is bounded in time like everything else here.
MAX_DURATION = 600.0
#: How long the server may take to close every session after `exit` (or half-close).
CLOSE_WAIT = 5.0
#: Launch mode: how long a server may take to start listening (10,000-client servers that
#: raise limits or preallocate are slower than the checks' READY_TIMEOUT assumes).
BENCH_READY_TIMEOUT = 10.0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="measure throughput and latency against clients",
        description="Measure requests/s, connections/s and latency for each client count.",
        epilog=f"exit statuses: 0 measured, {EXIT_ERRORS} the server gave errors under load, "
        "2 usage error or the server could not be started, 130 interrupted",
        formatter_class=options.HelpFormatter,
    )
    options.add_cli_options(p, "bench")
    p.add_argument(
        "--clients",
        default=DEFAULT_CLIENTS,
        help=f"comma-separated client counts (default {DEFAULT_CLIENTS})",
    )
    p.add_argument(
        "--duration", type=float, default=5.0, help="seconds of load per count (default 5)"
    )
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.add_argument("--plot", metavar="PATH.png", help="plot throughput and p99 (matplotlib)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def parse_clients(text: str) -> list[int]:
    """'1,10,100' -> [1, 10, 100]; ValueError with a sentence for anything else."""
    counts = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise ValueError(
                f"--clients {text!r}: give comma-separated positive integers, e.g. 1,10,100"
            )
        if int(part) not in counts:
            counts.append(int(part))
    return counts


def _validate(ns: argparse.Namespace) -> tuple[Target, list[int]]:
    """Everything that can be wrong before a server starts; raises ValueError to print."""
    protocols.configure(ns.protocol)
    target = target_from_options(ns.server, ns.server_cmd, ns.target, ns.port, ns.protocol)
    counts = parse_clients(ns.clients)
    if not 0 < ns.duration <= MAX_DURATION:
        raise ValueError(f"--duration {ns.duration}: give seconds in (0, {MAX_DURATION:.0f}]")
    if ns.plot and not plot_available():
        raise ValueError(PLOT_MISSING)
    # Raised before any launch, so the server inherits the limit too (see limits.py).
    ensure_descriptors(max(counts))
    if target.mode == "address":
        assert target.port is not None
        check_reachable(target.host, target.port, ns.protocol)
    return target, counts


class _Progress:
    """Progress on stderr: one line rewritten in place on a terminal, sparse lines otherwise."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.prefix = ""
        self._last_phase = ""

    def __call__(self, phase: str, done: int, total: int) -> None:
        if self.quiet:
            return
        text = f"{self.prefix}{phase} {done}/{total}" + (" s" if phase == "run" else "")
        if self.tty:
            sys.stderr.write("\r\033[K" + text)
            sys.stderr.flush()
        elif phase != self._last_phase:
            print(text, file=sys.stderr, flush=True)
        self._last_phase = phase

    def done(self, line: str) -> None:
        if self.quiet:
            return
        if self.tty:
            sys.stderr.write("\r\033[K")
        print(f"{self.prefix}{line}", file=sys.stderr, flush=True)
        self._last_phase = ""


def _tree_usage(pid: int | None) -> tuple[int | None, int | None, float | None]:
    """(processes, threads, memory MB) of the server's process tree; PSS where readable.

    PSS divides shared pages among the processes sharing them, so a fork server's copies
    of the interpreter are not counted once per child as RSS would.
    """
    if pid is None:
        return None, None, None
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except GONE:
        return None, None, None
    threads = 0
    memory = 0
    for proc in procs:
        with contextlib.suppress(*GONE):
            threads += proc.num_threads()
            try:
                memory += proc.memory_full_info().pss
            except (AttributeError, psutil.AccessDenied):
                memory += proc.memory_info().rss
    return len(procs), threads, memory / 2**20


def measure(
    host: str,
    port: int,
    protocol: str,
    clients: int,
    duration: float,
    progress: _Progress,
    server_pid: int | None = None,
) -> Row:
    """One row: connect `clients`, load them for `duration`, close them; errors counted."""
    row = Row(clients)
    with Driver(host, port, protocol, progress=progress) as driver:
        row.served = driver.connect(clients)
        if driver.connect_s > 0:
            row.connections_per_s = round(row.served / driver.connect_s, 1)
        row.server_processes, row.server_threads, row.server_memory_mb = _tree_usage(server_pid)
        stats = driver.run_for(duration) if row.served else RunStats(0, 0.0, 0)
        driver.close(wait=CLOSE_WAIT)
        row.requests, row.duration_s = stats.requests, round(stats.duration_s, 3)
        row.requests_per_s = round(stats.requests_per_s, 1)
        for name, q in (("p50_ms", 50), ("p99_ms", 99), ("max_ms", 100)):
            value = stats.percentile_ms(q)
            setattr(row, name, None if value is None else round(value, 3))
        row.error_kinds = dict(driver.errors)
    return row


def _one(ns: argparse.Namespace, target: Target, clients: int, progress: _Progress) -> Row:
    """Measure one client count: on a fresh server in launch mode."""
    if target.mode == "address":
        assert target.port is not None
        return measure(
            target.host, target.port, ns.protocol, clients, ns.duration, progress,
            listener_owner(target.port),
        )  # fmt: skip
    assert target.command is not None
    server: LaunchedServer = launch(
        target.command, port=target.port, ready_timeout=BENCH_READY_TIMEOUT
    )
    try:
        row = measure(
            target.host, server.port, ns.protocol, clients, ns.duration, progress,
            server.listener_pid or server.pid,
        )  # fmt: skip
        if server.returncode() is not None:
            row.error_kinds["server-exited"] = 1
    finally:
        server.stop()
    return row


def run(ns: argparse.Namespace) -> int:
    try:
        options.fill_defaults(ns)
        target, counts = _validate(ns)
    except (UsageError, DescriptorLimitError, ValueError) as exc:
        print(f"conformance bench: {launch_hint(exc)}", file=sys.stderr)
        return USAGE_EXIT

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C: every server is stopped

    signal.signal(signal.SIGTERM, _terminate)
    name = ns.server or ns.server_cmd or ns.target
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    progress = _Progress(ns.quiet)
    print(f"bench: {name} ({ns.protocol}), {ns.duration:g} s per client count")
    print(HEADER, flush=True)
    rows: list[Row] = []
    t0 = time.monotonic()
    try:
        for clients in counts:
            progress.prefix = f"[{clients} clients] "
            row = _one(ns, target, clients, progress)
            row.errors = sum(row.error_kinds.values())
            rows.append(row)
            progress.done(f"{row.requests_per_s:.0f} req/s, {row.errors} errors")
            print(table_line(row), flush=True)
    except KeyboardInterrupt:
        print("conformance bench: interrupted; every server was stopped", file=sys.stderr)
        return INTERRUPTED_EXIT
    except LaunchError as exc:
        print(f"conformance bench: {launch_hint(exc)}", file=sys.stderr)
        return USAGE_EXIT
    for line in error_lines(rows):
        print(f"errors at {line}")
    header = {
        "kit_version": __version__,
        "started_at": started,
        "wall_s": round(time.monotonic() - t0, 1),
        "target": target.describe(),
        "server": name,
        "protocol": ns.protocol,
        "duration_s": ns.duration,
        "machine": {"cpus": os.cpu_count(), "loadavg": list(os.getloadavg())},
    }
    if ns.json:
        write_json(Path(ns.json), header, rows)
    if ns.plot:
        write_plot(Path(ns.plot), f"{name} ({ns.protocol})", rows)
    return EXIT_ERRORS if any(row.errors for row in rows) else 0
