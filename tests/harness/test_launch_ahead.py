"""Servers started ahead and retired without waiting: none waits on another's exit, none is
left behind.

A retired server is sent SIGTERM and left to exit while the next check runs; its stop is
completed once it has exited or had its grace (then SIGKILL), and at close() in any case. A
JVM takes some 0.3 s to shut down, more than a hypothesis example against it takes: waiting
for each one's exit before the next example cost a Java server's run about 10 s.
"""

from __future__ import annotations

import sys
from pathlib import Path

import psutil

from conformance.harness.launch_ahead import LaunchAhead
from conformance.harness.polling import wait_until
from conformance.harness.timeouts import STOP_GRACE

#: Listens on argv[1]; on SIGTERM it takes LINGER seconds to exit, as a JVM runs its
#: shutdown hooks (LINGER well above STOP_GRACE: it is killed before it is done).
LINGERING = """
import signal, socket, sys, time
s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
def linger(*_):
    time.sleep(float(sys.argv[2]))
    sys.exit(0)
signal.signal(signal.SIGTERM, linger)
while True:
    s.accept()[0].close()
"""


def _command(tmp_path: Path, linger: float) -> str:
    script = tmp_path / "lingering.py"
    script.write_text(LINGERING)
    return f"{sys.executable} -S {script} {{port}} {linger}"


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_retired_server_exits_while_the_next_one_is_used(tmp_path: Path) -> None:
    ahead = LaunchAhead(depth=1)
    command = _command(tmp_path, 2.0)
    try:
        first = ahead.take(command)
        ahead.retire(first)
        # Retiring did not wait for it: it still lingers in its SIGTERM handler...
        assert not first.stopped and first.returncode() is None
        second = ahead.take(command)
        ahead.retire(second)
        # ...nor did retiring the next one: the first is left to exit by itself.
        assert not first.stopped
        assert wait_until(lambda: first.returncode() is not None, 10)[0]
        third = ahead.take(command)
        ahead.retire(third)  # completes the stop of those that have exited
        assert first.stopped
    finally:
        ahead.close()
    assert all(s.stopped and _gone(s.pid) for s in (first, second, third))


def test_a_retired_server_that_outlasts_its_grace_is_killed(tmp_path: Path) -> None:
    ahead = LaunchAhead(depth=1)
    command = _command(tmp_path, 60)
    try:
        first = ahead.take(command)
        ahead.retire(first)
        assert not first.stopped
        # Still in its handler when its grace is up: the next retire SIGKILLs it.
        assert wait_until(
            lambda: first.terminated_at is not None and first.returncode() is None, 1
        )[0]
        second = ahead.take(command)
        wait_until(lambda: False, STOP_GRACE)
        ahead.retire(second)
        assert first.stopped and _gone(first.pid)
    finally:
        ahead.close()
    assert _gone(second.pid)


def test_close_stops_the_servers_still_exiting_and_those_never_taken(tmp_path: Path) -> None:
    ahead = LaunchAhead(depth=2)
    command = _command(tmp_path, 60)
    taken = ahead.take(command)
    ahead.retire(taken)
    pending = [s for servers in ahead._next.values() for s in servers]
    assert pending  # started ahead, never taken
    ahead.close()
    assert taken.stopped and _gone(taken.pid)
    assert all(s.stopped and _gone(s.pid) for s in pending)
