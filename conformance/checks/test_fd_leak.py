"""fd-leak: descriptors and threads come back to their baseline (FDL-*). Every model."""

from __future__ import annotations

from collections import Counter

from conformance.checks.scenario_machine import run_scenarios
from conformance.harness import Server, fail, wait_until
from conformance.harness.processes import fd_targets
from conformance.harness.sessions import require_process, run_sessions
from conformance.harness.timeouts import SETTLE_TIMEOUT
from conformance.marks import requirement

SESSIONS = 200
WARMUP = 5
#: Descriptors or threads a server may open lazily on first use (an epoll fd, a log file).
SLACK = 4
#: More live children than this after sequential sessions means they never exit (EXIT-4).
MAX_LIVE_CHILDREN = 32
LEAK_CAUSE = (
    "something opened per session is never closed: close the connection when the session "
    "ends (in a fork server the parent closes its copy after fork()), and every file or pipe "
    "the session opened"
)


def _quiet(proc) -> None:  # type: ignore[no-untyped-def]
    """Wait until ended sessions' children and threads are gone (they hold descriptors)."""
    children = set(proc.live_children())
    threads = proc.thread_count()
    wait_until(
        lambda: not set(proc.live_children()) - children and proc.thread_count() <= threads,
        SETTLE_TIMEOUT,
    )


def _before_and_after(server: Server, measure) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """`measure()` after warm-up sessions, and again after SESSIONS more have ended."""
    proc = server.process
    run_sessions(server, WARMUP)
    _quiet(proc)
    baseline = measure()
    run_sessions(server, SESSIONS, max_live_children=MAX_LIVE_CHILDREN)
    wait_until(lambda: measure() <= baseline + SLACK, 2 * SETTLE_TIMEOUT)
    return baseline, measure()


@requirement("FDL-1")
def test_descriptors_return_to_baseline(server: Server) -> None:
    proc = require_process(server, "FDL-1")
    baseline, after = _before_and_after(server, proc.fd_count)
    if after > baseline + SLACK:
        kinds = Counter(fd_targets(proc.pid)).most_common(3)
        fail(
            f"at most {baseline + SLACK} open descriptors after {SESSIONS} sessions "
            f"(baseline {baseline})",
            f"{after} open descriptors: about {(after - baseline) / SESSIONS:.1f} lost per session",
            did=[f"ran {WARMUP} warm-up sessions, then {SESSIONS} sessions one after another"],
            evidence=["Most common: " + ", ".join(f"{k} x{n}" for k, n in kinds)],
            cause=LEAK_CAUSE,
        )


@requirement("FDL-2")
def test_threads_return_to_baseline(server: Server) -> None:
    proc = require_process(server, "FDL-2")
    baseline, after = _before_and_after(server, proc.thread_count)
    if after > baseline + SLACK:
        fail(
            f"at most {baseline + SLACK} threads after {SESSIONS} sessions (baseline {baseline})",
            f"{after} threads: about {(after - baseline) / SESSIONS:.1f} left per session",
            did=[f"ran {WARMUP} warm-up sessions, then {SESSIONS} sessions one after another"],
            cause="a session's thread must end when its session ends: return from the thread "
            "function (and detach it or join it), never block forever after closing",
        )


@requirement("FDL-1")
def test_descriptors_bounded_in_any_scenario(
    conformance_settings, conformance_profile: str, conformance_seed: int
) -> None:  # type: ignore[no-untyped-def]
    """Hypothesis drives clients (connect, send, exit, close, reset, signal bursts); after
    every step no server process may keep the connection of an ended session, and the main
    process holds at most one descriptor per open session beyond its start."""
    run_scenarios(
        conformance_settings, conformance_profile, conformance_seed, "descriptors", LEAK_CAUSE
    )
