"""fd-leak: descriptors come back to their baseline, threads stop growing (FDL-*). Every model.

Threads are judged by growth, not by a return to the first count: a pool may start a worker
per session up to its size (Java's ThreadPoolExecutor, Go's runtime, .NET's thread pool do)
and keep them all, idle. A leak is growth that goes on with every session; a pool stops.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest

from conformance.checks.scenario_machine import run_scenarios
from conformance.harness import Server, busy, fail, wait_until
from conformance.harness.failure import CannotJudge
from conformance.harness.lingering import SpinWatch
from conformance.harness.model import ThreadGrowth, measure_thread_growth
from conformance.harness.processes import fd_targets, sockets_of
from conformance.harness.sessions import (
    DEATH_GRACE,
    churn_sessions,
    require_process,
    run_sessions,
)
from conformance.harness.timeouts import CPU_WINDOW, SETTLE_TIMEOUT
from conformance.harness.waiting import StuckWatch, cannot_close
from conformance.marks import requirement
from conformance.settings import Settings

SESSIONS = 200
WARMUP = 5
#: FDL-2 judges the thread count's growth over the last TAIL of the SESSIONS sessions: the
#: sessions before may raise it to a plateau (a pool of up to about SESSIONS - TAIL threads).
TAIL = 50
#: Sessions between two looks at the thread count (TAIL is a whole number of them).
ROUND = 25
#: Descriptors or threads a server may open lazily on first use (an epoll fd, a log file, a
#: runtime's JIT compiler thread).
SLACK = 4
#: More live children than this after sequential sessions, beyond those alive before them
#: (a prefork pool's workers), means they never exit (EXIT-4): a fork server's children exit
#: within a session or two of theirs, even on a busy machine.
MAX_NEW_CHILDREN = 16
#: Threads a pool keeps must be idle: a server using more than this share of a core once
#: the sessions ended is spinning (as in EXIT-4).
BUSY_SHARE = 0.2
LEAK_CAUSE = (
    "something opened per session is never closed: close the connection when the session "
    "ends (in a fork server the parent closes its copy after fork()), and every file or pipe "
    "the session opened"
)
THREAD_LEAK_CAUSE = (
    "a session's thread must end when its session ends: return from the thread function (and "
    "detach it or join it), never block forever after closing; a pool must have a bound "
    "(Executors.newFixedThreadPool(n) with a sane n), or reuse its idle threads"
)


def _quiet(server: Server, children: set[int]) -> None:
    """Wait until ended sessions' children (beyond `children`, alive before them) and threads
    are gone (they hold descriptors); children that spin instead never go (lingering.py)."""
    proc = require_process(server, "FDL-1 and FDL-2")
    threads = proc.thread_count()
    watch = SpinWatch()

    def quiet() -> bool:
        new = set(proc.live_descendants()) - children
        if new & server.spinners or watch.all_spinning(new):
            raise CannotJudge(
                f"children of the {WARMUP} warm-up sessions do not exit but keep running "
                f"(see EXIT-4): {SESSIONS} sessions would leave as many spinning"
            )
        return not new and proc.thread_count() <= threads

    wait_until(quiet, SETTLE_TIMEOUT)


@dataclass(frozen=True)
class Counts:
    """Descriptors after warm-up (baseline) and after SESSIONS more sessions; the thread
    count after each round of those sessions, and once they settled."""

    fds: tuple[int, int]
    growth: ThreadGrowth
    threads_after: int
    kinds: list[tuple[str, int]]
    #: How busy the server was once the sessions ended, measured only when it kept threads
    #: (a pool's must be idle); None otherwise.
    idle: busy.Busyness | None = None


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
                if not isinstance(exc, CannotJudge):
                    # A server that gives up dies a moment after the step that saw it: let
                    # it, so its death is judged as one (deaths.py), not hidden by the stop
                    # below. (A count that cannot settle is no step of its.)
                    wait_until(lambda: not self.server.alive(), DEATH_GRACE)
                raise
            finally:
                # Counted once for both checks: the server is no longer needed, and a server
                # on a fixed port must free it for the next check's.
                self.server.retire()
        return self._counts

    def _run(self) -> Counts:
        proc = require_process(self.server, "FDL-1 and FDL-2")
        children = set(proc.live_descendants())
        run_sessions(self.server, WARMUP)
        _quiet(self.server, children)
        fds = proc.fd_count()
        most = len(proc.live_descendants()) + MAX_NEW_CHILDREN

        def churn(count: int) -> None:
            churn_sessions(self.server, count, max_live_children=most)

        growth = measure_thread_growth(
            proc, churn, sessions=SESSIONS, round_size=ROUND, until_stopped=False
        )
        # What is left once the final sessions' descriptors and threads are released: the
        # baseline, or for a pool the plateau it reached before the last TAIL sessions.
        _, before_tail = _tail(growth)
        threads_cap = max(growth.baseline, before_tail) + SLACK
        # Unless the main process, holding connections of ended sessions, can close none of
        # them any more (back in accept(): waiting.cannot_close).
        stuck = StuckWatch(
            lambda: cannot_close(
                proc.tree_pids(recent=True),
                [(s.pid, s.fd) for s in sockets_of(proc.pid) if s.raddr is not None],
                self.server.port,
            )
        )
        wait_until(
            lambda: (
                (proc.fd_count() <= fds + SLACK and proc.thread_count() <= threads_cap) or stuck()
            ),
            2 * SETTLE_TIMEOUT,
        )
        kinds = Counter(fd_targets(proc.pid)).most_common(3)
        threads = proc.thread_count()
        # Measured now: the server is stopped once counted (see counts()).
        idle = (
            busy.measure(proc, CPU_WINDOW, BUSY_SHARE)
            if threads > growth.baseline + SLACK
            else None
        )
        return Counts((fds, proc.fd_count()), growth, threads, kinds, idle)


def _tail(growth: ThreadGrowth) -> tuple[int, int]:
    """(sessions in the judged tail, the thread count before it)."""
    sessions, added = growth.added_over(TAIL)
    return sessions, growth.threads - added


@pytest.fixture(scope="module")
def workload(module_server: Server) -> Workload:
    return Workload(module_server)


DID = [
    f"ran {WARMUP} warm-up sessions, then {SESSIONS} sessions one after another "
    f"(each: connect, one message, end), counting threads every {ROUND}"
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
def test_threads_stop_growing(workload: Workload) -> None:
    """Back to the baseline, or a plateau that the last TAIL sessions do not raise and whose
    threads are idle (a pool)."""
    counts = workload.counts()
    growth, after = counts.growth, counts.threads_after
    if after <= growth.baseline + SLACK:
        return
    tail, before_tail = _tail(growth)
    if after > before_tail + SLACK:
        fail(
            f"the thread count back to its baseline ({growth.baseline}, after warm-up) or "
            f"stopped growing: at most {SLACK} more threads over the last {tail} sessions",
            f"{after} threads after {growth.sessions} sessions, still growing: "
            f"+{after - before_tail} over the last {tail} sessions "
            f"(about {(after - before_tail) / tail:.1f} left per session)",
            did=DID,
            evidence=[growth.describe().capitalize()],
            cause=THREAD_LEAK_CAUSE,
        )
    idle = counts.idle
    if idle is not None and idle.busy(BUSY_SHARE):
        fail(
            f"the {after - growth.baseline} threads kept after the sessions (a pool) idle: "
            f"under {BUSY_SHARE:.0%} of a core",
            idle.describe("after the sessions, the server"),
            did=DID,
            evidence=[growth.describe().capitalize()],
            cause="idle pool threads must block (on a queue, a condition variable, accept()), "
            "never poll for work in a loop",
        )


@requirement("FDL-1")
def test_descriptors_bounded_in_any_scenario(
    conformance_settings: Settings,
    conformance_profile: str,
    conformance_seed: int,
    conformance_one_reply: str | None,
    conformance_model: str,
) -> None:
    """Hypothesis drives clients (connect, send, exit, close, reset, signal bursts); after
    every step no server process may keep the connection of an ended session, and the main
    process holds at most one descriptor per open session beyond its start."""
    run_scenarios(
        conformance_settings,
        conformance_profile,
        conformance_seed,
        "descriptors",
        LEAK_CAUSE,
        conformance_one_reply,
        conformance_model,
    )
