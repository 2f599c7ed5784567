"""eintr: interrupted system calls are retried (EINTR-*), in three tiers.

(a) natural SIGCHLD churn in fork servers, (b) storms of harmless signals, (c) EINTR injected
with strace. Each tier skips with its reason where it cannot run.
"""

from __future__ import annotations

import contextlib
import signal
import socket
from collections.abc import Callable

import pytest

from conformance.harness import Server, wait_until
from conformance.harness.client import Client
from conformance.harness.failure import CannotJudge, Violation, fail, show
from conformance.harness.lingering import SpinWatch
from conformance.harness.sessions import (
    blocking_descriptors,
    close_watch,
    death_reported,
    expect_alive,
    require_process,
)
from conformance.harness.signals import (
    STORM_SIGNALS,
    Storm,
    StraceUnavailable,
    injected_eintr,
    injected_without_signal,
    interrupt_reads,
)
from conformance.harness.timeouts import EOF_TIMEOUT, SETTLE_TIMEOUT
from conformance.marks import NotApplicable, requirement

ACCEPT_CAUSE = (
    "accept() probably returned -1 with errno EINTR (SIGCHLD from the exiting child "
    "interrupted it) and the server gave up: retry accept() when errno == EINTR, or install "
    "the SIGCHLD handler with sigaction(..., SA_RESTART)"
)
RECV_CAUSE = (
    "a signal interrupted recv()/read(), which returned -1 with errno EINTR, and the server "
    "treated it as a disconnect or error: retry the call when errno == EINTR"
)
CHURN = 10
SESSIONS = 8
MESSAGES = 3
#: How long the parent may leave a child's SIGCHLD pending (blocked, say) before we go on.
SIGNAL_TAKEN = 0.05
#: How long each session stays idle between messages, blocked in recv() on the server side.
PAUSE = 0.02
#: How long EINTR-2 waits for a thread of the server to block reading the next message.
POKE_WAIT = 0.5


def _payload(server: Server, i: int) -> bytes:
    return server.adapter.request(i, 64)


def _wait_here(client: Client, pause: float, poke: Callable[[], object] | None) -> bytes:
    """Where the server waits for the client's next bytes: interrupt that wait (`poke`), and
    pause so signals land there (nothing is due; the pause is bounded). Returns what came
    meanwhile (nothing, from a server that answers each message once)."""
    if poke is not None:
        poke()
    if pause:
        return client.recv_some(pause) or b""
    return b""


def _sessions_survive(
    server: Server,
    why: str,
    cause: str,
    sessions: int,
    pause: float = PAUSE,
    poke: Callable[[], object] | None = None,
    count_replies: bool = False,
) -> None:
    """Whole sessions one after another, with pauses in which calls block and get hit.

    Sequential on purpose: a server that serves one client at a time fails concurrency, not
    this. The pause between messages is when the server sits in recv() and a signal lands
    there. An injected EINTR needs none: strace fails the call as it is made.

    `count_replies`: the last client also counts its replies (see `_expect_no_extra_reply`).
    """
    __tracebackhide__ = True
    for s in range(sessions):
        client = server.connect(f"S{s}")
        received = b""
        if server.one_reply:
            # One request per connection: the server waits for the rest of the request.
            client.hold(_payload(server, s))
            _wait_here(client, pause, poke)
            client.finish(cause=cause)
        for m in range(0 if server.one_reply else MESSAGES):
            received += client.request(_payload(server, s * MESSAGES + m), cause=cause)
            received += _wait_here(client, pause, poke)
        ended = False
        if count_replies and s == sessions - 1 and not server.one_reply:
            ended = _expect_no_extra_reply(server, client, received)
        if not ended:
            client.end()
    expect_alive(server, why, cause)


EXTRA_REPLY_CAUSE = (
    "recv()/read() returned -1 with errno EINTR and the server answered as if a message had "
    "come (its result is not checked): retry the call when errno == EINTR, and treat 0 as "
    "the end of the session"
)


def _expect_no_extra_reply(server: Server, client, received: bytes) -> bool:
    """Send `exit` and read up to the server's close: one reply per message, and one more.

    A server that takes a failed recv() for a message answers it: the reply comes on top
    of the real ones (and a client that reads whatever has arrived takes two for one).
    Counted once every reply is in (at the close, or after EOF_TIMEOUT), so how fast they
    came does not matter. Protocols without an exit request (echo) have nothing to count.
    Returns whether it ended the session (it sent `exit`).
    """
    __tracebackhide__ = True
    exit_request = server.adapter.exit_request
    if exit_request is None:
        return False
    client.send(exit_request)
    data, closed = client.read_until_eof(EOF_TIMEOUT, stuck=close_watch(server, client))
    # The session is over, and ended as `Server.ended` ends one (`Client.end` would send
    # `exit` again): closed at once after the server's close; else our EOF, and the close
    # deferred, so a server that writes on is never killed by SIGPIPE here.
    client.ended_by_exit = True
    if closed:
        client.close()
    else:
        with contextlib.suppress(OSError):
            client.sock.shutdown(socket.SHUT_WR)
        server.defer_close(client)
    got = received + data
    reply = server.adapter.expected_reply(exit_request)
    # Replies known in advance (`OK!!!`) carry no framing: count them by length.
    replies = len(got) // len(reply) if reply else server.adapter.replies_in(exit_request, got)
    if replies > MESSAGES + 1:
        fail(
            f"{MESSAGES + 1} replies for {MESSAGES} messages and `exit`",
            f"{replies} replies ({show(got)}): {replies - MESSAGES - 1} more than the "
            "messages sent",
            did=client.transcript.tail(),
            cause=EXTRA_REPLY_CAUSE,
        )
    return True


@requirement("EINTR-1")
def test_child_exit_during_accept(server: Server, repeats) -> None:
    """One session at a time; each child exits while the parent waits in accept()."""
    proc = require_process(server, "EINTR-1")
    watch = SpinWatch()
    for i in range(repeats(CHURN)):
        # From the second session on, a failure may be the death of the last child's SIGCHLD.
        after = f"after the child of session {i} exited"
        with death_reported(server, after, ACCEPT_CAUSE) if i else contextlib.nullcontext():
            client = server.connect(f"S{i}")
            client.request(_payload(server, i))
        client.end()
        # Wait for that child to be gone: its SIGCHLD arrives while the parent is in accept().
        # A child that spins instead will not be (lingering.py).
        wait_until(
            lambda: not (live := proc.live_descendants()) or watch.all_spinning(live),
            SETTLE_TIMEOUT,
        )
        if proc.live_descendants():
            pytest.skip(
                "the children of ended sessions do not exit (see EXIT-4), so no SIGCHLD "
                "reaches the parent while it waits in accept()"
            )
        # Then for the parent to take the signal: the moment accept() is interrupted. A
        # server that gives up then is caught dead here, or dying by the next session.
        wait_until(
            lambda: not server.alive() or not proc.signal_pending(signal.SIGCHLD), SIGNAL_TAKEN
        )
        expect_alive(server, f"after the child of session {i + 1} exited", ACCEPT_CAUSE)
    with death_reported(
        server, f"after the child of session {repeats(CHURN)} exited", ACCEPT_CAUSE
    ):
        last = server.connect("N")
        last.request(_payload(server, 0), cause=ACCEPT_CAUSE)
    last.end()


def handled_storm_signals(caught: set[int]) -> list[str]:
    """The storm's signals, other than SIGCHLD (which a fork server handles to reap), that
    the server has a handler for: a handler may give a signal a meaning of its own."""
    return [
        signal.Signals(sig).name for sig in STORM_SIGNALS if sig in caught and sig != signal.SIGCHLD
    ]


def storm_cause(handled: list[str], otherwise: str) -> str:
    """The likely cause of a storm failure: a handler of the server's own first, if any."""
    if not handled:
        return otherwise
    names = " and ".join(handled)
    return (
        f"the server has a handler for {names} (SigCgt in /proc/PID/status), a signal whose "
        "default action is to do nothing: if that handler stops, restarts or reconfigures the "
        "server (Apache httpd's graceful-stop signal is SIGWINCH), that is this failure, by "
        f"the server's design; if it does not, {otherwise}"
    )


@requirement("EINTR-2")
def test_signal_storm_during_sessions(server: Server, repeats) -> None:
    """SIGCHLD/SIGWINCH/SIGURG at a high rate to the server and its children."""
    proc = require_process(server, "EINTR-2")
    handled = handled_storm_signals(proc.caught_signals())
    try:
        with Storm(proc) as storm:
            # Besides the storm, one signal to every thread blocked reading, after each reply.
            _sessions_survive(
                server,
                "during a signal storm",
                storm_cause(handled, RECV_CAUSE),
                repeats(SESSIONS),
                poke=lambda: interrupt_reads(proc, POKE_WAIT),
            )
        server.transcript.add(f"sent {storm.sent} signals (SIGCHLD, SIGWINCH, SIGURG)")
        expect_alive(
            server, f"after a storm of {storm.sent} signals", storm_cause(handled, ACCEPT_CAUSE)
        )
    except Violation as exc:
        # A refused connect or a lost session has no cause of its own: the storm is it.
        if handled and exc.cause is None:
            exc.cause = storm_cause(handled, RECV_CAUSE)
        raise


@requirement("EINTR-3")
def test_injected_eintr(server: Server, tmp_path, repeats) -> None:
    """strace makes every second accept/read/recv on a blocking descriptor fail with EINTR;
    nothing may notice. A call on a non-blocking descriptor never sleeps, so no signal can
    interrupt it: those are left alone."""
    proc = require_process(server, "EINTR-3")
    blocking = blocking_descriptors(server)
    server.transcript.add(f"looked at the server's descriptors: {blocking.describe()}")
    if not blocking.calls:
        raise NotApplicable(
            msg="not applicable: EINTR-3 injects EINTR into accept and recv on blocking "
            f"descriptors, and this server has none ({blocking.describe()}): a call on a "
            "non-blocking socket never sleeps, so no signal makes it fail with EINTR"
        )
    calls = ",".join(blocking.calls)
    log = str(tmp_path / "strace.log")
    try:
        with injected_eintr(proc.pid, log, calls):
            server.transcript.add(f"attached strace: every 2nd call of {calls} fails with EINTR")
            _sessions_survive(
                server,
                "with EINTR injected",
                RECV_CAUSE,
                repeats(SESSIONS),
                pause=0.0,
                count_replies=True,
            )
    except StraceUnavailable as exc:
        pytest.skip(f"EINTR-3 needs strace with ptrace allowed: {exc}")
    except Violation:
        artefacts = injected_without_signal(log)
        if not artefacts:
            raise
        raise CannotJudge(
            "EINTR-3 cannot be judged on this server: the injected EINTR also hit calls where "
            f"no signal can cause one ({'; '.join(artefacts[:3])}): reads of regular files (a "
            "program the server executes per connection, whose dynamic loader gives up on "
            "EINTR) or non-blocking descriptors, which never sleep; EINTR-2's real signals "
            "judge its sockets"
        ) from None
