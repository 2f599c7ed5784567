"""Signals and strace: pending signals are seen, a slow strace never fails a check."""

from __future__ import annotations

import sys

from tests.conftest import ROOT

PY_SERVERS = ROOT / "tests" / "servers" / "py"


def test_a_slow_strace_is_ended_without_failing_the_check() -> None:
    """strace slow to detach and to die (CI at a load of 80 saw both take over a second) is
    killed and waited for, and never raises into the check, which would blame the server."""
    import subprocess

    from conformance.harness.signals import _stop_tracer

    class Slow:
        signals: list[str] = []  # noqa: RUF012

        def poll(self) -> None:
            return None

        def send_signal(self, sig: int) -> None:
            self.signals.append("TERM")

        def kill(self) -> None:
            self.signals.append("KILL")

        def wait(self, timeout: float) -> int:
            raise subprocess.TimeoutExpired("strace", timeout)

    slow = Slow()
    _stop_tracer(slow)  # type: ignore[arg-type]
    assert slow.signals == ["TERM", "KILL"]


def test_signal_pending_sees_a_blocked_signal_and_its_delivery() -> None:
    """EINTR-1 goes on once the parent has taken its child's SIGCHLD: the pending bit must
    be seen while the signal is blocked, and gone once it is delivered."""
    import signal
    import subprocess

    from conformance.harness.polling import wait_until
    from conformance.harness.processes import ServerProcess

    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGCHLD, lambda *a: None)\n"
        "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})\n"
        "print('blocked', flush=True); sys.stdin.readline()\n"
        "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})\n"
        "time.sleep(30)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-S", "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline() == b"blocked\n"
        proc = ServerProcess(child.pid)
        assert not proc.signal_pending(signal.SIGCHLD)
        child.send_signal(signal.SIGCHLD)
        assert wait_until(lambda: proc.signal_pending(signal.SIGCHLD), 5)[0]
        assert not proc.signal_pending(signal.SIGWINCH)
        child.stdin.write(b"go\n")
        child.stdin.flush()
        assert wait_until(lambda: not proc.signal_pending(signal.SIGCHLD), 5)[0]
    finally:
        child.kill()
        child.wait(5)


def test_a_thread_blocked_reading_is_found_and_interrupted() -> None:
    """EINTR-2 does not leave hitting a blocked read to a storm's luck: it waits until a
    thread of the server blocks reading and sends that thread a signal. Here the reader's
    SIGCHLD handler exits, so the signal is seen to land while it is blocked."""
    import subprocess
    import sys

    from conformance.harness.polling import wait_until
    from conformance.harness.processes import ServerProcess
    from conformance.harness.signals import blocked_in_read, interrupt_reads

    code = (
        "import os,signal,sys\n"
        "signal.signal(signal.SIGCHLD, lambda *a: sys.exit(7))\n"
        "os.read(0, 1)\n"
    )
    reader = subprocess.Popen([sys.executable, "-S", "-c", code], stdin=subprocess.PIPE)
    try:
        blocked = [(reader.pid, reader.pid)]  # its one thread, in read(0)
        assert wait_until(lambda: blocked_in_read([reader.pid]) == blocked, 10.0)[0]
        assert interrupt_reads(ServerProcess(reader.pid), 10.0) == 1
        assert reader.wait(10) == 7
    finally:
        reader.kill()
        reader.wait(5)
        assert reader.stdin is not None
        reader.stdin.close()


def test_blocks_reads_o_nonblock_and_injections_there_are_not_judged(tmp_path) -> None:
    """A call on a non-blocking descriptor never sleeps, so an EINTR injected there is the
    injection's artefact, as one on a regular file is; one on a blocking socket is not."""
    import os
    import socket

    from conformance.harness.signals import blocks, injected_without_signal

    a, b = socket.socketpair()
    with a, b:
        b.setblocking(False)
        me = os.getpid()
        assert blocks(me, a.fileno()) is True
        assert blocks(me, b.fileno()) is False
        path_a = os.readlink(f"/proc/{me}/fd/{a.fileno()}")
        path_b = os.readlink(f"/proc/{me}/fd/{b.fileno()}")
        assert blocks(me, b.fileno(), "socket:[1]") is None  # another descriptor by now
        log = tmp_path / "strace.log"
        line = "{pid} read({fd}<{path}>, 0x7ffd, 1024) = -1 EINTR (Interrupted) (INJECTED)\n"
        log.write_text(
            line.format(pid=me, fd=a.fileno(), path=path_a)
            + line.format(pid=me, fd=b.fileno(), path=path_b)
            + line.format(pid=me, fd=3, path="/usr/lib/libc.so.6")
        )
        found = injected_without_signal(str(log))
    assert found == [
        f"pid {me}: read() of {path_b}, a non-blocking descriptor",
        f"pid {me}: read() of /usr/lib/libc.so.6",
    ]
