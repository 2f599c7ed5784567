"""Whether a server that should be idle is busy: the CPU it used, or on a busy machine the
CPU it waited for.

A thread that spins (a loop calling recv() after it returned 0) uses a core on a quiet
machine. On a busy one it gets only its turn: at a load of 30 on 2 cores three spinning
threads use some 20% of a core between them, and a share of the CPU *used* no longer tells
them from a server at rest. What it still shows is that they are always runnable: the
scheduler's run-queue time (schedstat's second field) fills the rest of their wall time,
and each turn they get is a whole time slice (milliseconds; schedstat's third field counts
the turns). A thread at rest that wakes now and then (a JVM's periodic task, Go's sysmon)
also waits longer for a CPU on a busy machine, but runs microseconds a turn: its wait is
the machine's, and only what it used counts.

So a server that used little but was runnable much is followed for a while. Finite work (a
runtime compiling or collecting after the sessions, a late reply) ends and its threads go
to sleep; a spinning thread stays runnable for as long as it is watched. Where the kernel
keeps no schedstat, the CPU used is all there is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from conformance.harness import processes
from conformance.harness.processes import ServerProcess

#: How long a server that was runnable but not running (the machine busy) is followed
#: before its wanting a CPU all that time counts as spinning. Finite work of a correct
#: server (a JVM's compiler and collector after the sessions) ends well within it even at a
#: load of 30 on 2 cores.
STARVED_FOLLOW = 3.0
#: How often a starved server is looked at while followed.
FOLLOW_STEP = 0.1
#: A thread that ran this long a turn on average is bound by the CPU (a spinner, or a
#: runtime's compiler at work), not waking briefly from a wait: its run-queue time counts as
#: wanted. A time slice is 0.75 to 4 ms (CFS, EEVDF); a wake-up's work, microseconds.
CPU_BOUND_TURN_NS = 300_000

Times = dict[tuple[int, int], tuple[int, int, int]]


@dataclass(frozen=True)
class Spinner:
    pid: int
    tid: int
    #: Share of a core: used (on a CPU), and wanted (on a CPU, or waiting for one when the
    #: thread is bound by the CPU: see CPU_BOUND_TURN_NS).
    used: float
    wanted: float


@dataclass(frozen=True)
class Busyness:
    """What the server's threads did over `seconds`, in shares of one core."""

    used: float
    wanted: float
    seconds: float
    #: Judged on what it wanted: the machine gave it too little CPU to judge what it used.
    starved: bool
    threads: list[Spinner]

    def busy(self, limit: float) -> bool:
        return (self.wanted if self.starved else self.used) > limit

    def describe(self, what: str = "the server and its children") -> str:
        used = f"{what} used {self.used:.0%} of a core over {self.seconds:.1f} s"
        if not self.starved:
            return used
        return (
            f"{used}, and were runnable (on a CPU, or waiting for one) for {self.wanted:.0%} "
            f"of a core all that time: the machine was busy, and an idle server waits for no CPU"
        )

    def spinning(self, floor: float) -> list[Spinner]:
        """The threads above `floor` of a core, busiest first (by what decided the verdict)."""
        key = (lambda t: t.wanted) if self.starved else (lambda t: t.used)
        return sorted((t for t in self.threads if key(t) > floor), key=lambda t: -key(t))


def _shares(before: Times, after: Times, seconds: float) -> list[Spinner]:
    shares = []
    for (pid, tid), (run, wait, turns) in after.items():
        run0, wait0, turns0 = before.get((pid, tid), (0, 0, 0))
        ran, waited, turned = max(0, run - run0), max(0, wait - wait0), turns - turns0
        used = ran / 1e9 / seconds
        bound = turned > 0 and ran / turned >= CPU_BOUND_TURN_NS
        wanted = used + (waited / 1e9 / seconds if bound else 0.0)
        shares.append(Spinner(pid, tid, used, wanted))
    return shares


def _busyness(before: Times, after: Times, seconds: float, starved: bool) -> Busyness:
    threads = _shares(before, after, max(seconds, 1e-9))
    return Busyness(
        used=sum(t.used for t in threads),
        wanted=sum(t.wanted for t in threads),
        seconds=seconds,
        starved=starved,
        threads=threads,
    )


def measure(proc: ServerProcess, window: float, limit: float) -> Busyness:
    """How busy the server tree is over `window` (ServerProcess.cpu_share, which ends early
    for a server at rest), followed up to STARVED_FOLLOW while it wants more than `limit` of
    a core but gets no more than that."""
    t0, first = time.monotonic(), proc.thread_times()
    used = proc.cpu_share(window)
    t1, now = time.monotonic(), proc.thread_times()
    if not processes._HAS_SCHEDSTAT:
        return Busyness(used, used, t1 - t0, False, [])
    whole = _busyness(first, now, t1 - t0, starved=False)
    if used > limit or whole.wanted <= limit:
        return Busyness(used, whole.wanted, whole.seconds, False, whole.threads)
    # Starved: follow it. Each look judges the last `window` seconds; the first that wants
    # no more than `limit` is a server come to rest.
    history = [(t0, first), (t1, now)]
    while time.monotonic() - t0 < STARVED_FOLLOW:
        time.sleep(FOLLOW_STEP)
        t, now = time.monotonic(), proc.thread_times()
        history.append((t, now))
        ref_t, ref = next((h for h in reversed(history) if t - h[0] >= window), history[0])
        recent = _busyness(ref, now, t - ref_t, starved=True)
        if recent.wanted <= limit:
            return Busyness(recent.used, recent.wanted, recent.seconds, False, recent.threads)
    return _busyness(first, now, time.monotonic() - t0, starved=True)
