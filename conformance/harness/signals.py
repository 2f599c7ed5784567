"""Signal storms and injected EINTR: the two ways the kit interrupts a server's system calls.

A storm sends signals whose default action is to do nothing (SIGCHLD, SIGWINCH, SIGURG) to the
server and its children, bounded in count and time. A correct server with handlers retries
the interrupted calls; one without handlers ignores them. Injection uses Debian's strace to
make accept/read/recv calls fail with EINTR without any signal at all, attaching to the running
server so that start-up code (the dynamic loader reads files too) is never disturbed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator

from conformance.harness import syscalls
from conformance.harness.polling import wait_until
from conformance.harness.processes import ServerProcess, thread_state
from conformance.harness.timeouts import KILL_WAIT, LOOPBACK_TIMEOUT, STOP_GRACE

STORM_SIGNALS = (signal.SIGCHLD, signal.SIGWINCH, signal.SIGURG)
#: The calls EINTR-3 injects EINTR into, by the descriptor they wait on: a connection is
#: read with read/recvfrom/recvmsg; the listening socket is accepted from.
ACCEPT_CALLS = ("accept", "accept4")
READ_CALLS = ("read", "recvfrom", "recvmsg")
INJECTED = ",".join(ACCEPT_CALLS + READ_CALLS)


class Storm:
    """Signals sent from a background thread until stopped, at most `limit` in all."""

    def __init__(self, proc: ServerProcess, limit: int = 20000, duration: float = 5.0) -> None:
        self.proc = proc
        self.limit = limit
        self.duration = duration
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.duration
        targets = [self.proc.pid]
        i = 0
        while not self._stop.is_set() and self.sent < self.limit and time.monotonic() < deadline:
            if i % 50 == 0:  # pick up children forked since the last look
                targets = self.proc.tree_pids()
            for pid in targets:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, STORM_SIGNALS[i % len(STORM_SIGNALS)])
                    self.sent += 1
            i += 1
            if i % 20 == 0:
                time.sleep(0.0005)  # let the server run between volleys on a 2-core machine

    def __enter__(self) -> Storm:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(LOOPBACK_TIMEOUT)


def blocked_in_read(pids: list[int]) -> list[tuple[int, int]]:
    """(pid, tid) of every thread of `pids` blocked in a call that waits for a client (a read,
    an accept, a multiplexer): where a signal makes a server meet EINTR. Empty where /proc
    cannot say (another user's process, a machine not in the table)."""
    found = []
    for pid in pids:
        for tid in syscalls.thread_ids(pid):
            call = syscalls.current_call(pid, tid)
            if call is not None and call[0] in syscalls.WAIT_FOR_CLIENT:
                found.append((pid, tid))
    return found


def signal_thread(pid: int, tid: int, signum: int) -> bool:
    """tgkill(): `signum` to that very thread (kill() may hand it to another thread)."""
    import ctypes

    number = syscalls.number("tgkill")
    if number is None:
        return False
    return ctypes.CDLL(None, use_errno=True).syscall(number, pid, tid, signum) == 0


def interrupt_reads(proc: ServerProcess, timeout: float) -> int:
    """Wait (at most `timeout`) until some thread of the server is blocked waiting for a
    client, then send each such thread one of the storm's signals; how many were sent.

    A storm hits a blocked read only by luck, more rarely the busier the machine. This makes
    it certain: a server that gives up a session on EINTR then gives it up every time."""
    blocked: list[tuple[int, int]] = []

    def look() -> bool:
        blocked[:] = blocked_in_read(proc.tree_pids(recent=True))
        return bool(blocked)

    wait_until(look, timeout)
    sent = 0
    for i, (pid, tid) in enumerate(blocked):
        sent += signal_thread(pid, tid, STORM_SIGNALS[i % len(STORM_SIGNALS)])
    return sent


class StraceUnavailable(Exception):
    """strace is missing or ptrace is not allowed here; str() says which."""


@contextlib.contextmanager
def injected_eintr(
    pid: int, log_path: str, calls: str = INJECTED
) -> Iterator[subprocess.Popen[bytes]]:
    """Attach strace to `pid` (and its threads and future children); every second of
    `calls` (by default accept/accept4/read/recvfrom/recvmsg) fails with EINTR until the
    block ends."""
    strace = shutil.which("strace")
    if strace is None:
        raise StraceUnavailable("strace is not installed (Debian: apt-get install strace)")
    argv = [
        strace,
        "-f",
        "-qq",
        "-y",  # each descriptor's path, so `injected_on_files` can tell files from sockets
        "-o",
        log_path,
        "-e",
        f"trace={calls}",
        "-e",
        f"inject={calls}:error=EINTR:when=2+2",
        "-p",
        str(pid),
    ]
    with open(log_path + ".stderr", "wb") as err:
        tracer = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    try:
        _attached, _ = wait_until(
            lambda: _traced(pid) or tracer.poll() is not None, LOOPBACK_TIMEOUT
        )
        if tracer.poll() is not None or not _traced(pid):
            with open(log_path + ".stderr", "rb") as f:
                why = f.read().decode(errors="replace").strip().splitlines()[-1:] or ["?"]
            raise StraceUnavailable(f"strace could not attach (ptrace not allowed?): {why[0]}")
        yield tracer
    finally:
        _asleep_for_detach(pid)
        _stop_tracer(tracer)


#: An injected failure in strace's log (`-y`): the descriptor's path between < and >.
_INJECTED_LINE = re.compile(
    r"^(?P<pid>\d+)\s+(?P<call>\w+)\((?P<fd>\d+)<(?P<path>[^>]*)>.*\(INJECTED\)"
)


def injected_without_signal(log_path: str) -> list[str]:
    """The injected EINTRs (from strace's log) where no signal can cause one: a read of a
    regular file, or a call on a descriptor that is non-blocking (when it is still open).

    A signal never makes read() of a regular file on a local file system fail with EINTR, so
    those are the injection's artefacts, not anything a server meets: the dynamic loader of a
    program a fork server executes per connection (tcpserver, inetd, socat's EXEC) reads its
    libraries with read() and gives up on EINTR ("cannot read file data: Error 4"). Nor does
    a call on a non-blocking descriptor: it never sleeps, and the kernel answers EAGAIN
    before it looks at pending signals (tcp_recvmsg), so an event loop's self-pipe or a
    non-blocking connection read among blocking ones may treat EINTR as fatal.
    """
    found = []
    with contextlib.suppress(OSError), open(log_path, errors="replace") as f:
        for line in f:
            m = _INJECTED_LINE.match(line)
            if m is None:
                continue
            where = f"pid {m['pid']}: {m['call']}() of {m['path']}"
            if m["path"].startswith("/"):
                found.append(where)
            elif blocks(int(m["pid"]), int(m["fd"]), m["path"]) is False:
                found.append(f"{where}, a non-blocking descriptor")
    return found


def blocks(pid: int, fd: int, path: str | None = None) -> bool | None:
    """Whether a call on descriptor `fd` of `pid` can sleep (O_NONBLOCK is clear), from
    /proc/PID/fdinfo; None when it cannot be read, or (`path` given, as strace's `-y` or
    readlink print it) the descriptor now refers to something else."""
    try:
        if path is not None and os.readlink(f"/proc/{pid}/fd/{fd}") != path:
            return None
        with open(f"/proc/{pid}/fdinfo/{fd}") as f:
            for line in f:
                if line.startswith("flags:"):
                    return not int(line.split()[1], 8) & os.O_NONBLOCK
    except (OSError, ValueError):
        return None
    return None


#: How long strace's detach waits for the tracees to be asleep in a system call.
DETACH_QUIET = 1.0


def _asleep_for_detach(pid: int) -> None:
    """Wait (at most DETACH_QUIET) until every thread of the server's main process `pid`
    sleeps in a system call (state S or D) at two looks 20 ms apart. A call strace fails
    with EINTR never sleeps: it stops at its entry (state t) and returns at once. Detached
    there, between the entry, whose call number strace replaced, and the exit, where it sets
    the error, the call returns ENOSYS, which no server can be asked to survive. A fork
    server is most exposed when a child exits at the end of the check: SIGCHLD sets its
    accept() going round, each second call failed by strace. A main process asleep has no
    such call in flight. (Its children's sessions are over by then, and a child of an ended
    session may spin for ever: waiting for it would cost the whole second.)"""

    def asleep() -> bool:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            return True
        return all(thread_state(pid, int(tid)) in ("S", "D", "") for tid in tids)

    looks: list[float] = []

    def twice() -> bool:
        if not asleep():
            looks.clear()
            return False
        looks.append(time.monotonic())
        return looks[-1] - looks[0] >= 0.02

    wait_until(twice, DETACH_QUIET)


def _stop_tracer(tracer: subprocess.Popen[bytes]) -> None:
    """End strace, never by raising: the kit's helper being slow to go (a loaded machine) is
    not the server's failure. Its tracees resume when it detaches or dies."""
    if tracer.poll() is not None:
        return
    tracer.send_signal(signal.SIGTERM)  # strace detaches cleanly on SIGTERM
    # Given the time a loaded machine takes to run it: strace killed while a tracee sits at
    # the entry of a call it was failing (its number replaced) lets that call return ENOSYS,
    # which no server can be asked to survive (the fork reference's accept() once did, in a
    # CI run where strace had 1 s).
    with contextlib.suppress(subprocess.TimeoutExpired):
        tracer.wait(max(STOP_GRACE, KILL_WAIT))
        return
    tracer.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        tracer.wait(KILL_WAIT)


def _traced(pid: int) -> bool:
    """True when every thread of `pid` has a tracer."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        for tid in tasks:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("TracerPid:") and line.split()[1] == "0":
                        return False
    except OSError:
        return False
    return True
