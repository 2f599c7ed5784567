"""Where a silent server waits: what each of its threads is blocked in, on what.

A reply that does not come says nothing by itself about why. The kernel does: each thread's
current system call and its first argument (`/proc/PID/task/TID/syscall`), and what the
descriptor it waits on is (`/proc/PID/fd`, and the socket's addresses). "recvfrom() on
client A's connection" tells a student their server serves one client at a time;
"poll(), holding a UDP socket to 10.0.0.1:53" tells anyone the server waits for a DNS
answer. Read when a reply is missing, while the server still waits.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import psutil

from conformance.harness import syscalls
from conformance.harness.processes import GONE, connections_of
from conformance.harness.stacks import ThreadRef, runtime_of

#: Calls whose first argument is the descriptor they wait on.
_ON_FD = frozenset(
    {"read", "readv", "write", "writev", "accept", "accept4", "recvfrom", "recvmsg",
     "sendto", "sendmsg", "connect", "flock"}
)  # fmt: skip
#: Calls that read what a client sends.
_READS = frozenset({"read", "readv", "recvfrom", "recvmsg"})
#: Calls that wait for something other than a descriptor.
_MEANING = {
    "futex": "a lock or condition variable (futex)",
    "wait4": "a child to exit (waitpid)",
    "waitid": "a child to exit (waitid)",
    "nanosleep": "a sleep to end",
    "clock_nanosleep": "a sleep to end",
    "pause": "a signal (pause)",
    "rt_sigsuspend": "a signal (sigsuspend)",
}
#: The threads a JVM runs for itself, by the start of their names as /proc shows them (15
#: characters at most): they compile, collect garbage, run finalizers and timers, and never
#: take a client. Several wait with a timeout, or run (a compiler), whatever the server's
#: own threads do: counted, they would make every JVM server look able to take one more.
_JVM_OWN = (
    "GC Thread#", "G1 ", "ZGC ", "Shenandoah", "VM Thread", "VM Periodic Tas", "Reference Handl",
    "Finalizer", "Signal Dispatch", "Service Thread", "Monitor Deflati", "C1 CompilerThre",
    "C2 CompilerThre", "Sweeper thread", "Notification Th", "Common-Cleaner", "Attach Listener",
)  # fmt: skip
JVM_OWN = "the JVM's own threads (compilers, garbage collector, timers), which take no client"
#: What a thread that is in no system call is doing (a loop that spins is, mostly).
RUNNING = "running (on a CPU, or waiting for one)"
#: At most this many lines: a pool's hundred idle threads say the same thing.
MAX_LINES = 6


@dataclass(frozen=True)
class Wait:
    """One thread's wait: the line a failure shows, and what it tells."""

    line: str
    #: The call waits to take a new client or for any of many (accept, poll, epoll_wait...).
    takes_new: bool = False
    #: The name of the client whose connection it reads, when it reads one of ours.
    client: str | None = None
    #: A socket to elsewhere it waits on or holds while multiplexing ("10.0.0.1:53").
    elsewhere: str | None = None
    #: It can take no client now, whatever happens to other connections: a parent waiting
    #: for its children or for a signal.
    aside: bool = False
    #: Reading one of the server's client connections: (pid, descriptor).
    reads: tuple[int, int] | None = None
    #: The thread: (pid, tid), whose stack a failure may show (stacks.py).
    thread: tuple[int, int] = (0, 0)
    #: In accept() on the server's listening socket.
    accepts: bool = False
    #: In a multiplexer with no timeout, in a process that holds no timer (a timerfd): only
    #: a descriptor it watches can wake it.
    waits_for_clients: bool = False


@dataclass(frozen=True)
class Silence:
    """Where a silent server waits: evidence lines, and a cause when they show one."""

    lines: list[str] = field(default_factory=list)
    cause: str | None = None
    #: The threads the lines name, for their stacks once the verdict is in (stacks.py).
    threads: list[ThreadRef] = field(default_factory=list)
    #: No thread of the server can take another client while the connections it serves
    #: stay open: each is blocked on one of them, none accepts or multiplexes (`_cause`).
    full: bool = False


def explain(pids: list[int], server_port: int, clients: Mapping[int, str], waiting: str) -> Silence:
    """Why client `waiting` gets no reply, as far as the server's threads show it."""
    waits = where_it_waits(pids, server_port, clients)
    lines = [f"{'Waiting:' if i == 0 else '':10}{line}" for i, line in enumerate(_lines(waits))]
    shared = shared_reads(pids, server_port, waits)
    threads = [ThreadRef(*w.thread, w.line, w.client) for w in waits if w.thread != (0, 0)]
    if shared is not None:
        return Silence([*lines, f"{'':10}{shared[0]}"], shared[1], threads)
    return Silence(lines, _cause(waits, waiting), threads, full=_full(waits, waiting))


SHARED_DESCRIPTOR_CAUSE = (
    "the connected socket reaches each new thread through a variable that the next accept() "
    "overwrites (a global, or &cfd passed to pthread_create), so two threads serve the newer "
    "connection and nobody serves the older one: pass each thread its own copy of the "
    "descriptor, by value through the argument ((void *)(intptr_t)cfd) or in a malloc'd "
    "cell that the thread frees"
)


def shared_reads(
    pids: list[int], server_port: int, waits: list[Wait] | None = None
) -> tuple[str, str] | None:
    """(evidence, cause) when several threads read the same client connection while other
    accepted connections are read by none: a descriptor handed over through a shared
    variable. None otherwise (one reader per connection is every design's normal)."""
    if waits is None:
        waits = where_it_waits(pids, server_port, {})
    readers = Counter(w.reads for w in waits if w.reads is not None)
    shared = {key: n for key, n in readers.items() if n > 1}
    if not shared:
        return None
    unread = 0
    for pid in pids:
        for fd, conn in _sockets(pid).items():
            own = conn.family != socket.AF_UNIX and conn.laddr and conn.laddr[1] == server_port
            if own and conn.raddr and (pid, fd) not in readers:
                unread += 1
    threads = sum(shared.values())
    most = sorted(shared.items(), key=lambda kv: -kv[1])
    where = ", ".join(f"pid {pid} fd {fd}: {n} threads" for (pid, fd), n in most[:3])
    if len(most) > 3:
        where += f", and {len(most) - 3} more connections"
    evidence = (
        f"{threads} threads read {len(shared)} connection(s) two or more at a time ({where}); "
        f"{unread} other accepted "
        "connection(s) are read by no thread"
    )
    return evidence, SHARED_DESCRIPTOR_CAUSE


def _cause(waits: list[Wait], waiting: str) -> str | None:
    """A cause only where the threads leave no other reading: a wait on a host elsewhere,
    or every thread blocked on other clients' connections (or a parent waiting for its
    children), none running, accepting or multiplexing, so none could take this one."""
    elsewhere = sorted({w.elsewhere for w in waits if w.elsewhere})
    if elsewhere:
        dns = any(e.endswith(":53") for e in elsewhere)
        what = "a DNS answer" if dns else "another server's reply"
        fix = (
            "a server that looks up a name per connection (the peer's or its own host name: "
            "getnameinfo() without NI_NUMERICHOST, gethostbyaddr(), tcpserver without -l "
            "and -H) waits as long as the resolver does: do not look names up on the "
            "connection's path"
            if dns
            else "a session must not wait on another host without a timeout shorter than "
            "the client's"
        )
        return f"the server was waiting for {what} ({', '.join(elsewhere)}): {fix}"
    busy = sorted({w.client for w in waits if w.client and w.client != waiting})
    if _full(waits, waiting):
        most = "one client" if len(busy) == 1 else f"at most {len(busy)} clients"
        return (
            f"no thread of the server could take {waiting}: each one serving clients was "
            f"blocked on another client's connection ({', '.join(busy)}), and none waited in "
            f"accept() or poll(), so the server serves {most} at a time. Serve each "
            "connection in its own process or thread, or multiplex them with select/poll/epoll"
        )
    return None


def _full(waits: list[Wait], waiting: str) -> bool:
    """Every thread is blocked on a client's connection other than `waiting`'s, or aside (a
    parent in wait(), a thread waiting without a timeout for another: `_waits_for_ever`),
    and at least one on a client's. Every thread must be accounted for:
    one running, or waiting on a lock (a Python thread waiting for the GIL), may be about
    to accept the client; one in poll() or select() may be an event loop, or a parent that
    grows its pool (Apache's prefork sleeps in select())."""
    busy = any(w.client and w.client != waiting for w in waits)
    return busy and all((w.client and w.client != waiting) or w.aside for w in waits)


def _lines(waits: list[Wait]) -> list[str]:
    seen = Counter(w.line for w in waits)
    lines = [f"{line} ({n} threads)" if n > 1 else line for line, n in seen.items()]
    if len(lines) > MAX_LINES:
        lines = [*lines[:MAX_LINES], f"... and {len(lines) - MAX_LINES} more"]
    return lines


def where_it_waits(pids: list[int], server_port: int, clients: Mapping[int, str]) -> list[Wait]:
    """What each thread of `pids` (the server's main process first) is blocked in, e.g.
    `pid 812: recvfrom() on client A's connection`. `clients` maps a client's local port to
    its name. Empty where /proc cannot say."""
    if not syscalls.known_machine():
        return []
    waits = []
    for pid, tid, wait in _each_wait(pids, server_port, clients):
        if wait is not None:
            label = f"pid {pid}{' (main)' if pid == pids[0] else ''}: "
            waits.append(replace(wait, line=label + wait.line, thread=(pid, tid)))
    return waits


def _each_wait(
    pids: Iterable[int], server_port: int, clients: Mapping[int, str]
) -> Iterator[tuple[int, int, Wait | None]]:
    """(pid, tid, its wait) for every thread of `pids`; the wait is None where /proc cannot
    say, and a process whose threads cannot be listed (gone) has a (pid, 0, None)."""
    jvm = functools.cache(lambda pid: runtime_of(pid) == "jvm")
    for pid in pids:
        sockets = _sockets(pid)
        tids = syscalls.thread_ids(pid)
        if not tids:
            yield pid, 0, None
        for tid in tids:
            yield pid, tid, _thread_wait(pid, tid, sockets, server_port, clients, jvm)


def _sockets(pid: int) -> dict[int, Any]:
    """The process's sockets (TCP, UDP, Unix) by descriptor."""
    try:
        return {c.fd: c for c in connections_of(pid, "all")}
    except (*GONE, psutil.AccessDenied):
        return {}


def _thread_wait(
    pid: int,
    tid: int,
    sockets: Mapping[int, Any],
    server_port: int,
    clients: Mapping[int, str],
    jvm: Callable[[int], bool],
) -> Wait | None:
    current = syscalls.current_call(pid, tid)
    if current is None:
        return None
    call, args = current
    if call not in _ON_FD and jvm(pid) and _thread_name(pid, tid).startswith(_JVM_OWN):
        return Wait(JVM_OWN, aside=True)
    if call == "running":
        return Wait(RUNNING)
    if call.startswith("#"):
        return Wait(f"system call {call[1:]}")
    if call in _ON_FD and args:
        with contextlib.suppress(ValueError):
            fd = int(args[0], 16)
            if fd in sockets:
                on = _Socket(sockets[fd], server_port, clients)
                reading = call in _READS and on.own and not on.listener
                accepts = call.startswith("accept") and on.listener
                return Wait(
                    f"{call}() on {on.text}",
                    takes_new=accepts,
                    accepts=accepts,
                    client=on.client,
                    elsewhere=on.elsewhere,
                    reads=(pid, fd) if reading else None,
                )
            return Wait(f"{call}() on {_file(pid, fd)}")
    if call in _MEANING:
        aside = call in ("wait4", "waitid", "pause", "rt_sigsuspend") or _waits_for_ever(call, args)
        return Wait(f"{call}(), waiting for {_MEANING[call]}", aside=aside)
    # A multiplexer (poll, select, epoll_wait) may wait for anything the process holds: the
    # sockets it holds besides the server's own (a DNS query, a database) are shown.
    described = (_Socket(c, server_port, clients) for c in sockets.values())
    others = [o for o in described if not o.own]
    held = f", holding {'; '.join(o.text for o in others[:3])}" if others else ""
    # A resolver waits in poll() on a UDP socket to port 53; an event loop's link to a
    # database, or a UDP socket it sends metrics on, proves nothing about why a client waits.
    elsewhere = next((o.elsewhere for o in others if o.dns), None)
    untimed = _multiplexes_for_ever(call, args) and not _holds_timer(pid)
    return Wait(
        f"{call}(){held}",
        takes_new=not elsewhere,
        elsewhere=elsewhere,
        waits_for_clients=untimed and not elsewhere,
    )


#: A wait for the server to close a connection ends once `cannot_close` has said so at two
#: looks this far apart (StuckWatch).
STUCK_FOR = 0.05


def cannot_close(pids: list[int], held: Iterable[tuple[int, int]], server_port: int) -> str | None:
    """Evidence that no process holding `held` (pid, descriptor) connections can close them
    now, else None.

    Every thread of every holder waits in accept() on the listening socket, or aside (in
    wait(), pause(), or a futex without a timeout), or reads another connection than these,
    and no process of the server has a zombie child (whose SIGCHLD may yet run a handler). Then only
    a new client, or one of the open sessions' clients, can wake them, and the kit sends
    nothing while it waits: a fork server's parent that kept its copy of each connection
    sits so, and waiting out a deadline for it to close one changed nothing but the time to
    the verdict.
    """
    held = set(held)
    holders = sorted({pid for pid, _ in held})
    if not holders or not syscalls.known_machine():
        return None
    if any(_zombie_of(pid, set(pids)) for pid in pids):
        return None
    kinds: list[str] = []
    threads = 0
    for _, _, wait in _each_wait(holders, server_port, {}):
        if wait is None:
            return None
        if wait.accepts:
            kind = "accept() on the listening socket"
        elif wait.aside:
            kind = "a wait for a child, a signal or another thread"
        elif wait.reads is not None and wait.reads not in held:
            kind = "a read of another client's connection"
        else:
            return None
        threads += 1
        if kind not in kinds:
            kinds.append(kind)
    main = pids[0] if pids else None
    names = " and ".join(
        f"pid {pid}{' (the main process)' if pid == main else ''}" for pid in holders
    )
    verb = "holds" if len(holders) == 1 else "hold"
    who = "its only thread waits" if threads == 1 else "every thread of it waits"
    return (
        f"{names} {verb} it and cannot close it now: {who} in {' or '.join(kinds)}, "
        "and only a new client or a message would wake it, which the kit did not send"
    )


def takes_clients(pids: list[int], server_port: int) -> bool:
    """Whether a thread of `pids` may take a new client before a client does something:
    unless every one reads one of the server's client connections (a serial server in
    another session) or waits aside (for a free slot of its pool, for a child) with no
    timeout, one may (one in accept(), in a multiplexer, running, asleep for a time), or
    /proc cannot say."""
    if not syscalls.known_machine():
        return True
    return not all(
        wait is not None and (wait.reads is not None or wait.aside)
        for _, _, wait in _each_wait(pids, server_port, {})
    )


def _zombie_of(pid: int, parents: set[int]) -> bool:
    """A zombie whose parent is one of `parents`: its SIGCHLD is theirs to handle. A double
    fork's grandchild is the kit's (a subreaper) once orphaned, and wakes no server."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
        return fields[0] == b"Z" and int(fields[1]) in parents
    except (OSError, IndexError, ValueError):
        return False


def at_rest(pids: list[int], server_port: int, reads: bool = False) -> bool:
    """Whether nothing but a client can make the server do anything now: every thread of
    `pids` waits, with no timeout, in accept() on the listening socket, in a multiplexer
    (poll, select, epoll) holding no timer, or aside (wait(), pause(), a futex), and no
    process of the server has a zombie child to be signalled about. What it holds then stays
    as it is until the kit connects. `reads`: a thread blocked reading one of its clients'
    connections waits for a client too (for whether the server is dying: it is not)."""
    if not pids or not syscalls.known_machine():
        return False
    if any(_zombie_of(pid, set(pids)) for pid in pids):
        return False
    return all(
        wait is not None
        and (
            wait.accepts
            or wait.aside
            or wait.waits_for_clients
            or (reads and wait.reads is not None)
        )
        for _, _, wait in _each_wait(pids, server_port, {})
    )


class StuckWatch:
    """Ends a wait for the server to close something once it cannot: `look()` (a call of
    `cannot_close`) gave evidence at two looks at least STUCK_FOR apart. Called as often as
    the wait polls; it looks at most once per STUCK_FOR. `evidence`: what ended the wait."""

    def __init__(self, look: Callable[[], str | None]) -> None:
        self._look = look
        self._since: float | None = None
        self._last = -math.inf
        self.evidence: str | None = None

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self._last < STUCK_FOR:
            return False
        self._last = now
        evidence = self._look()
        if evidence is None:
            self._since = None
            return False
        if self._since is None:
            self._since = now
            return False
        self.evidence = evidence
        return True


#: futex(2) operations that wait, with the timeout as their fourth argument (a pointer).
_FUTEX_WAITS = {0, 6, 9, 11, 13}  # WAIT, LOCK_PI, WAIT_BITSET, WAIT_REQUEUE_PI, LOCK_PI2
_FUTEX_CMD_MASK = 0x7F  # without FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME


def _waits_for_ever(call: str, args: list[str]) -> bool:
    """A futex wait without a timeout: a thread waiting for another thread of its process
    (a semaphore, a lock, a condition) and for nothing else. While every other thread is
    blocked too, nothing wakes it: thread_cap2's accept loop in sem_wait() for a slot that
    a session gives back only when it ends. A timed wait (a Python thread waiting for the
    GIL, a JVM's periodic task) may go on by itself, and is not counted."""
    if call != "futex" or len(args) < 4:
        return False
    try:
        op, timeout = int(args[1], 16) & _FUTEX_CMD_MASK, int(args[3], 16)
    except ValueError:
        return False
    return op in _FUTEX_WAITS and timeout == 0


#: Multiplexers by where their timeout is: (argument, whether it is a pointer, NULL for no
#: timeout, or a count of milliseconds, -1 for none).
_MULTIPLEX_TIMEOUT = {
    "poll": (2, False),
    "epoll_wait": (3, False),
    "epoll_pwait": (3, False),
    "ppoll": (2, True),
    "select": (4, True),
    "pselect6": (4, True),
    "epoll_pwait2": (3, True),
}


def _multiplexes_for_ever(call: str, args: list[str]) -> bool:
    """A poll, select or epoll wait without a timeout (asyncio's, with no timer due)."""
    where = _MULTIPLEX_TIMEOUT.get(call)
    if where is None or len(args) <= where[0]:
        return False
    try:
        value = int(args[where[0]], 16)
    except ValueError:
        return False
    if where[1]:
        return value == 0
    return value & 0xFFFFFFFF == 0xFFFFFFFF  # an int -1, however the register was filled


def _holds_timer(pid: int) -> bool:
    """A timerfd (or an fd it cannot read) among the process's descriptors: a multiplexer
    watching it wakes when the timer fires, with no client."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return True
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:[timerfd]":
                return True
        except OSError:
            continue
    return False


def _thread_name(pid: int, tid: int) -> str:
    try:
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def _file(pid: int, fd: int) -> str:
    try:
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return f"descriptor {fd}"
    if target.startswith("pipe:"):
        return f"a pipe (descriptor {fd})"
    return f"{target} (descriptor {fd})"


class _Socket:
    """What a socket of the server is, in words: the listener, client A's connection, a
    UDP socket to a DNS server."""

    def __init__(self, conn: Any, server_port: int, clients: Mapping[int, str]) -> None:
        self.listener = False
        self.client: str | None = None
        self.elsewhere: str | None = None
        self.udp = conn.type == socket.SOCK_DGRAM
        #: A UDP socket to a DNS server: a resolver's query.
        self.dns = (
            self.udp and bool(conn.raddr) and conn.family != socket.AF_UNIX and conn.raddr[1] == 53
        )
        #: The listening socket, or a connection from one of our clients.
        self.own = (
            conn.family != socket.AF_UNIX and bool(conn.laddr) and conn.laddr[1] == server_port
        )
        kind = "UDP" if self.udp else "TCP"
        if conn.family == socket.AF_UNIX:
            path = conn.raddr or conn.laddr
            self.text = f"a Unix socket ({path})" if path else "a Unix socket"
        elif conn.status == psutil.CONN_LISTEN:
            self.listener = self.own
            self.text = (
                "the listening socket" if self.own else f"a socket listening on {_addr(conn.laddr)}"
            )
        elif self.own and conn.raddr:
            self.client = clients.get(conn.raddr[1])
            self.text = (
                f"client {self.client}'s connection" if self.client else "a client's connection"
            )
        elif not conn.raddr:
            self.text = f"an unconnected {kind} socket"
        else:
            self.elsewhere = _addr(conn.raddr)
            service = " (a DNS server: a name lookup)" if conn.raddr[1] == 53 else ""
            self.text = f"a {kind} socket to {self.elsewhere}{service}"


def _addr(addr: tuple[str, int] | str) -> str:
    if isinstance(addr, str):
        return addr or "(unnamed)"
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
