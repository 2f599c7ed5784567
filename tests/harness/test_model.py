"""Pools that grow on demand are not leaks, and a server that serves one client at a time is
reported as such.

A pool may start a worker per session up to its size (Java's ThreadPoolExecutor, Go's runtime
and .NET's thread pool grow that way) and keep them all: FDL-2 and EXIT-4 must pass it, and
still fail a thread per session that never ends. Model detection must say `pool` for the
first, `thread` for the second, `iterative` for a server that serves one client at a time.
These run the detection and the two checks directly against zoo servers, so a failure names
the judgement that broke, not a whole kit run.
"""

from __future__ import annotations

import functools
import sys
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path

import pytest

from conformance.harness import Violation
from conformance.harness.model import ROUND_SLACK, ThreadGrowth, detect_model
from conformance.harness.server import Server
from tests.conftest import BUILD_FIXTURE, ROOT
from tests.servers.scripts import launched_server, script_server
from tests.servers.zoo import ZooServer, command, find

PY_SERVERS = ROOT / "tests" / "servers" / "py"


def _zoo_server(server: ZooServer, build: Path | None = None) -> ContextManager[Server]:
    """`server` launched and handed over the moment it listens (as the kit gets it)."""
    return launched_server(command(server, build or Path(".")), server.protocol)


def _build_for(server: ZooServer, request: pytest.FixtureRequest) -> Path | None:
    if server.language == "python":
        return None
    return request.getfixturevalue(BUILD_FIXTURE[server.language])


@pytest.mark.parametrize(
    "server_id, model",
    [
        ("python-ok_lazy_pool-ok", "pool"),
        ("python-ok_thread-ok", "thread"),
        ("python-thread_leak-ok", "thread"),
        ("python-serial-ok", "iterative"),
        ("c-serial-ok", "iterative"),
        ("java-ok_fixed_pool-ok", "pool"),
        ("java-ok_thread-ok", "thread"),
        ("java-pool_unbounded-ok", "thread"),
        ("go-ok_goroutine-ok", "event-loop"),
        ("go-serial-ok", "iterative"),
    ],
)
def test_model_detection_reports_what_it_saw(
    server_id: str, model: str, request: pytest.FixtureRequest
) -> None:
    """A pool's threads outlive the sessions and stop growing (the JVM's fixed pool only
    after 128 sessions, with twenty threads of the JVM's own); a leaking thread server's go
    on growing, so it is `thread`, like an unbounded pool; one client served at a time, the
    others connected and waiting, is `iterative` (it used to read `event-loop`)."""
    server = find(server_id)
    with _zoo_server(server, _build_for(server, request)) as handle:
        assert detect_model(handle) == model


@pytest.mark.parametrize(
    "server_id, passes",
    [("python-ok_lazy_pool-ok", True), ("python-thread_leak-ok", False)],
    ids=["pool-growing-to-32-passes", "thread-per-session-leak-fails"],
)
def test_thread_checks_tell_a_pool_from_a_leak(server_id: str, passes: bool) -> None:
    """EXIT-4 and FDL-2 pass a pool that grows on demand up to 32 threads and then stays
    (never back to the first count), and fail a thread left behind by every session, saying
    that the count was still growing and by how much."""
    from conformance.checks.test_exit import test_ended_sessions_free_their_process_or_thread
    from conformance.checks.test_fd_leak import Workload, test_threads_stop_growing

    kept: dict[str, int] = {}

    def fdl_2(handle: Server) -> None:
        workload = Workload(handle)
        try:
            test_threads_stop_growing(workload)
        finally:
            # The workload stops its server once counted: its threads are in the counts.
            kept["FDL-2"] = workload.counts().threads_after

    def exit_4(handle: Server) -> None:
        test_ended_sessions_free_their_process_or_thread(handle)
        assert handle.process is not None
        kept["EXIT-4"] = handle.process.thread_count()

    checks = {"EXIT-4": exit_4, "FDL-2": fdl_2}
    server = find(server_id)
    for check, run_check in checks.items():
        with _zoo_server(server) as handle:  # a fresh server per check, as the kit does
            assert handle.process is not None
            run = functools.partial(run_check, handle)
            if passes:
                run()
                assert kept[check] > 2  # it kept a pool, and passed
            else:
                with pytest.raises(Violation) as failure:
                    run()
                assert "still growing" in failure.value.actual, (check, failure.value)
                assert "Threads after 0/25/50" in failure.value.render()


def test_thread_growth_stops_at_a_plateau() -> None:
    """The judgement on the counts alone: a round that adds at most ROUND_SLACK threads is a
    stop; the growth over the last N sessions is taken from the rounds that cover them."""
    pool = ThreadGrowth(((0, 20), (25, 45), (50, 70), (75, 148), (100, 148 + ROUND_SLACK)))
    assert pool.stopped
    assert pool.added_over(50) == (50, 78 + ROUND_SLACK)
    assert pool.added_over(25) == (25, ROUND_SLACK)
    assert pool.added_over(1000) == (100, 128 + ROUND_SLACK)
    leak = ThreadGrowth(((0, 20), (25, 45), (50, 70)))
    assert not leak.stopped
    assert leak.describe() == "threads after 0/25/50 sessions: 20/45/70"
    assert not ThreadGrowth(((0, 20),)).stopped  # no round run: nothing is known


LATE_PREFORK = """
import os, socket, sys, time
s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
time.sleep(0.3)  # the workers start after the server listens, as the kit starts looking
for _ in range(4):
    if os.fork() == 0:
        while True:
            c = s.accept()[0]
            while (m := c.recv(1024)) and m != b"exit":
                c.sendall(b"OK!!!")
            c.close()
while True:
    time.sleep(1)
"""


LATE_POOL = """
import socket, sys, threading, time
s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
time.sleep(0.3)  # the pool starts after the server listens, as the kit starts looking
def work():
    while True:
        c = s.accept()[0]
        while (m := c.recv(1024)) and m != b"exit":
            c.sendall(b"OK!!!")
        c.close()
for _ in range(4):
    threading.Thread(target=work, daemon=True).start()
while True:
    time.sleep(1)
"""


@pytest.mark.parametrize(
    "source, model",
    [(LATE_PREFORK, "prefork"), (LATE_POOL, "pool")],
    ids=["prefork-workers-are-not-fork-children", "pool-is-not-thread-per-connection"],
)
def test_workers_started_after_listen_do_not_fool_model_detection(
    tmp_path: Path, source: str, model: str
) -> None:
    """A server may start its workers after it listens, while detection looks. Prefork
    workers that did not exist when detection began are not fork children; a pool's threads
    appear during the first probes, as a thread per connection's would, but outlive the
    sessions."""
    from conformance.harness.model import detect_model

    with script_server(tmp_path, source) as server:
        assert detect_model(server) == model


def test_a_pool_started_after_listen_is_not_a_thread_leak(tmp_path: Path) -> None:
    """EXIT-4 counts threads before and after its sessions. A pool that starts after the
    server listens must not look like threads the sessions left behind (with two servers
    launched ahead, the pool reference was once taken before its workers had started)."""
    from conformance.checks.test_exit import test_ended_sessions_free_their_process_or_thread

    with script_server(tmp_path, LATE_POOL) as server:
        assert server.process is not None
        assert server.process.thread_count() == 1  # the pool is not there yet
        test_ended_sessions_free_their_process_or_thread(server)


#: A prefork server that grows its pool once in use: one worker at first; when that worker
#: accepts its second connection it asks the parent (through a pipe) for three more. EXIT-4's
#: count begins after one warm-up session, so the new workers appear during its sessions.
GROWING_PREFORK = """
import os, socket, sys, time
s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
r, w = os.pipe()
def worker(first):
    served = 0
    while True:
        c = s.accept()[0]
        served += 1
        if first and served == 2:
            os.write(w, b"x")
        while (m := c.recv(1024)) and m != b"exit":
            c.sendall(b"OK!!!")
        c.close()
if os.fork() == 0:
    worker(True)
os.read(r, 1)
for _ in range(3):
    if os.fork() == 0:
        worker(False)
while True:
    time.sleep(1)
"""


def test_prefork_workers_started_during_the_sessions_are_not_left_behind(
    tmp_path: Path,
) -> None:
    """EXIT-4 counts children before and after its sessions. Workers a prefork server starts
    while they run stay, as a pool's do, and stop there: more sessions add none. (With two
    servers launched ahead, a loaded machine once handed the prefork reference to EXIT-4
    before its last two workers were forked, and it failed with "2 extra child processes".)"""
    from conformance.checks.test_exit import test_ended_sessions_free_their_process_or_thread

    with script_server(tmp_path, GROWING_PREFORK) as server:
        assert server.process is not None
        test_ended_sessions_free_their_process_or_thread(server)
        assert len(server.process.live_descendants()) == 4  # the pool grew, and passed


#: Fork per connection; each child, its session over, sleeps for good instead of exiting.
SLEEPY_CHILDREN = """
import os, signal, socket, sys, time
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
while True:
    c = s.accept()[0]
    if os.fork() == 0:
        s.close()
        while m := c.recv(1024):
            c.sendall(b"OK!!!")
            if m == b"exit":
                break
        c.close()
        time.sleep(600)
        os._exit(0)
    c.close()
"""


def test_children_that_never_exit_fail_exit_4_with_their_growth(tmp_path: Path) -> None:
    """The other way: a fork server whose children stay after their sessions, asleep, adds
    one per session however many sessions run, and EXIT-4 says so with the counts."""
    from conformance.checks.test_exit import test_ended_sessions_free_their_process_or_thread

    with script_server(tmp_path, SLEEPY_CHILDREN) as server, pytest.raises(Violation) as failure:
        test_ended_sessions_free_their_process_or_thread(server)
    actual = failure.value.actual
    assert "extra child process(es) still running" in actual
    assert "live child processes after 0/6/12/18 sessions: " in actual


def test_children_that_spin_fail_exit_4_without_more_sessions(
    request: pytest.FixtureRequest,
) -> None:
    """Children that spin after their sessions are no pool's: EXIT-4 fails on the six
    sessions it ran, naming them, without running more (each would spin on a core)."""
    from conformance.checks.test_exit import test_ended_sessions_free_their_process_or_thread

    server = find("c-busy_child-ok")
    with _zoo_server(server, _build_for(server, request)) as handle:
        handle.model = "fork"
        with pytest.raises(Violation) as failure:
            test_ended_sessions_free_their_process_or_thread(handle)
        assert handle.process is not None
        left = len(handle.process.live_descendants())
    actual = failure.value.actual
    assert "6 extra child process(es) still running" in actual, actual
    assert "spin: each used 0.2 s of CPU or more after its session ended" in actual, actual
    assert left == 7  # the warm-up session's child and the six sessions': no more ran


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
