"""Process inspection: CPU share tells a spinning process from an idle one."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import ROOT

PY_SERVERS = ROOT / "tests" / "servers" / "py"


@pytest.mark.parametrize("schedstat", [True, False], ids=["schedstat", "clock-ticks"])
def test_cpu_share_tells_a_spinning_process_from_an_idle_one(
    monkeypatch: pytest.MonkeyPatch, schedstat: bool
) -> None:
    """EXIT-4's busy-loop test, both ways of measuring: nanoseconds from schedstat, and the
    clock ticks psutil reads where schedstat is missing. The spinner is compared with the
    idle process, not with a share of a core: at a load average of 100 on 2 cores it gets
    about 2% of one, still more than an idle process's nothing."""
    import subprocess

    from conformance.harness import processes
    from conformance.harness.polling import wait_until

    monkeypatch.setattr(processes, "_HAS_SCHEDSTAT", schedstat and processes._HAS_SCHEDSTAT)
    if schedstat and not processes._HAS_SCHEDSTAT:
        pytest.skip("this kernel has no /proc/PID/schedstat")
    spinner = subprocess.Popen([sys.executable, "-S", "-c", "while True: pass"])
    idle = subprocess.Popen(["sleep", "30"])
    try:
        # Measured once it sleeps: starting up is not idling.
        assert wait_until(lambda: processes.proc_table()[idle.pid][1] == "S", 5)[0]
        busy = processes.ServerProcess(spinner.pid).cpu_share(2.0)
        calm = processes.ServerProcess(idle.pid).cpu_share(2.0)
        assert calm < processes.IDLE_SHARE
        assert busy > calm
    finally:
        for p in (spinner, idle):
            p.kill()
            p.wait(5)


def test_starved_since_tells_waiting_for_a_cpu_from_sleeping() -> None:
    """CONC-5's deadline is extended by the time the server waited for a CPU: two spinners
    pinned to one CPU each wait for it about half the time; a sleeping process waits for
    none, however busy the machine (so a serial server blocked in recv() gets no extension)."""
    import os
    import subprocess
    import time

    from conformance.harness import processes
    from conformance.harness.polling import wait_until

    if not processes._HAS_SCHEDSTAT:
        pytest.skip("this kernel has no /proc/PID/schedstat")
    cpu = min(os.sched_getaffinity(0))
    spin = [sys.executable, "-S", "-c", "while True: pass"]
    spinners = [subprocess.Popen(spin) for _ in range(2)]
    idle = subprocess.Popen(["sleep", "30"])
    try:
        for p in spinners:
            os.sched_setaffinity(p.pid, {cpu})
        busy, calm = processes.ServerProcess(spinners[0].pid), processes.ServerProcess(idle.pid)
        # Measured once it sleeps: its start-up, which may wait for a CPU, is not sleeping.
        assert wait_until(lambda: processes.proc_table()[idle.pid][1] == "S", 5)[0]
        before_busy, before_calm = busy.run_delays(), calm.run_delays()
        time.sleep(1.0)
        assert busy.starved_since(before_busy) > 0.1
        assert calm.starved_since(before_calm) < 0.01
    finally:
        for p in (*spinners, idle):
            p.kill()
            p.wait(5)


@pytest.mark.parametrize(
    ("state", "runs", "starved"),
    [("R", False, True), ("S", False, False), ("R", True, False)],
    ids=["runnable-never-run", "asleep", "running"],
)
def test_a_wait_the_kernel_has_not_recorded_yet_counts(
    monkeypatch: pytest.MonkeyPatch, state: str, runs: bool, starved: bool
) -> None:
    """starved_since: schedstat records a wait only once the thread gets a CPU. A thread
    runnable for the whole second since `before` that got no turn (a session's child that
    a busy machine, a JVM beside it, left unscheduled for over a second: a false FDL-1 on
    busy_child) waited that second; one asleep did not, nor one that ran all along."""
    import os

    from conformance.harness import processes
    from tests.harness.test_busy import FakeClock

    clock = FakeClock()
    monkeypatch.setattr(processes, "time", clock)
    monkeypatch.setattr(processes, "_HAS_SCHEDSTAT", True)
    monkeypatch.setattr(processes, "thread_state", lambda pid, tid: state)
    proc = processes.ServerProcess(os.getpid())
    ran = {"ns": 5_000_000}

    def thread_times() -> dict[tuple[int, int], tuple[int, int, int]]:
        return {(1, 7): (ran["ns"], 3_000_000, 2)}  # its recorded wait never grows

    monkeypatch.setattr(proc, "thread_times", thread_times)
    before = proc.run_delays()
    clock.sleep(1.0)
    if runs:
        ran["ns"] += 1_000_000_000
    got = proc.starved_since(before)
    assert (got >= 0.9) is starved, got


def test_a_reparented_grandchild_is_still_the_servers() -> None:
    """Stevens' double fork: the grandchild's parent exits at once and someone else adopts
    it, but it carries the launch's token, so it is one of the server's processes (and no
    zombie of the server's); the stop ends it."""
    from conformance.harness import launch
    from conformance.harness.polling import wait_until
    from conformance.harness.processes import ServerProcess, is_running

    server = launch(
        f"{sys.executable} {ROOT / 'tests/servers/py/double_fork_sleeper.py'} --port {{port}}"
    )
    try:
        proc = ServerProcess(server.listener_pid or server.pid, server.token)
        # Until the child exits, the grandchild is a descendant like any other.
        found, adopted = wait_until(proc.adopted, 5.0)
        assert found, "the reparented grandchild was not found"
        (grandchild,) = adopted
        assert grandchild not in ServerProcess(proc.pid).tree_pids()  # not a descendant
        assert grandchild in proc.tree_pids()
        # The child has exited; the server reaps it (waitpid) when it next runs.
        wait_until(
            lambda: proc.live_descendants() == [grandchild] and not proc.zombie_descendants(),
            5.0,
        )
        assert proc.live_descendants() == [grandchild]
        assert proc.zombie_descendants() == []
    finally:
        server.stop()
    assert not is_running(grandchild)


@pytest.mark.parametrize("linger", ["0", "1.5"])
def test_a_daemonizing_server_is_followed_to_the_process_that_listens(linger: str) -> None:
    """daemon(3): the launched process exits with status 0 and its child listens; the kit
    follows it (the listener's owner is the server) and the stop leaves nothing running.
    With `linger` the child listens 1.5 s before the parent exits, as on a busy machine
    (tox's 3.12 run once saw it): the kit follows the daemon once the parent is gone, and
    does not take the parent's exit for the server's."""
    from conformance.harness import launch
    from conformance.harness.polling import wait_until
    from conformance.harness.processes import ServerProcess, is_running

    server = launch(
        f"{sys.executable} {ROOT / 'tests/servers/py/double_fork_sleeper.py'} "
        f"--port {{port}} --daemon --linger {linger}"
    )
    try:
        assert server.listener_pid is not None and server.listener_pid != server.pid
        # The child may listen before the launched process has exited (a busy machine):
        # once it has, the kit follows the daemon, and the server still runs.
        assert server.popen is not None
        assert wait_until(lambda: server.popen.poll() is not None, 10)[0]
        assert server.returncode() is None  # the daemon runs
        assert server.daemonized
        daemon = server.listener_pid
        assert ServerProcess(daemon, server.token).alive()
    finally:
        report = server.stop()
    assert not is_running(daemon)
    assert report.leftovers == []


def test_the_wrappers_above_a_server_are_not_its_processes() -> None:
    """A server started under two wrappers (`sh -c` and another process, as the grader's
    sandbox and its init are): the wrappers carry the launch's token, but they are above
    the server, not among its processes, so a server with no children has none. Before, only
    the direct parent counted as above: the sandbox's `sh -c` was taken for an adopted
    child, and EINTR-1 was skipped for every graded fork server ("children do not exit")."""
    from conformance.harness import launch
    from conformance.harness.processes import ServerProcess

    fork = ROOT / "reference_servers" / "fork_server.py"
    # Neither shell can exec what it runs (a command follows): two processes above.
    server = launch(f"sh -c '{sys.executable} -S {fork} --port {{port}}; true'; true")
    try:
        proc = ServerProcess(server.listener_pid or server.pid, server.token)
        assert server.listener_pid != server.pid
        assert proc.adopted() == []
        assert proc.live_descendants() == []
    finally:
        server.stop()
