"""Process inspection over psutil: children, their states, sockets, descriptors, threads, CPU.

Everything here reads /proc through psutil and tolerates processes vanishing mid-read: a
child that exits while we look at it is normal for a fork server, not an error of the kit.
Socket inodes (psutil does not expose them) come from /proc/PID/fd links, so "the parent
holds the same socket as the child" is proven by identity, not guessed from addresses.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import psutil

from conformance.harness.sockdiag import (
    holds_any,
    listening_inodes,
    socket_fds,
    tcp_sockets,
    unaccepted,
)

#: The environment variable the launcher marks every process it starts with (its value is
#: one launch's token); defined here, below the launcher, so the process views can read it.
TOKEN_VAR = "CONFORMANCE_LAUNCH_TOKEN"

GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied, FileNotFoundError)


@dataclass(frozen=True, slots=True)
class SocketInfo:
    pid: int
    fd: int
    inode: int | None
    laddr: tuple[str, int] | None
    raddr: tuple[str, int] | None
    status: str


def _inode(pid: int, fd: int) -> int | None:
    try:
        link = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return None
    if link.startswith("socket:["):
        return int(link[8:-1])
    return None


def _addr(a: object) -> tuple[str, int] | None:
    if not a:
        return None
    ip, port = a[0], a[1]  # type: ignore[index] # psutil's addr: a namedtuple or a tuple
    return (str(ip), int(port))


class ServerProcess:
    """The process that owns the server's listening socket, and every other process of the
    server: its descendants, and the processes the same launch started that are no longer
    below it (a double fork's grandchildren, reparented the moment their parent exits).

    The launcher marks every process it starts with a token in its environment (TOKEN_VAR),
    inherited through fork() and exec(), so "the server's processes" is a fact, not a guess
    from the family tree. Without a token (address mode) the server's processes are its
    descendants.
    """

    def __init__(self, pid: int, token: str | None = None) -> None:
        self.pid = pid
        self.proc = psutil.Process(pid)
        self.token = token
        #: Adopted processes whose token was read, by (pid, start time): the answer never
        #: changes for one process, and a reused pid has another start time.
        self._token_seen: dict[tuple[int, str], bool] = {}

    # -- liveness ---------------------------------------------------------------------------
    def alive(self) -> bool:
        try:
            return self.proc.is_running() and self.proc.status() != psutil.STATUS_ZOMBIE
        except GONE:
            return False

    # -- the tree ---------------------------------------------------------------------------
    def descendants(self) -> list[psutil.Process]:
        return processes_of(self.tree_pids()[1:])

    def tree_pids(self, recent: bool = False) -> list[int]:
        """The server's pid, then every other process of it (see the class docstring):
        descendants first, then reparented ones and their descendants. `recent`: from a
        reading of the process table that may be TABLE_REUSE old (see proc_table)."""
        return [self.pid, *self._members(proc_table(recent))]

    def _members(self, table: dict[int, tuple[int, str]]) -> list[int]:
        below = descendant_pids(self.pid, table=table)
        adopted = [p for p in self.adopted(table) if p not in below]
        found = list(below)
        for pid in adopted:
            found += [pid, *descendant_pids(pid, table=table)]
        return found

    def adopted(self, table: dict[int, tuple[int, str]] | None = None) -> list[int]:
        """Processes of this launch that are not the server's descendants (see
        `orphans_of_launch`)."""
        if self.token is None:
            return []
        table = proc_table() if table is None else table
        # The launched command may be a wrapper (`sh -c`) above the process that listens.
        above = _ancestors(self.pid, table) | {self.pid}
        return [p for p in orphans_of_launch(self._carries_token, table) if p not in above]

    def _carries_token(self, pid: int) -> bool:
        key = (pid, _start_time(pid))
        if key not in self._token_seen:
            self._token_seen[key] = _environ_has(pid, TOKEN_VAR, self.token or "")
        return self._token_seen[key]

    def children(self) -> list[psutil.Process]:
        return processes_of(descendant_pids(self.pid, recursive=False))

    def _descendant_states(self) -> list[tuple[int, str]]:
        """(pid, state letter) of every other process of the server (see tree_pids), from
        one reading of the process table."""
        table = proc_table()
        return [(pid, table[pid][1]) for pid in self._members(table) if pid in table]

    def zombie_descendants(self) -> list[int]:
        """Pids of the server's processes in state Z (exited, not yet reaped by their
        parent). A reparented process is the kit's to reap, not the server's: its zombie is
        no zombie of the server (a double fork leaves none), its children's are."""
        table = proc_table()
        adopted = set(self.adopted(table))
        return [
            pid
            for pid in self._members(table)
            if pid in table and table[pid][1] in _DEAD and pid not in adopted
        ]

    def live_child_count(self) -> int:
        """How many `live_children` there are: this is polled after every session."""
        return len(self.live_children())

    def live_children(self) -> list[int]:
        """Direct children that are not zombies, and reparented processes of the server that
        are not, cheaply.

        psutil finds children by reading every process on the machine; the kernel's own list
        (/proc/PID/task/PID/children) costs one read plus one per child.
        """
        try:
            with open(f"/proc/{self.pid}/task/{self.pid}/children") as f:
                pids = [int(p) for p in f.read().split()]
        except OSError:
            return self.live_descendants()
        if self.token is not None:
            pids += self._adopted_cheaply()
        live = []
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state not in _DEAD:
                live.append(pid)
        return live

    def _adopted_cheaply(self) -> list[int]:
        """`adopted()` from the kit's own list of children, without reading every process,
        where the kit is the subreaper that adopts its servers' orphans."""
        if not reaper_active():
            return self.adopted()
        me = os.getpid()
        try:
            with open(f"/proc/{me}/task/{me}/children") as f:
                kids = [int(p) for p in f.read().split()]
        except OSError:
            return self.adopted()
        above = _ancestors(self.pid) | {self.pid}
        return [pid for pid in kids if pid not in above and self._carries_token(pid)]

    def live_descendants(self) -> list[int]:
        """Pids of the server's other processes that are running (not zombies)."""
        return [pid for pid, state in self._descendant_states() if state not in _DEAD]

    def caught_signals(self) -> set[int]:
        """The signals the server's processes have handlers for (SigCgt in /proc/PID/status,
        main process and children); empty if /proc cannot say."""
        caught = 0
        for pid in self.tree_pids(recent=True):
            with contextlib.suppress(OSError, ValueError, IndexError):
                with open(f"/proc/{pid}/status") as f:
                    line = next(line for line in f if line.startswith("SigCgt:"))
                caught |= int(line.split()[1], 16)
        return {n for n in range(1, 65) if caught >> (n - 1) & 1}

    def signal_pending(self, signum: int) -> bool:
        """Whether `signum` waits to be delivered to the server's main process.

        A child's exit makes SIGCHLD pending in its parent and wakes it; the bit clears when
        the parent takes the signal (runs its handler, or reads it from a signalfd). So a
        parent with SIGCHLD no longer pending has been through the interruption, and whatever
        its accept() did about it, it did. Unknown (True) if /proc cannot say.
        """
        try:
            with open(f"/proc/{self.pid}/status") as f:
                lines = [line for line in f if line.startswith(("SigPnd:", "ShdPnd:"))]
            masks = [int(line.split()[1], 16) for line in lines]
        except (OSError, ValueError, IndexError):
            return True
        return len(masks) < 2 or any(m >> (signum - 1) & 1 for m in masks)

    # -- descriptors and threads ------------------------------------------------------------
    def running_threads(self, besides: Collection[int] = ()) -> int:
        """Threads of the server's processes (but those in `besides`) that are running or
        runnable (state R in /proc/PID/task/TID/stat), not asleep in a system call: work in
        progress."""
        count = 0
        for pid in self.tree_pids(recent=True):
            if pid in besides:
                continue
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            count += sum(thread_state(pid, int(tid)) == "R" for tid in tids)
        return count

    def fd_count(self) -> int:
        return self.proc.num_fds()

    def thread_count(self) -> int:
        return self.proc.num_threads()

    def cpu_seconds(self, tree: bool = True) -> float:
        """User+system CPU of the server (and its live descendants), in seconds."""
        procs = [self.proc, *(self.descendants() if tree else [])]
        total = 0.0
        for p in procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except GONE:
                continue
        return total

    def thread_times(self) -> dict[tuple[int, int], tuple[int, int, int]]:
        """Every thread of the server tree, by (pid, tid): (ns on a CPU, ns waiting on the run
        queue for one, time slices run), the three fields of /proc/PID/task/TID/schedstat.
        Empty without schedstat."""
        return schedstats(self.tree_pids(recent=True))

    def cpu_ns(self) -> int | None:
        """Nanoseconds on a CPU of every thread of the server and its live descendants.

        From /proc/PID/task/TID/schedstat, which the scheduler keeps exactly, where the
        clock-tick counts psutil reads are sampled every 10 ms. None where the kernel has no
        schedstat (CONFIG_SCHED_INFO).
        """
        if not _HAS_SCHEDSTAT:
            return None
        return sum(run for run, _, _ in self.thread_times().values())

    def run_delays(self) -> RunDelays:
        """What each thread of the server tree has waited, runnable, for a CPU (the run
        queue: schedstat's second field) and run, now; empty without schedstat."""
        at = time.monotonic()
        if not _HAS_SCHEDSTAT:
            return RunDelays(at)
        times = self.thread_times()
        return RunDelays(
            at,
            {tid: wait for (_, tid), (_, wait, _) in times.items()},
            {tid: run for (_, tid), (run, _, _) in times.items()},
            {tid: pid for pid, tid in times},
        )

    def starved_since(self, before: RunDelays) -> float:
        """The longest any one thread of the server tree waited for a CPU since `before`
        (run_delays()), in seconds; a thread born since counts from its birth. Time the
        server could not run is the machine's, not the server's.

        The kernel records a wait when it ends, as the thread gets a CPU: a thread runnable
        since `before` that has not had one since (a child forked or woken on a machine
        that gives it no turn for seconds) shows none of its wait. One still runnable that
        neither ran nor got a turn over UNSEEN_LOOK more is taken to have waited since
        `before`, less the time it ran.
        """
        now = self.run_delays()
        longest = (
            max((ns - before.waited.get(tid, 0) for tid, ns in now.waited.items()), default=0) / 1e9
        )
        window = now.at - before.at

        def unrecorded(tid: int) -> float:
            return window - (now.ran.get(tid, 0) - before.ran.get(tid, 0)) / 1e9

        suspects = [
            tid
            for tid, pid in now.pids.items()
            if unrecorded(tid) > longest and thread_state(pid, tid) == "R"
        ]
        if not suspects:
            return longest
        time.sleep(UNSEEN_LOOK)
        later = self.run_delays()
        for tid in suspects:
            waiting = (
                thread_state(now.pids[tid], tid) == "R"
                and later.waited.get(tid) == now.waited.get(tid)
                and later.ran.get(tid) == now.ran.get(tid)
            )
            if waiting:
                longest = max(longest, unrecorded(tid))
        return longest

    def cpu_share(self, window: float) -> float:
        """Fraction of one core the server tree used over the next `window` seconds.

        An idle server is known early: a tree that spins runs from the first moment, so one
        that used under IDLE_SHARE of a core in the first IDLE_LOOK seconds (measured in
        nanoseconds) is idle, and we need not wait out the rest. Anything else is judged over
        the whole window. Without schedstat the kernel's clock ticks (10 ms) are all we have:
        not one tick in `window / 2` is idle.
        """
        t0 = time.monotonic()
        before = self.cpu_ns()
        if before is not None:
            time.sleep(IDLE_LOOK)
            used = (self.cpu_ns() or before) - before
            if used < IDLE_SHARE * IDLE_LOOK * 1e9:
                return max(0, used) / 1e9 / (time.monotonic() - t0)
            time.sleep(max(0.0, t0 + window - time.monotonic()))
            return max(0, (self.cpu_ns() or before) - before) / 1e9 / (time.monotonic() - t0)
        ticks = self.cpu_seconds()
        time.sleep(window / 2)
        if self.cpu_seconds() == ticks:
            return 0.0
        time.sleep(max(0.0, t0 + window - time.monotonic()))
        return (self.cpu_seconds() - ticks) / (time.monotonic() - t0)


#: Whether this kernel keeps per-thread CPU time in nanoseconds (see ServerProcess.cpu_ns).
_HAS_SCHEDSTAT = os.path.exists("/proc/self/schedstat")


def process_cpu(pid: int) -> float | None:
    """Seconds process `pid` has been on a CPU, all its threads together (None once it is
    gone): from schedstat, in nanoseconds, else the kernel's clock ticks (10 ms)."""
    if _HAS_SCHEDSTAT:
        total = 0
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            return None
        for tid in tids:
            with (
                contextlib.suppress(OSError, ValueError, IndexError),
                open(f"/proc/{pid}/task/{tid}/schedstat") as f,
            ):
                total += int(f.read().split()[0])
        return total / 1e9
    try:
        times = psutil.Process(pid).cpu_times()
    except GONE:
        return None
    return times.user + times.system


@dataclass(frozen=True)
class RunDelays:
    """The server tree's threads at one moment (`ServerProcess.run_delays`), by thread id:
    nanoseconds waited on the run queue and run, and the process of each."""

    at: float
    waited: dict[int, int] = field(default_factory=dict)
    ran: dict[int, int] = field(default_factory=dict)
    pids: dict[int, int] = field(default_factory=dict)


#: starved_since: how long a runnable thread that seems never to get a CPU is watched.
UNSEEN_LOOK = 0.02


def thread_state(pid: int, tid: int) -> str:
    """The state letter of one thread (R, S, D, t, Z...), '' once it is gone."""
    try:
        with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return ""
    # The state follows the command name, which is in parentheses and may hold spaces or
    # parentheses itself: look after the last ')'.
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3].decode()


def schedstats(pids: list[int]) -> dict[tuple[int, int], tuple[int, int, int]]:
    """Every thread of `pids`, by (pid, tid): the three fields of its
    /proc/PID/task/TID/schedstat (ns on a CPU, ns waiting on the run queue, time slices).
    Empty without schedstat."""
    times: dict[tuple[int, int], tuple[int, int, int]] = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with (
                    contextlib.suppress(OSError, ValueError, IndexError),
                    open(f"/proc/{pid}/task/{tid}/schedstat") as f,
                ):
                    fields = f.read().split()
                    times[(pid, int(tid))] = (int(fields[0]), int(fields[1]), int(fields[2]))
    return times


def longest_run_queue_wait(pids: list[int]) -> float:
    """The longest any one thread of `pids` has waited, runnable, for a CPU since it was
    born (schedstat's second field), in seconds; 0 without schedstat."""
    return max((wait for _, wait, _ in schedstats(pids).values()), default=0) / 1e9


def at_work(pid: int) -> bool:
    """Whether a thread of process `pid` runs or waits for a CPU (R), or sleeps in the
    kernel without waiting for anything outside it (D: a page fault, a disk read)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    return any(thread_state(pid, int(tid)) in ("R", "D") for tid in tids)


#: cpu_share's early look: a tree using less than IDLE_SHARE of a core for IDLE_LOOK s is idle.
IDLE_LOOK = 0.1
IDLE_SHARE = 0.02


#: States of a process that has exited: zombie (Z), and dead (X) for the instant of its reaping.
_DEAD = ("Z", "X")


#: How old a reading of the process table may be for an observation that asks for one
#: (see proc_table's `recent`).
TABLE_REUSE = 0.004
_last_table: tuple[float, dict[int, tuple[int, str]]] = (-1.0, {})


def proc_table(recent: bool = False) -> dict[int, tuple[int, str]]:
    """Every process on the machine: pid -> (parent pid, state letter). Read-only.

    psutil's `children()` builds a parent map too; here it is read with bare os.open/os.read,
    about twice as fast, and the state comes from the same read, which counts because
    checks poll a server's tree every few milliseconds (a run of the fork reference asks
    some 250 times). Linux without /proc/PID/task/TID/children (a kernel option) leaves no
    cheaper way to find children.

    `recent`: a reading no older than TABLE_REUSE will do. One reading takes some 3 to 10 ms
    (a read of every /proc/PID/stat) and was two thirds of a kit run's own CPU; half the
    readings came less than 5 ms after the one before, from observations inside the checks
    that each look at the tree in turn (the CPU each thread used, the descriptors each
    process keeps, where each thread waits). Those ask for `recent`; whatever acts and then
    looks (stopping, reaping, waiting for a process to go) reads afresh.
    """
    global _last_table
    taken, table = _last_table
    if recent and time.monotonic() - taken < TABLE_REUSE:
        return table
    table = _read_proc_table()
    _last_table = (time.monotonic(), table)
    return table


def _read_proc_table() -> dict[int, tuple[int, str]]:
    table: dict[int, tuple[int, str]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fd = os.open(f"/proc/{name}/stat", os.O_RDONLY)
        except OSError:
            continue
        try:
            data = os.read(fd, 1024)
        except OSError:
            continue
        finally:
            os.close(fd)
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so cut at the last ")".
        with contextlib.suppress(ValueError, IndexError):
            state, ppid = data[data.rfind(b")") + 2 :].split(None, 2)[:2]
            table[int(name)] = (int(ppid), state.decode())
    return table


def descendant_pids(
    root: int, recursive: bool = True, table: dict[int, tuple[int, str]] | None = None
) -> list[int]:
    """Pids of `root`'s children (and theirs, when `recursive`), parents before children."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in (proc_table() if table is None else table).items():
        children.setdefault(ppid, []).append(pid)
    found: list[int] = []
    todo = [root]
    while todo:
        kids = children.get(todo.pop(0), [])
        found += kids
        if recursive:
            todo += kids
    return found


def orphans_of_launch(
    carries_token: Callable[[int], bool], table: dict[int, tuple[int, str]] | None = None
) -> list[int]:
    """Processes of one launch (`carries_token(pid)`: its token is in their environment)
    that were reparented out of its tree: a double fork's grandchildren, a daemon.

    An orphan goes to the nearest ancestor that is a child subreaper, else to pid 1 (or the
    init of its pid namespace): this process when it became one (reaper.become_subreaper),
    else its pytest-xdist controller, a service manager, or init. So the candidates are the
    children of this process and of each of its ancestors; only they are read for the token.
    """
    table = proc_table() if table is None else table
    chain = {os.getpid(), 1} | _ancestors(os.getpid(), table)
    return [
        pid
        for pid, (ppid, _) in table.items()
        if ppid in chain and pid not in chain and carries_token(pid)
    ]


def reaper_active() -> bool:
    """Whether this process adopts its servers' orphans (reaper.become_subreaper)."""
    from conformance.harness import reaper  # reaper reads processes: imported at use

    return reaper.is_subreaper()


def _ancestors(pid: int, table: dict[int, tuple[int, str]] | None = None) -> set[int]:
    """The pids above `pid` (from `table`, or read one by one from /proc/PID/stat)."""
    found: set[int] = set()
    while pid > 1:
        if table is not None:
            if pid not in table:
                break
            ppid = table[pid][0]
        else:
            try:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                break
        if ppid in found:
            break  # a cycle: a pid reused while the table was read
        found.add(ppid)
        pid = ppid
    return found


def _start_time(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return ""


def _environ_has(pid: int, name: str, value: str) -> bool:
    """Whether process `pid` was started with `name=value` in its environment."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f"{name}={value}".encode() in f.read().split(b"\0")
    except OSError:
        return False


def processes_of(pids: list[int]) -> list[psutil.Process]:
    found = []
    for pid in pids:
        with contextlib.suppress(*GONE):
            found.append(psutil.Process(pid))
    return found


def is_running(pid: int) -> bool:
    """True for a live process; False for a zombie or a pid that is gone."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except GONE:
        return False


def connections_of(pid: int, kind: str) -> list[Any]:
    """psutil's connections of process `pid` (`Process.net_connections`, psutil >= 6.0; the
    same call was `Process.connections` before, as in Debian 12's and Ubuntu 24.04's 5.9)."""
    proc = psutil.Process(pid)
    method = getattr(proc, "net_connections", None) or proc.connections
    return list(method(kind=kind))


def sockets_of(pid: int) -> list[SocketInfo]:
    """TCP sockets the process holds, with their inodes."""
    try:
        conns = connections_of(pid, "tcp")
    except GONE:
        return []
    return [
        SocketInfo(pid, c.fd, _inode(pid, c.fd), _addr(c.laddr), _addr(c.raddr), c.status)
        for c in conns
    ]


def holders_of_connection(
    pids: list[int], client_addr: tuple[str, int], server_port: int
) -> list[SocketInfo]:
    """Which of `pids` hold the server end of the connection from `client_addr`."""
    conns = tcp_sockets(server_port)
    if conns is not None:
        mine = {
            s.inode: s
            for s in conns
            if s.remote[1] == client_addr[1] and _same_host(s.remote[0], client_addr[0])
        }
        if not mine:
            return []
        held = []
        for pid in pids:
            for inode, fd in socket_fds(pid).items():
                if inode in mine:
                    s = mine[inode]
                    held.append(SocketInfo(pid, fd, inode, s.local, s.remote, s.state))
        return held
    found: list[SocketInfo] = []
    for pid in pids:
        for info in sockets_of(pid):
            if (
                info.raddr is not None
                and info.laddr is not None
                and info.raddr[1] == client_addr[1]
                and info.laddr[1] == server_port
                and _same_host(info.raddr[0], client_addr[0])
            ):
                found.append(info)
    return found


def awaits_accept(client_addr: tuple[str, int], server_port: int) -> bool:
    """Whether the connection from `client_addr` waits in the server's accept queue: no
    process holds it yet, and one will once the server takes it. False where the kernel
    cannot be asked (sock_diag)."""
    return any(
        s.remote[1] == client_addr[1] and _same_host(s.remote[0], client_addr[0])
        for s in unaccepted(server_port) or []
    )


def listeners_of(pid: int, port: int) -> list[SocketInfo]:
    return [
        s
        for s in sockets_of(pid)
        if s.status == psutil.CONN_LISTEN and s.laddr is not None and s.laddr[1] == port
    ]


def _same_host(a: str, b: str) -> bool:
    strip = "::ffff:"
    return a.removeprefix(strip) == b.removeprefix(strip)


def listener_owner(port: int, candidates: list[int] | None = None) -> int | None:
    """The topmost process holding a LISTEN socket on `port` (None if none is visible).

    Topmost, because in a prefork server the master and its workers all hold the listener,
    and the master is the server. With `candidates`, only those pids are considered (a
    launched server's tree); without, the whole machine is searched (address mode).
    """
    owners: set[int] = set()
    if candidates is None:
        try:
            conns = psutil.net_connections(kind="tcp")
        except psutil.AccessDenied:
            return None
        for c in conns:
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr[1] == port and c.pid:
                owners.add(c.pid)
    else:
        inodes = listening_inodes(port)
        if inodes is None:
            owners = {pid for pid in candidates if listeners_of(pid, port)}
        elif inodes:
            owners = {pid for pid in candidates if holds_any(pid, inodes)}
    if len(owners) <= 1:
        return next(iter(owners), None)
    for pid in sorted(owners):
        try:
            ancestors = {p.pid for p in psutil.Process(pid).parents()}
        except GONE:
            continue
        if not ancestors & owners:
            return pid
    return min(owners)


def describe_exit(returncode: int | None) -> str:
    """'exited with status 1' / 'was killed by SIGPIPE' for a Popen-style return code."""
    import signal

    if returncode is None:
        return "is still running"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with status {returncode}"


def fd_targets(pid: int) -> list[str]:
    """What each descriptor points at ('socket', '/dev/null', 'pipe', ...), for diagnosis."""
    out: list[str] = []
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        out.append(link.split(":[", 1)[0] if ":[" in link else link)
    return out
