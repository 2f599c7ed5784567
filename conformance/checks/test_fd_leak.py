"""fd-leak: descriptors and threads come back to their baseline (FDL-*). Every model."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest

from conformance.checks.scenario_machine import run_scenarios
from conformance.harness import Server, fail, wait_until
from conformance.harness.processes import fd_targets
from conformance.harness.sessions import churn_sessions, require_process, run_sessions
from conformance.harness.timeouts import SETTLE_TIMEOUT
from conformance.marks import requirement
from conformance.plugin import Settings

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


@dataclass(frozen=True)
class Counts:
    """Descriptors and threads after warm-up (baseline) and after SESSIONS more sessions."""

    fds: tuple[int, int]
    threads: tuple[int, int]
    kinds: list[tuple[str, int]]


class Workload:
    """The SESSIONS sessions both FDL checks judge, run once by whichever asks first.

    Descriptors and threads are counted on the same run: running it twice would only double
    the time (with a fork server, most of this category's). A failure or skip while running it
    is kept and raised again for the other check, which saw the same thing.
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self._counts: Counts | None = None
        self._error: BaseException | None = None

    def counts(self) -> Counts:
        if self._error is not None:
            raise self._error
        if self._counts is None:
            try:
                self._counts = self._run()
            except (Exception, pytest.skip.Exception, pytest.fail.Exception) as exc:
                self._error = exc
                raise
            finally:
                # Counted once for both checks: the server is no longer needed.
                self.server.retire()
        return self._counts

    def _run(self) -> Counts:
        proc = require_process(self.server, "FDL-1 and FDL-2")
        run_sessions(self.server, WARMUP)
        _quiet(proc)
        fds, threads = proc.fd_count(), proc.thread_count()
        churn_sessions(self.server, SESSIONS, max_live_children=MAX_LIVE_CHILDREN)
        wait_until(
            lambda: proc.fd_count() <= fds + SLACK and proc.thread_count() <= threads + SLACK,
            2 * SETTLE_TIMEOUT,
        )
        kinds = Counter(fd_targets(proc.pid)).most_common(3)
        return Counts((fds, proc.fd_count()), (threads, proc.thread_count()), kinds)


@pytest.fixture(scope="module")
def workload(module_server: Server) -> Workload:
    return Workload(module_server)


DID = [
    f"ran {WARMUP} warm-up sessions, then {SESSIONS} sessions one after another "
    "(each: connect, one message, end)"
]


@requirement("FDL-1")
def test_descriptors_return_to_baseline(workload: Workload) -> None:
    baseline, after = workload.counts().fds
    if after > baseline + SLACK:
        fail(
            f"at most {baseline + SLACK} open descriptors after {SESSIONS} sessions "
            f"(baseline {baseline})",
            f"{after} open descriptors: about {(after - baseline) / SESSIONS:.1f} lost per session",
            did=DID,
            evidence=["Most common: " + ", ".join(f"{k} x{n}" for k, n in workload.counts().kinds)],
            cause=LEAK_CAUSE,
        )


@requirement("FDL-2")
def test_threads_return_to_baseline(workload: Workload) -> None:
    baseline, after = workload.counts().threads
    if after > baseline + SLACK:
        fail(
            f"at most {baseline + SLACK} threads after {SESSIONS} sessions (baseline {baseline})",
            f"{after} threads: about {(after - baseline) / SESSIONS:.1f} left per session",
            did=DID,
            cause="a session's thread must end when its session ends: return from the thread "
            "function (and detach it or join it), never block forever after closing",
        )


@requirement("FDL-1")
def test_descriptors_bounded_in_any_scenario(
    conformance_settings: Settings, conformance_profile: str, conformance_seed: int
) -> None:
    """Hypothesis drives clients (connect, send, exit, close, reset, signal bursts); after
    every step no server process may keep the connection of an ended session, and the main
    process holds at most one descriptor per open session beyond its start."""
    run_scenarios(
        conformance_settings, conformance_profile, conformance_seed, "descriptors", LEAK_CAUSE
    )
