"""Model detection: how does this server serve its connections?

We open a few sessions at once and look at who holds the server end of each connection, and
at the server's thread count:
- a child process that did not exist before the connection: `fork` (fork per connection);
- a child that existed before: `prefork` (workers that legitimately hold the listener). A
  prefork server may still be starting workers when we first look, so a second round of
  sessions decides: only a fork server serves it with children that are new again;
- one of the clients answered and the others not while it stays connected, and no thread
  per connection: `iterative` (it serves one client at a time);
- the server process itself, with one more thread per connection that ends with it: `thread`;
- the server process itself, with threads that outlive the sessions: a `pool`, or a thread
  per connection that leaks them. Sessions one after another tell: a pool stops growing (at
  its size, or at once when idle workers take the work), a leak grows with every session,
  and is reported as `thread` (FDL-2 and EXIT-4 then fail it);
- the server process itself, without new threads: `event-loop` (multiplexing, or a pool
  whose threads all exist before the first session: counts cannot tell those apart).
Without a visible process (address mode, another user's server) the model is `unknown`, and
so it is when the server dies while we look (the checks then report the death, with its cause).

Telling a pool from a leak is also what FDL-2 and EXIT-4 need (a pool's threads never go back
to the first count), so the measure lives here: `measure_thread_growth`.
"""

from __future__ import annotations

import functools
import math
import os
import selectors
import time
from collections.abc import Callable
from dataclasses import dataclass

from conformance.harness.client import Client
from conformance.harness.polling import wait_until
from conformance.harness.processes import GONE, ServerProcess, holders_of_connection
from conformance.harness.server import Server
from conformance.harness.timeouts import ANSWER_TIMEOUT, REPLY_TIMEOUT, SETTLE_TIMEOUT

PROBE_CLIENTS = 4
#: How long the probes may take to be answered, all connected at once. A concurrent server
#: answers them all in milliseconds; only one answered after this long is a server that
#: serves one client at a time. Generous, so a JVM still compiling is not called iterative.
PROBE_ANSWER_TIMEOUT = ANSWER_TIMEOUT
#: How long the thread count must hold still (and no thread of the server run) to count as
#: settled: threads that end with a session, or that a pool or a runtime is starting, are
#: gone or there by then.
STEADY = 0.02
#: Sessions run one after another between two looks at the thread count, when telling a pool
#: (its count stops growing) from a leak (the count grows with every session).
GROWTH_ROUND = 25
#: The most sessions run to see a pool stop growing. A pool that starts one worker per
#: session up to its size (Java's ThreadPoolExecutor below its core size) is told from a
#: leak if its size is below about this.
GROWTH_SESSIONS = 200
#: Threads a round of sessions may add and still count as no growth: a runtime starts
#: threads of its own when it likes (the JVM's JIT compilers and GC workers).
ROUND_SLACK = 2


def detect_model(server: Server) -> str:
    try:
        return _detect(server)
    except GONE:
        return "unknown"


def _detect(server: Server) -> str:
    if server.process is None:
        return "unknown"
    proc = server.process
    # A runtime (the JVM) or a pool may still be starting threads as the server listens: take
    # the count once it holds still, so those are not taken for threads of the probes.
    threads_before = settled_thread_count(proc)
    pids, threads_during, answered = _probe(server)
    # Children that serve the probes and did not exist before them mean fork per connection,
    # unless they are prefork workers the server was still starting when we looked. So look
    # again: a fork server makes new children for the second round too, while a prefork
    # server, whose workers all exist by now, serves it with children seen already.
    if any(pid != proc.pid for pid in pids):
        before = set(proc.tree_pids()[1:])
        try:
            pids, _, _ = _probe(server)
        except Exception:
            pids = []
        others = [pid for pid in pids if pid != proc.pid]
        if not others:  # it died after the first round: decide on that round alone
            return "fork"
        return "prefork" if all(pid in before for pid in others) else "fork"
    threaded = threads_during >= threads_before + PROBE_CLIENTS - 1
    if answered == 1 and not threaded:
        return "iterative"
    if not threaded:
        return "event-loop"
    # A thread per probe, even if only one was answered: a thread per connection whose
    # threads do not serve their own connections (a descriptor handed over through a shared
    # variable) is still that design; the concurrency checks judge what it serves.
    # One more thread per probe: thread per connection, unless it is a pool. A thread per
    # connection ends with its session; a pool's threads stay.
    ended, _ = wait_until(
        lambda: proc.thread_count() <= threads_during - (PROBE_CLIENTS - 1), SETTLE_TIMEOUT
    )
    if ended:
        return "thread"
    # The threads stayed: a pool (also one the server was still starting when we looked), or
    # a thread server that leaks them. Sessions one after another tell: only a pool stops.
    try:
        growth = measure_thread_growth(proc, lambda n: _plain_sessions(server, n))
    except GONE:
        raise
    except Exception:
        return "thread"
    return "pool" if growth.stopped else "thread"


def _probe(server: Server) -> tuple[list[int], int, int]:
    """PROBE_CLIENTS sessions at once: the pids holding their server ends, the thread count
    while they were open, and how many of them were answered while all were connected.

    A server that closes the connection after each reply (`server.one_reply`) would be gone
    from its connections before anyone looks, so there the sessions are held open with the
    opening of a request (`Client.hold`), looked at, and then all but the first completed:
    a server that serves one client at a time, busy with the first, answers none of them.
    """
    assert server.process is not None
    proc = server.process
    clients: list[Client] = []
    held = server.one_reply is not None
    try:
        for i in range(PROBE_CLIENTS):
            client = server.connect()
            clients.append(client)
            if held:
                _hold(client, server.adapter.request(i, 16))
            else:
                client.sock.sendall(server.adapter.probe())
        answered = (
            0
            if held
            else _answered(
                clients,
                PROBE_ANSWER_TIMEOUT,
                lambda waiting: server.where_it_waits(waiting.name).full,
            )
        )

        def holders() -> list[int]:
            pids = proc.tree_pids()
            found = []
            for client in clients:
                found += [
                    s.pid for s in holders_of_connection(pids, client.local_address, server.port)
                ]
            return found

        if held:
            # Nothing is answered yet, so nothing says a child has been forked: wait until
            # each connection is held by a process other than the server's main one, or
            # the timeout says none will be (one that serves them all itself).
            def served_elsewhere() -> bool:
                pids = proc.tree_pids()
                return all(
                    any(
                        s.pid != proc.pid
                        for s in holders_of_connection(pids, c.local_address, server.port)
                    )
                    for c in clients
                )

            wait_until(served_elsewhere, SETTLE_TIMEOUT)
        _, pids = wait_until(holders, SETTLE_TIMEOUT)
        threads_during = proc.thread_count()
        if held:
            for client in clients[1:]:
                client.sock.sendall(client.held or b"")
                client.held = None
            answered = 1 + _answered(clients[1:], PROBE_ANSWER_TIMEOUT)
    finally:
        for client in clients:
            client.end()
        server.clients.clear()
    return pids, threads_during, answered


def _hold(client: Client, request: bytes) -> None:
    """The opening of `request` on `client`, the rest kept in `client.held` (Client.hold,
    without its transcript: model detection is no check's evidence)."""
    n = client.adapter.opening(request) if client.adapter is not None else None
    if n is None:
        client.sock.sendall(request)
        return
    client.sock.sendall(request[:n])
    client.held = request[n:]


def _answered(
    clients: list[Client], timeout: float, hopeless: Callable[[Client], bool] | None = None
) -> int:
    """How many of `clients` receive something before `timeout` (all of them: at once).

    `hopeless`: asked once, of a client still waiting after REPLY_TIMEOUT, whether the server
    shows that it cannot answer it (every thread blocked on another client: Silence.full);
    if so, the count is taken then. A server capped at two sessions, or serving one at a
    time, made every run wait the whole `timeout` before its first check.
    """
    waiting = selectors.DefaultSelector()
    for client in clients:
        waiting.register(client.sock, selectors.EVENT_READ, client)
    answered = 0
    start = time.monotonic()
    deadline = start + timeout
    ask_at = start + REPLY_TIMEOUT if hopeless is not None else math.inf
    try:
        while waiting.get_map() and (left := deadline - time.monotonic()) > 0:
            if hopeless is not None and time.monotonic() >= ask_at:
                ask_at = math.inf
                if hopeless(next(iter(waiting.get_map().values())).data):
                    break
            for key, _ in waiting.select(min(left, max(0.0, ask_at - time.monotonic()))):
                waiting.unregister(key.fileobj)
                answered += bool(key.data.recv_some(0))
    finally:
        waiting.close()
    return answered


def _plain_sessions(server: Server, count: int) -> None:
    """`count` sessions one after another (connect, one message, `exit`, close), for model
    detection: any failure ends the measure (the caller decides without it)."""
    message = server.adapter.probe()
    for _ in range(count):
        client = server.connect()
        try:
            client.sock.sendall(message)
            reply = client.recv_some(ANSWER_TIMEOUT)
            if not reply:
                raise ConnectionError("no answer during model detection")
            client.server_closes = server.adapter.closes_after(message, reply)
        finally:
            client.end()
            server.clients.clear()


# -- threads: a pool or a leak? -------------------------------------------------------------
def running_threads(pid: int) -> int:
    """How many threads of process `pid` are running or runnable (state R) right now."""
    running = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                running += f.read().rsplit(")", 1)[1].split()[0] == "R"
        except (OSError, IndexError):
            continue
    return running


def settled_count(
    count: Callable[[], int],
    quiet: Callable[[], bool],
    timeout: float,
    steady: float = STEADY,
) -> int:
    """`count()` once it has held still for `steady` s and `quiet()` holds (bounded by
    `timeout`: then the last count)."""
    last = count()
    since = time.monotonic()

    def holds_still() -> bool:
        nonlocal last, since
        now = count()
        if now != last:
            last, since = now, time.monotonic()
            return False
        return time.monotonic() - since >= steady and quiet()

    wait_until(holds_still, timeout)
    return last


def settled_thread_count(proc: ServerProcess, timeout: float = SETTLE_TIMEOUT) -> int:
    """The server's thread count once it has held still for STEADY s with none of its
    threads running (bounded by `timeout`: then the last count).

    Threads that end with their session are gone by then, and threads a starting runtime or
    pool is creating (they run while they start) are there: a count taken too early would
    count either as the sessions' doing.
    """
    return settled_count(proc.thread_count, lambda: not running_threads(proc.pid), timeout)


def settled_child_count(proc: ServerProcess, timeout: float = SETTLE_TIMEOUT) -> int:
    """How many live descendants the server has once that number has held still for STEADY s
    (bounded by `timeout`: then the last count): children of ended sessions that exit are
    gone by then, and workers a pool is starting are there."""
    return settled_count(lambda: len(proc.live_descendants()), lambda: True, timeout)


@dataclass(frozen=True)
class ThreadGrowth:
    """The server's settled thread count (or another count: `unit` says which, e.g. a prefork
    pool's live children) before and after each round of sessions run one after another:
    (sessions run so far, count then), first (0, baseline)."""

    samples: tuple[tuple[int, int], ...]
    unit: str = "threads"

    @property
    def baseline(self) -> int:
        return self.samples[0][1]

    @property
    def threads(self) -> int:
        return self.samples[-1][1]

    @property
    def sessions(self) -> int:
        return self.samples[-1][0]

    def added_over(self, last: int) -> tuple[int, int]:
        """(sessions, threads added) over the last rounds covering at least `last` sessions
        (all of them if fewer were run)."""
        start = next(
            (s for s in reversed(self.samples) if self.sessions - s[0] >= last), self.samples[0]
        )
        return self.sessions - start[0], self.threads - start[1]

    @property
    def stopped(self) -> bool:
        """The last round added (almost) no thread: a pool at its size, or no growth at all."""
        return len(self.samples) > 1 and self.added_over(1)[1] <= ROUND_SLACK

    def describe(self) -> str:
        """`threads after 0/25/50 sessions: 21/46/48`, for a failure's evidence."""
        sessions = "/".join(str(s) for s, _ in self.samples)
        threads = "/".join(str(t) for _, t in self.samples)
        return f"{self.unit} after {sessions} sessions: {threads}"


def measure_thread_growth(
    proc: ServerProcess,
    run_round: Callable[[int], None],
    *,
    sessions: int = GROWTH_SESSIONS,
    round_size: int = GROWTH_ROUND,
    until_stopped: bool = True,
    measure: Callable[[], int] | None = None,
    unit: str = "threads",
) -> ThreadGrowth:
    """Run up to `sessions` sessions in rounds of `round_size` (`run_round(n)` runs n one
    after another) and take the settled thread count before and after each round.

    With `until_stopped`, stop at the first round that adds (almost) no thread: a pool has
    reached its size. A leak never stops: every round adds a thread per session. `measure`
    (with its `unit`) counts something else the same way: a prefork pool's live children.
    """
    if measure is None:
        measure = functools.partial(settled_thread_count, proc)
    samples = [(0, measure())]
    done = 0
    while done < sessions:
        count = min(round_size, sessions - done)
        run_round(count)
        done += count
        samples.append((done, measure()))
        if until_stopped and samples[-1][1] - samples[-2][1] <= ROUND_SLACK:
            break
    return ThreadGrowth(tuple(samples), unit)
