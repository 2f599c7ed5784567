"""Whole sessions and groups of clients, the building blocks checks share.

Checks outside `protocol` and `exit` end their sessions in a way that does not depend on the
behaviour those categories judge: `Client.end` (the rule: client.end_session_on).

A server may close the connection after each reply where the protocol lets it (HTTP/1.0,
`Connection: close`): then a session is one request. `Server.one_reply` says so for the run
(found before the checks, see liveness), and a check that needs a session open while others
run holds it with `Client.hold` (the opening of a request, its rest sent later by `finish`).
"""

from __future__ import annotations

import contextlib
import math
import selectors
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from conformance.harness.burst import paused
from conformance.harness.client import LATER_REPLIES, Client
from conformance.harness.failure import CannotJudge, Violation, fail
from conformance.harness.lingering import SpinWatch
from conformance.harness.polling import wait_until
from conformance.harness.processes import holders_of_connection, listeners_of
from conformance.harness.server import Server, close_watch
from conformance.harness.signals import ACCEPT_CALLS, READ_CALLS, blocks
from conformance.harness.sockdiag import accept_queue, listen_backlog
from conformance.harness.timeouts import (
    ANSWER_TIMEOUT,
    LOOPBACK_TIMEOUT,
    QUIET_PERIOD,
    REPLY_TIMEOUT,
    SETTLE_TIMEOUT,
)
from conformance.harness.waiting import StuckWatch, at_rest
from conformance.harness.wire import EXIT, message

__all__ = ["EXIT", "close_watch", "message"]  # re-exported for the checks


#: How long `quiesce` waits for the server to finish what it is doing.
QUIESCE_LIMIT = 0.1


def quiesce(server: Server) -> None:
    """Wait (bounded) until no thread of the server is running: the reply just read is
    the end of its work, not the middle of it.

    A thread sends its reply and then goes on for a moment (it checks for `exit`, loops,
    goes back to recv()). A server whose sessions share state (one receive buffer for all
    threads) is hurt when another session's message lands in that moment, and whether it
    does would be the scheduler's choice. Waiting here keeps a check's sequential steps
    sequential for the server too. A thread that never stops running (a spin) only costs
    QUIESCE_LIMIT, and the children seen spinning after their sessions (`await_release`)
    nothing.
    """
    proc = server.process
    if proc is None:
        return
    wait_until(lambda: proc.running_threads(besides=server.spinners) == 0, QUIESCE_LIMIT)


def open_session(
    server: Server,
    client: Client,
    request: bytes,
    timeout: float = ANSWER_TIMEOUT,
    cause: str | None = None,
) -> None:
    """A session that stays open after this: a round trip, or, on a server that closes after
    each reply (`server.one_reply`), the opening of `request` (`Client.hold`), which keeps
    the connection and the server's end of it (a child, a thread) until `carry_on`."""
    __tracebackhide__ = True
    if server.one_reply:
        client.hold(request)
    else:
        client.request(request, timeout, cause=cause)


def carry_on(
    server: Server,
    client: Client,
    request: bytes,
    timeout: float = ANSWER_TIMEOUT,
    cause: str | None = None,
) -> bytes:
    """The next round trip of a session `open_session` opened: `request` and its reply, or,
    on a server that closes after each reply, the rest of the held request and its reply
    (the session's one reply, after which the server closes)."""
    __tracebackhide__ = True
    if server.one_reply and client.held is not None:
        return client.finish(timeout, cause=cause)
    return client.request(request, timeout, cause=cause)


def hold_many(server: Server, count: int, window: int | None = None) -> list[Client]:
    """`count` sessions held open at once (`Client.hold`: the opening of request i on
    client Ci), for checks on a server that closes after each reply; the rest of each
    request is left in `client.held`.

    Never more than `window` (the listen() backlog, by default) connections wait to be
    accepted: a full accept queue drops handshakes, and their retransmissions, a second
    later, would make the verdict about timing, not about how many sessions the server
    holds (CONC-3 judges the backlog).
    """
    __tracebackhide__ = True
    if window is None:
        window = listen_backlog(server.port) or count
    clients = []
    for i in range(count):
        client = server.connect(f"C{i}")
        client.hold(server.adapter.request(i, 16))
        clients.append(client)
        if i % window == window - 1:
            wait_until(lambda: not accept_queue(server.port), LOOPBACK_TIMEOUT)
    server.transcript.add(
        f"held {count} sessions open (the opening of a request on each), at most {window} "
        "waiting to be accepted at a time"
    )
    return clients


def complete_all(
    server: Server, clients: list[Client], timeout: float
) -> tuple[dict[int, bytes], list[int]]:
    """Send the rest of every request `hold_many` opened, all together, and gather the
    replies (`round_trip_all`)."""
    rests = [client.held or b"" for client in clients]
    for client in clients:
        client.held = None
    got, silent = round_trip_all(server, clients, rests, timeout)
    server.transcript.add(f"sent the rest of all {len(clients)} requests at once")
    return got, silent


def fork_children_count(server: Server) -> int | None:
    """How many children a fork server has now; None when there is nothing to wait for."""
    if server.model != "fork" or server.process is None or server.lingering:
        return None
    return server.process.live_child_count()


def await_release(server: Server, before: int | None) -> None:
    """Fork servers: wait until the children of ended sessions are gone (bounded).

    Sessions run one after another then meet the server in the same state every run: the
    ended session's child has exited and its SIGCHLD has reached the parent while it waits
    in accept(). Without this, whether a server that dies of EINTR there dies before or after
    the next session would be a race, and the verdict of every later check with it.
    A child that spins instead of exiting ends the wait once it is seen to (lingering.py).
    """
    if before is None or server.process is None:
        return
    proc = server.process
    watch = SpinWatch()

    def released() -> bool:
        live = proc.live_children()
        if len(live) <= before:
            return True
        spinning = watch.spinning(live)
        server.spinners |= spinning
        return len(live) - len(spinning) <= before

    wait_until(released, SETTLE_TIMEOUT)
    if proc.live_child_count() > before:
        server.lingering = True  # children outlive sessions (EXIT-4): stop waiting for them


#: How long a session of a counting workload (FDL-1, FDL-2, EXIT-4, ZOMB-1: sessions one
#: after another, then counts) waits for its reply: these checks are not about latency, and
#: a correct server can be slow to answer on a busy machine (gunicorn's two sync workers,
#: each lingering up to 2 s after a response, once answered after more than ANSWER_TIMEOUT
#: beside other runs, and FDL-1 and FDL-2 failed for a reply, not for a count).
COUNTING_WAIT = LOOPBACK_TIMEOUT


@contextlib.contextmanager
def session(server: Server, name: str | None = None) -> Iterator[Client]:
    """A client whose session is ended with `Client.end` (and released) when the block ends."""
    before = fork_children_count(server)
    client = server.connect(name)
    try:
        yield client
    finally:
        client.end()
        await_release(server, before)


def full_session(server: Server, messages: int = 1, name: str | None = None) -> Client:
    """Connect, exchange `messages` round trips (reply bytes not judged), end."""
    __tracebackhide__ = True
    with session(server, name) as client:
        for i in range(messages):
            client.request(server.adapter.request(i, 64), COUNTING_WAIT)
    return client


def round_trip_all(
    server: Server,
    clients: list[Client],
    payloads: list[bytes],
    timeout: float,
    together: bool = False,
    hopeless: Callable[[Client], bool] | None = None,
    ends_on_extra: bool = False,
) -> tuple[dict[int, bytes], list[int]]:
    """Send one message on every client, then gather replies with selectors until `timeout`.

    Returns (bytes received per client index, indexes that got nothing). Sending all before
    reading makes the server handle the sessions interleaved, not one after another.
    `together`: a thread or pool server the kit launched is stopped (SIGSTOP) while the
    messages are sent, so its threads all wake to them at once on SIGCONT: sessions that
    share a buffer then clash every run, not when the scheduler lets them (a busy machine
    runs them one after another).
    `hopeless`: asked once, of a client still waiting after REPLY_TIMEOUT, whether the server
    shows that no reply can come (where its threads wait: Client.silence); if so, the wait
    ends there instead of at `timeout`.
    `ends_on_extra`: the wait also ends once a client that has its reply has more bytes
    waiting (looked at every EXTRA_LOOK s): a reply beyond the one asked for, that is, another
    client's (ISO-2's failure, whatever else comes).
    """
    with paused((server.stoppable() or []) if together else []):
        for client, payload in zip(clients, payloads):
            client.send(payload)
    got: dict[int, bytes] = {i: b"" for i in range(len(clients))}
    adapter = server.adapter
    sel = selectors.DefaultSelector()
    for i, client in enumerate(clients):
        client.sock.setblocking(False)
        sel.register(client.sock, selectors.EVENT_READ, i)
    # A client that had a reply before waits less for this one where the server is known
    # to answer only the first request of a connection (LaterReplies).
    start = time.monotonic()
    waits = [LATER_REPLIES.wait(client, timeout) for client in clients]
    deadlines = [start + wait for wait in waits]
    ask_at = start + REPLY_TIMEOUT if hopeless is not None else math.inf
    answered: set[int] = set()
    try:
        pending = set(range(len(clients)))
        while pending:
            now = time.monotonic()
            if now >= ask_at:
                ask_at = math.inf
                if hopeless(clients[min(pending)]):  # type: ignore[misc]
                    deadlines = [min(d, now) for d in deadlines]
            if ends_on_extra and any(_has_more(clients[i]) for i in answered):
                deadlines = [min(d, now) for d in deadlines]
            for i in [i for i in pending if deadlines[i] <= now]:
                pending.discard(i)
                sel.unregister(clients[i].sock)
            if not pending:
                break
            soonest = min(ask_at, *(deadlines[i] for i in pending))
            if ends_on_extra and answered:
                soonest = min(soonest, now + EXTRA_LOOK)
            for key, _ in sel.select(timeout=max(0.0, soonest - now)):
                i = key.data
                try:
                    chunk = clients[i].sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    sel.unregister(clients[i].sock)
                    pending.discard(i)
                    continue
                got[i] += chunk
                if adapter.complete(payloads[i], got[i]):
                    pending.discard(i)
                    sel.unregister(clients[i].sock)
                    answered.add(i)
    finally:
        sel.close()
        for client in clients:
            client.sock.setblocking(True)
    silent = [i for i in range(len(clients)) if not adapter.complete(payloads[i], got[i])]
    for i, client in enumerate(clients):
        client.transcript.add(f"received {len(got[i])} bytes on {client.name}")
    for i in silent:
        LATER_REPLIES.silent(clients[i], got[i] or None, waits[i])
    for i in set(range(len(clients))) - set(silent):
        clients[i].replies += 1
    return got, silent


#: round_trip_all(ends_on_extra=True): how often the answered clients are looked at.
EXTRA_LOOK = 0.05


def _has_more(client: Client) -> bool:
    """Bytes are waiting on `client`'s socket (non-blocking here), unread."""
    try:
        return bool(client.sock.recv(1, socket.MSG_PEEK))
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return False


def require_process(server: Server, what: str):
    """The server's process, or skip: process-level checks are never passed blind."""
    if server.process is None:
        raise CannotJudge(
            f"{what} needs the server's process, which is not visible from here (address mode "
            "with a server owned by another user or on another host)"
        )
    return server.process


def expect_alive(server: Server, after: str, cause: str | None = None) -> None:
    """Fail if the server has died; the message says how (status, signal, stderr)."""
    __tracebackhide__ = True
    if not server.alive():
        fail(
            "the server still running " + after,
            server.death(),
            did=server.transcript.tail(),
            cause=cause,
        )


#: How long a server that failed a step is given to show that it is dying (a death is
#: reported as such; a server still running failed the step itself).
DEATH_GRACE = 0.2


def dies_of_it(server: Server) -> bool:
    """Whether a server that failed a step is dying of it: waited for up to DEATH_GRACE, and
    less once every thread of it waits for a client (waiting.at_rest, reads included, seen
    at two looks STUCK_FOR apart): a server back in accept() or recv() is not dying of the
    step before. A hypothesis scenario that fails is run again and again while it is shrunk,
    with this wait each time."""
    proc = server.process

    def rest() -> str | None:
        if proc is None or not at_rest(proc.tree_pids(), server.port, reads=True):
            return None
        return "at rest"

    resting = StuckWatch(rest)
    wait_until(lambda: not server.alive() or resting(), DEATH_GRACE)
    return not server.alive()


@contextlib.contextmanager
def death_reported(server: Server, after: str, cause: str) -> Iterator[None]:
    """A step that fails because the server died is reported as that death, with `cause`.

    A server killed by SIGPIPE or giving up on EINTR dies a moment after the event, and the
    kit may first notice it as a refused connect or a missing reply; which one is a race.
    Reported as the death, the verdict and the message are the same every run.
    """
    __tracebackhide__ = True
    try:
        yield
    except Violation:
        wait_until(lambda: not server.alive(), DEATH_GRACE)
        expect_alive(server, after, cause)
        raise


def run_sessions(server: Server, count: int) -> None:
    """`count` whole sessions one after another, each released before the next begins."""
    __tracebackhide__ = True
    if not server.samples:
        server.sample()  # the baseline, before any session
    for i in range(count):
        full_session(server, 1, name=f"S{i}")
        server.clients.clear()
        server.sessions_done += 1
        server.sample()


#: `churn_sessions` counts the server every this many sessions (200 sessions: 20 samples).
SAMPLE_EVERY = 10
#: ...and counts its live children every this many: children of ended sessions that never
#: exit may each spin on a core, and slow all that follows until the server is stopped.
LIVE_EVERY = 10


def churn_sessions(server: Server, count: int, *, max_live_children: int) -> None:
    """`count` whole sessions one after another, for checks that count what is left after
    many sessions (descriptors, threads), not where a signal finds the server.

    Unlike `run_sessions`, the next session starts without waiting for the last one's child
    to exit (see `await_release`), so a fork server's exits overlap the next fork. Never two
    sessions open at once: a server that mixes up its sessions' replies (ISO-2) or serves one
    client at a time (CONC-*) fails those categories, not the counts. Stops early (skip) if
    children of ended sessions pile up (EXIT-4), since counts cannot settle then.
    """
    __tracebackhide__ = True
    payload = server.adapter.request(0, 64)
    if not server.samples:
        server.sample()
    for i in range(count):
        client = server.connect(f"S{i}")
        client.request(payload, COUNTING_WAIT)
        client.end()
        server.clients.clear()
        server.sessions_done += 1
        if server.sessions_done % SAMPLE_EVERY == 0:
            server.sample()
        if server.process is not None and i % LIVE_EVERY == LIVE_EVERY - 1:
            live = len(server.process.live_descendants())
            if live > max_live_children:
                raise CannotJudge(
                    f"after {i + 1} sessions {live} children of ended sessions are still "
                    "running (see EXIT-4), so counts cannot settle"
                )


def drain(clients: list[Client], quiet: float = QUIET_PERIOD) -> dict[int, bytes]:
    """Whatever arrives on any of `clients` until none has sent anything for `quiet` s."""
    got: dict[int, bytes] = {i: b"" for i in range(len(clients))}
    sel = selectors.DefaultSelector()
    for i, client in enumerate(clients):
        sel.register(client.sock, selectors.EVENT_READ, i)
    try:
        while events := sel.select(quiet):
            for key, _ in events:
                chunk = clients[key.data].recv_some(0)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                got[key.data] += chunk
    finally:
        sel.close()
    return got


@dataclass(frozen=True, slots=True)
class Blocking:
    """Whether the server's listening socket and its connections are blocking descriptors
    (None: not seen). A signal can make a call fail with EINTR only while it sleeps, and a
    call on a non-blocking descriptor never does (signal(7); tcp_recvmsg returns EAGAIN
    before it looks at pending signals)."""

    listener: bool | None
    connection: bool | None

    @property
    def calls(self) -> tuple[str, ...]:
        """The calls a signal could interrupt: on descriptors seen blocking, or not seen."""
        return (ACCEPT_CALLS if self.listener is not False else ()) + (
            READ_CALLS if self.connection is not False else ()
        )

    def describe(self) -> str:
        def word(value: bool | None) -> str:
            return {True: "blocking", False: "non-blocking", None: "not seen"}[value]

        return f"listening socket {word(self.listener)}, connections {word(self.connection)}"


def blocking_descriptors(server: Server) -> Blocking:
    """Look at the flags of the server's listening socket and of its end of one session's
    connection (held open for the look, then ended): /proc/PID/fdinfo."""
    __tracebackhide__ = True
    if server.process is None:
        return Blocking(None, None)
    proc = server.process
    pids = proc.tree_pids()
    listener = next(
        (blocks(pid, s.fd) for pid in pids for s in listeners_of(pid, server.port)), None
    )
    with session(server, "P") as client:
        client.request(server.adapter.request(0, 16))
        held = holders_of_connection(proc.tree_pids(), client.local_address, server.port)
        connection = next((blocks(h.pid, h.fd) for h in held), None)
    return Blocking(listener, connection)
