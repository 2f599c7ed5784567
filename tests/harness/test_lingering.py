"""lingering.SpinWatch, and the waits it ends: a child that spins after its session instead of
exiting is told apart by the CPU it uses, never by how long it stays, so a child that sleeps,
or did some work and rests, is never taken for one."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.harness.lingering import SpinWatch
from conformance.harness.polling import wait_until
from conformance.harness.sessions import session
from tests.servers.scripts import script_server

#: Finite work: about a quarter of SPUN_CPU of CPU, then rest.
FINITE = "import time\nend = time.process_time() + 0.05\nwhile time.process_time() < end: pass\n"


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        p.kill()
        p.wait()


def _python(procs: list[subprocess.Popen[bytes]], code: str) -> int:
    p = subprocess.Popen([sys.executable, "-S", "-c", code])
    procs.append(p)
    return p.pid


def test_only_a_process_that_keeps_running_spins(
    started: list[subprocess.Popen[bytes]],
) -> None:
    spinner = _python(started, "while True: pass")
    sleeper = _python(started, "import time; time.sleep(60)")
    worker = _python(started, FINITE + "time.sleep(60)")
    watch = SpinWatch()
    everyone = [spinner, sleeper, worker]
    assert watch.spinning(everyone) == set()  # the first look: CPU from now on
    # However long a busy machine keeps the spinner from a CPU: bounded, not timed.
    seen, found = wait_until(lambda: watch.spinning(everyone), 30)
    assert seen and found == {spinner}
    assert watch.all_spinning([spinner]) and not watch.all_spinning([spinner, worker])
    assert not watch.all_spinning([])


#: A fork server (port argv[1]) whose child, once its session ended, exits or does BEHAVIOUR.
FORKER = """
import os, signal, socket, sys, time
signal.signal(signal.SIGCHLD, lambda *_: os.waitpid(-1, os.WNOHANG))
s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
while True:
    try:
        c = s.accept()[0]
    except InterruptedError:
        continue
    if os.fork() == 0:
        s.close()
        while (data := c.recv(1024)) and data != b"exit":
            c.sendall(b"OK!!!")
        if data:
            c.sendall(b"OK!!!")
        c.close()
        BEHAVIOUR
        os._exit(0)
    c.close()
"""


@pytest.mark.parametrize(
    ("behaviour", "lingers", "spins"),
    [("pass", False, False), ("time.sleep(60)", True, False), ("while True: pass", True, True)],
    ids=["exits", "sleeps", "spins"],
)
def test_a_session_of_a_fork_server_waits_for_its_child_unless_it_spins(
    tmp_path: Path, behaviour: str, lingers: bool, spins: bool
) -> None:
    """await_release: the child that exits is waited for; one that sleeps is waited for until
    SETTLE_TIMEOUT, then not again; one that spins ends the wait once seen, and is named."""
    with script_server(tmp_path, FORKER.replace("BEHAVIOUR", behaviour)) as server:
        server.model = "fork"
        assert server.process is not None
        with session(server) as client:
            client.request(b"hello")
        children = set(server.process.live_children())
        assert server.lingering is lingers
        assert server.spinners == (children if spins else set())
        assert bool(children) is lingers
