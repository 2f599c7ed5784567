"""busy.measure: a spinning server is told from one at rest on a busy machine too (EXIT-4,
FDL-2), where a spinner gets only its turn of a CPU and the CPU it used no longer tells."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conformance.harness import busy, processes
from conformance.harness.polling import wait_until

LIMIT = 0.2
WINDOW = 0.5


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class StandIn:
    """A server of one thread that, until `rest_at` s, is runnable all the time but on a
    CPU only `used` of it (then sleeps); its times read from the fake clock."""

    def __init__(self, clock: FakeClock, used: float, rest_at: float) -> None:
        self.clock, self.used, self.rest_at = clock, used, rest_at
        self.looks = 0

    def thread_times(self) -> dict[tuple[int, int], tuple[int, int, int]]:
        self.looks += 1
        busy_s = min(self.clock.now, self.rest_at)
        run = busy_s * self.used
        turns = int(run / 0.003)  # 3 ms slices: bound by the CPU
        return {(7, 7): (int(run * 1e9), int((busy_s - run) * 1e9), turns)}

    def cpu_share(self, window: float) -> float:
        start = self.clock.now
        before = self.thread_times()[(7, 7)][0]
        self.clock.sleep(window)
        return (self.thread_times()[(7, 7)][0] - before) / 1e9 / (self.clock.now - start)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(busy.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(busy.time, "sleep", fake.sleep)
    monkeypatch.setattr(processes, "_HAS_SCHEDSTAT", True)
    return fake


def test_a_spinner_given_little_cpu_is_busy(clock: FakeClock) -> None:
    """Runnable all the time, on a CPU 5% of it (a load of 40 on 2 cores): followed for
    STARVED_FOLLOW, then busy, judged on what it wanted."""
    server = StandIn(clock, used=0.05, rest_at=1e9)
    seen = busy.measure(server, WINDOW, LIMIT)  # type: ignore[arg-type]
    assert seen.starved and seen.busy(LIMIT)
    assert seen.used < LIMIT < seen.wanted
    assert clock.now >= busy.STARVED_FOLLOW
    assert [t.tid for t in seen.spinning(LIMIT / 2)] == [7]
    assert "waiting for one" in seen.describe()


def test_finite_work_on_a_busy_machine_comes_to_rest(clock: FakeClock) -> None:
    """Runnable for 1.2 s at 5% of a CPU (a runtime's compiler after the sessions), then
    asleep: followed until its last WINDOW wants nothing, and idle."""
    server = StandIn(clock, used=0.05, rest_at=1.2)
    seen = busy.measure(server, WINDOW, LIMIT)  # type: ignore[arg-type]
    assert not seen.busy(LIMIT)
    assert 1.2 < clock.now < busy.STARVED_FOLLOW


def test_a_server_at_rest_is_not_followed(clock: FakeClock) -> None:
    server = StandIn(clock, used=0.0, rest_at=0.0)
    seen = busy.measure(server, WINDOW, LIMIT)  # type: ignore[arg-type]
    assert not seen.busy(LIMIT) and not seen.starved
    assert clock.now == pytest.approx(WINDOW)


def test_a_spinner_on_a_quiet_machine_is_judged_on_what_it_used(clock: FakeClock) -> None:
    server = StandIn(clock, used=1.0, rest_at=1e9)
    seen = busy.measure(server, WINDOW, LIMIT)  # type: ignore[arg-type]
    assert seen.busy(LIMIT) and not seen.starved
    assert seen.used == pytest.approx(1.0)
    assert clock.now == pytest.approx(WINDOW)


#: Ordinary spinning processes beside the spinner on its CPU: it gets about a ninth of it.
HOGS = 8


def test_real_spinner_starved_by_hogs_is_busy_and_a_waker_beside_it_is_not() -> None:
    """A spinner pinned to one CPU with HOGS other spinners gets about 11% of it (less on a
    busy machine): the CPU it used says idle (the measure that passed the Java EofSpin server
    in one CI run), what it wanted says busy. A process that wakes every 5 ms on the same
    CPU waits as long for it each time, but runs microseconds a turn: at rest."""
    if not processes._HAS_SCHEDSTAT:
        pytest.skip("this kernel has no /proc/PID/schedstat")
    cpu = min(os.sched_getaffinity(0))
    spin = [sys.executable, "-S", "-c", "while True: pass"]
    wake = [sys.executable, "-S", "-c", "import time\nwhile True: time.sleep(0.005)"]
    started = [subprocess.Popen(spin) for _ in range(HOGS + 1)]
    spinner = started[-1]
    try:
        waker = subprocess.Popen(wake)
        started.append(waker)
        for p in started:
            os.sched_setaffinity(p.pid, {cpu})
        assert wait_until(lambda: processes.proc_table()[waker.pid][1] == "S", 5)[0]
        starved = processes.ServerProcess(spinner.pid)
        assert starved.cpu_share(WINDOW) < LIMIT  # what the CPU used alone would say
        seen = busy.measure(starved, WINDOW, LIMIT)
        assert seen.starved and seen.busy(LIMIT), seen
        calm = busy.measure(processes.ServerProcess(waker.pid), WINDOW, LIMIT)
        assert not calm.busy(LIMIT), calm
    finally:
        for p in started:
            p.kill()
            p.wait(5)
