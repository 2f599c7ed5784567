"""exit: how sessions end — `exit`, the client's EOF or reset — and what the server frees."""

from __future__ import annotations

import os
import signal
import time

import pytest

from conformance.harness import Server, busy, fail, show, wait_until
from conformance.harness.launcher import LaunchError, restart_on_port
from conformance.harness.lingering import SPUN_CPU, SpinWatch
from conformance.harness.model import (
    GROWTH_ROUND,
    GROWTH_SESSIONS,
    ROUND_SLACK,
    measure_thread_growth,
    settled_child_count,
    settled_thread_count,
)
from conformance.harness.processes import at_work, holders_of_connection, is_running
from conformance.harness.sessions import (
    await_release,
    carry_on,
    close_watch,
    death_reported,
    expect_alive,
    fork_children_count,
    full_session,
    open_session,
    require_process,
    run_sessions,
    session,
)
from conformance.harness.sockdiag import accept_queue, socket_fds
from conformance.harness.stacks import ThreadRef
from conformance.harness.timeouts import (
    CPU_WINDOW,
    EOF_TIMEOUT,
    REPLY_TIMEOUT,
    SETTLE_TIMEOUT,
    SIGTERM_TIMEOUT,
)
from conformance.harness.waiting import RUNNING, StuckWatch
from conformance.marks import requirement

RESETS = 10
#: How long a server that keeps reset connections open is given to die of SIGPIPE.
RESET_GRACE = 0.2
#: A server tree using more than this share of a core while idle is spinning.
BUSY_SHARE = 0.2
#: At most this many spinning threads, or children left, are named (their stacks shown).
SPINNERS_SHOWN = 3
#: EXIT-4: sessions per round, and sessions in all, when children stayed after the sessions:
#: a pool stops growing in a round, children that never exit add one per session. Few, as
#: such children may spin (each takes a core).
CHILD_GROWTH_ROUND = 6
CHILD_GROWTH_SESSIONS = 18
#: EXIT-4: how much longer children still at work after the sessions are watched for a spin
#: (on a busy machine a spinner takes longer to use lingering.SPUN_CPU).
MAX_UNDECIDED = 5.0

NO_CLOSE_CAUSE = (
    "after replying to `exit`, close(connfd) and end the session; in a fork server the parent "
    "must also have closed its copy right after fork(), or the connection stays open"
)
EOF_CAUSE = (
    "recv()/read() returning 0 means the client closed: close the connection and end the "
    "session (do not treat 0 bytes as a message)"
)
RESET_CAUSE = (
    "writing to a connection the client reset raises SIGPIPE, which kills the process by "
    "default: call signal(SIGPIPE, SIG_IGN) at startup (or send with MSG_NOSIGNAL), and treat "
    "-1 with ECONNRESET/EPIPE as the end of that session only"
)


def _sockets_held(server: Server) -> int | None:
    """Sockets the server's processes have descriptors on (None if it is not visible)."""
    if server.process is None:
        return None
    pids = server.process.tree_pids()
    return sum(len(socket_fds(pid)) for pid in pids)


def _resets_handled(server: Server, held: int | None) -> bool:
    """Every connection since `held` was counted is accepted and closed (False if unknown)."""
    queued = accept_queue(server.port)
    now = _sockets_held(server)
    return queued == 0 and held is not None and now is not None and now <= held


def _serving(server: Server, client) -> list[ThreadRef]:
    """The server's threads still on `client`'s connection, else those running: where its
    session goes on (their stacks show the loop that did not end it). A loop that takes
    EOF for a message spins, in read() and write() on the connection or between them, and
    is caught in either; the stacks show only threads in the server's own code."""
    threads = server.where_it_waits(client.name).threads
    on_it = [t for t in threads if t.client == client.name]
    return on_it or [t for t in threads if t.label.endswith(RUNNING)]


def _who_holds(server: Server, client) -> str:
    if server.process is None:
        return ""
    pids = server.process.tree_pids()
    holders = holders_of_connection(pids, client.local_address, server.port)
    if not holders:
        return ""
    names = ", ".join(
        f"pid {h.pid}{' (the parent)' if h.pid == server.process.pid else ''} fd {h.fd}"
        for h in holders
    )
    return f"the connection is still held by {names}"


def _still_open(stuck: StuckWatch, data: bytes) -> str:
    """What a client that saw no EOF saw: for the whole deadline, or until the server could
    not close the connection any more (`stuck`, whose evidence says why)."""
    if stuck.evidence:
        when = ", and the server could not close it (see below)"
    else:
        when = f" after {EOF_TIMEOUT:.1f} s"
    sent = f"; the server sent {show(data)} meanwhile" if data else ""
    return f"the connection was still open{when}{sent}"


@requirement("EXIT-1")
def test_exit_closes_connection(server: Server) -> None:
    """`exit`, then EOF within 1 s (whether the reply came first is PROTO-3's business)."""
    client = server.connect()
    client.request(server.adapter.request(0, 16))
    client.send(server.adapter.exit_request or b"")
    stuck = close_watch(server, client)
    data, closed = client.read_until_eof(EOF_TIMEOUT, stuck=stuck)
    if not closed:
        holder = _who_holds(server, client)
        fail(
            f"EOF on {client.name} within {EOF_TIMEOUT:.1f} s of sending `exit`",
            _still_open(stuck, data),
            did=client.transcript.tail(),
            evidence=[e for e in (holder, stuck.evidence) if e],
            cause=NO_CLOSE_CAUSE,
            threads=_serving(server, client),
        )


@requirement("EXIT-2")
def test_client_eof_ends_session(server: Server) -> None:
    """The client half-closes; the server answers what it got, then closes within 1 s."""
    client = server.connect()
    adapter = server.adapter
    payload = adapter.request(1, 4096)
    client.send(payload)
    if not adapter.streaming:
        client.reply()
    client.half_close()
    stuck = close_watch(server, client)
    data, closed = client.read_until_eof(EOF_TIMEOUT, stuck=stuck)
    expected = payload if adapter.streaming else b""
    if not closed:
        fail(
            f"EOF on {client.name} within {EOF_TIMEOUT:.1f} s after it sent EOF",
            _still_open(stuck, data),
            did=client.transcript.tail(),
            evidence=[stuck.evidence] if stuck.evidence else [],
            cause=EOF_CAUSE,
            threads=_serving(server, client),
        )
    if adapter.streaming and data != expected:
        fail(
            f"the {len(expected)} echoed bytes, then EOF",
            f"{show(data)} then EOF",
            did=client.transcript.tail(),
            cause="finish writing what was received before closing",
        )
    if not adapter.streaming and data:
        fail(
            "EOF and no more bytes after the client's EOF",
            f"{show(data)} then EOF",
            did=client.transcript.tail(),
            cause=EOF_CAUSE,
        )


@requirement("EXIT-3")
def test_client_reset_leaves_server_running(server: Server, repeats) -> None:
    """Resets right after connect, just after a message (before the reply), after a reply.

    Only the bystander B needs the server to hold two sessions, and B is served before the
    resets begin, so even a one-client-at-a-time server is judged on resets alone here.
    """
    bystander = server.connect("B")
    message = server.adapter.request
    open_session(server, bystander, message(0, 16))
    held = _sockets_held(server)
    resets = repeats(RESETS)
    # A server killed by SIGPIPE may first show it as a refused connect or a lost reply.
    with death_reported(server, "after clients reset their connections", RESET_CAUSE):
        for i in range(resets):
            before = fork_children_count(server)
            early = server.connect(f"R{i}a")
            early.reset()
            racing = server.connect(f"R{i}b")
            racing.send(message(i, 16))
            racing.reset()  # the server is about to write its reply to a reset connection
            await_release(server, before)
        # The server writes to a reset connection, and dies of SIGPIPE if it is going to,
        # before it closes that connection. So once every reset connection is accepted and
        # closed, it has survived them all; one that keeps them open gets RESET_GRACE to die.
        wait_until(lambda: not server.alive() or _resets_handled(server, held), RESET_GRACE)
        expect_alive(server, "after clients reset their connections", RESET_CAUSE)
        carry_on(
            server,
            bystander,
            message(1, 16),
            cause="another client's reset ended this one's session",
        )
        before = fork_children_count(server)
        bystander.end()
        await_release(server, before - 1 if before else before)
        for i in range(resets):
            before = fork_children_count(server)
            late = server.connect(f"R{i}c")
            late.request(message(i, 16), cause=RESET_CAUSE)
            late.reset()
            await_release(server, before)
        with session(server, "N") as newcomer:
            newcomer.request(message(2, 16), cause=RESET_CAUSE)
    expect_alive(server, "after clients reset their connections", RESET_CAUSE)


def _children_left(server: Server, kept: str, actual: str, pids: list[int], how: str = "") -> None:
    """EXIT-4's failure for children that stay after their sessions (`kept`: how a pool
    would keep them instead), showing where the first few are."""
    __tracebackhide__ = True
    fail(
        f"within {SETTLE_TIMEOUT:.1f} s of the sessions' end, their children gone, or {kept}",
        actual,
        did=server.transcript.tail(),
        cause="the process serving a session must end with it: in a fork server the child "
        f"calls _exit(0) after closing the connection{how}",
        threads=[
            ThreadRef(p, p, f"pid {p}: a child left after its session")
            for p in pids[:SPINNERS_SHOWN]
        ],
    )


@requirement("EXIT-4")
def test_ended_sessions_free_their_process_or_thread(server: Server) -> None:
    """After sessions end (by `exit` and by EOF), their children/threads go, CPU goes idle.

    The counts start after one warm-up session, once the thread count holds still: a server
    may start its pool's threads after it listens, even while it answers its first session,
    and a runtime (the JVM) starts threads of its own. Threads that stay after the sessions
    are a pool or a leak: more sessions, one after another, tell. A pool stops growing (at
    its size, or at once if idle workers take the sessions), a leak grows with each session.
    """
    proc = require_process(server, "EXIT-4")
    full_session(server, 1, name="W")
    base_children = set(proc.live_descendants())
    base_threads = settled_thread_count(proc)
    for i in range(6):
        before = fork_children_count(server)
        client = server.connect()
        client.request(server.adapter.request(i, 64))
        if i % 2 == 0:
            client.end()
        else:
            client.close()
        await_release(server, before)
    expect_alive(server, "after six sessions ended")

    def settled() -> bool:
        return set(proc.live_descendants()) <= base_children and proc.thread_count() <= base_threads

    # Ended early by children that spin instead of exiting (lingering.py): they never go,
    # and more sessions tell the rest.
    watch = SpinWatch()

    def spinners() -> set[int]:
        extra = set(proc.live_descendants()) - base_children
        known = extra & server.spinners
        return known or (extra if watch.all_spinning(extra) else set())

    def undecided() -> bool:
        """A child still at work that has not spun yet: on its way out, or a spinner that a
        busy machine gives less than a core, which takes longer to be told."""
        extra = set(proc.live_descendants()) - base_children
        return any(at_work(pid) for pid in extra - watch.spinning(extra))

    wait_until(lambda: settled() or bool(spinners()), SETTLE_TIMEOUT)
    if not settled() and not spinners():
        # CPU used, not time passed, tells a spinner: give undecided children the CPU
        # time a busy machine kept from them (at most MAX_UNDECIDED more), so that the
        # verdict reads the same on any machine, and no more sessions add spinners to it.
        wait_until(lambda: settled() or bool(spinners()) or not undecided(), MAX_UNDECIDED)
    ok = settled()
    spun = set() if ok else spinners()
    extra = sorted(set(proc.live_descendants()) - base_children)
    if spun:
        # Children that run on after their sessions are no pool's idle workers: no more
        # sessions are needed to tell (each would add a spinner to the machine).
        _children_left(
            server,
            "kept idle by a pool",
            f"{len(extra)} extra child process(es) still running {extra}; {len(spun)} of them "
            f"spin: each used {SPUN_CPU} s of CPU or more after its session ended",
            sorted(spun),
            ", instead of looping on",
        )
    if not ok and extra:
        # Children stayed: workers of a pool the server was still starting when the count
        # began (a prefork server listens before its last worker is forked), or children
        # that outlive their sessions. Only the latter go on growing, a child per session.
        growth = measure_thread_growth(
            proc,
            lambda n: run_sessions(server, n),
            sessions=CHILD_GROWTH_SESSIONS,
            round_size=CHILD_GROWTH_ROUND,
            measure=lambda: settled_child_count(proc),
            unit="live child processes",
        )
        expect_alive(server, "after sessions one after another")
        if not growth.stopped:
            _children_left(
                server,
                f"kept by a pool that stops growing (at most {ROUND_SLACK} more over "
                f"{CHILD_GROWTH_ROUND} sessions)",
                f"{len(extra)} extra child process(es) still running {extra}; more sessions "
                f"one after another added more: {growth.describe()}",
                [pid for pid in extra if is_running(pid)],
            )
        ok, _ = wait_until(lambda: proc.thread_count() <= base_threads, SETTLE_TIMEOUT)
    if not ok:
        # Threads stayed: a pool, or threads that outlive their sessions. Only a leak goes
        # on growing with every session.
        growth = measure_thread_growth(proc, lambda n: run_sessions(server, n))
        expect_alive(server, "after sessions one after another")
        if not growth.stopped:
            sessions, added = growth.added_over(1)
            fail(
                f"within {SETTLE_TIMEOUT:.1f} s of the sessions' end, their threads gone, or "
                f"kept by a pool that stops growing (at most {ROUND_SLACK} more threads over "
                f"{sessions} sessions)",
                f"{growth.threads} threads after {growth.sessions} more sessions, still "
                f"growing: +{added} over the last {sessions} sessions (before the sessions: "
                f"{base_threads})",
                did=[
                    "ran a warm-up session, then 6 sessions one after another (each ended)",
                    f"their threads stayed, so ran up to {GROWTH_SESSIONS} more sessions one "
                    f"after another, counting threads every {GROWTH_ROUND}",
                ],
                evidence=[growth.describe().capitalize()],
                cause="the thread serving a session must end with it: return from its "
                "function (and detach or join it), never block forever after closing; a pool "
                "must have a bound, or reuse its idle threads",
            )
    # Which threads ran (or waited to), read before and after the window (outside it): the
    # failure names them, and the report shows where in their code they spin (stacks.py).
    seen = busy.measure(proc, CPU_WINDOW, BUSY_SHARE)
    if seen.busy(BUSY_SHARE):
        # A thread that took a third of what the server used is named even below half the
        # limit: on a busy machine the spinner gets less of a core, and its runtime's other
        # threads (a JIT compiling the hot loop) share what it gets.
        total = seen.wanted if seen.starved else seen.used
        spinning = seen.spinning(min(BUSY_SHARE / 2, total / 3))
        threads = [
            ThreadRef(
                t.pid,
                t.tid,
                f"pid {t.pid}: "
                + (
                    f"runnable {t.wanted:.0%} of the time (on a CPU {t.used:.0%})"
                    if seen.starved
                    else f"on a CPU {t.used:.0%} of the time"
                ),
            )
            for t in spinning[:SPINNERS_SHOWN]
        ]
        fail(
            f"an idle server (< {BUSY_SHARE:.0%} of a core) once sessions ended",
            seen.describe(),
            did=server.transcript.tail(),
            evidence=[
                f"{'Spinning:' if i == 0 else '':10}{t.label}"
                + (f" (thread {t.tid})" if t.tid != t.pid else "")
                for i, t in enumerate(threads)
            ],
            cause="something spins after its session: a loop that keeps calling recv() after "
            "it returned 0, or a child that never exits",
            threads=threads,
        )


@requirement("EXIT-5")
def test_sigterm_stops_server_and_children(server: Server) -> None:
    """SIGTERM with sessions open: exit within 2 s, no child left running."""
    proc = require_process(server, "EXIT-5")
    clients = [server.connect() for _ in range(3)]
    for client in clients:
        client.send(server.adapter.request(0, 64))
    # Live sessions make SIGTERM meaningful; whether they are served at once is not this
    # requirement's business, so all three together wait at most REPLY_TIMEOUT for answers.
    deadline = time.monotonic() + REPLY_TIMEOUT
    for client in clients:
        client.recv_some(max(0.0, deadline - time.monotonic()))
    children = set(proc.live_descendants())
    server.transcript.add(f"sent SIGTERM to the server (pid {proc.pid})")
    os.kill(proc.pid, signal.SIGTERM)
    gone, _ = wait_until(lambda: not proc.alive(), SIGTERM_TIMEOUT)
    if not gone:
        tail = server.launched.stderr_tail() if server.launched is not None else ""
        fail(
            f"the server to exit within {SIGTERM_TIMEOUT:.0f} s of SIGTERM",
            f"it was still running after {SIGTERM_TIMEOUT:.0f} s",
            did=server.transcript.tail(),
            evidence=["Its stderr ended with:\n" + tail] if tail else [],
            cause="handle SIGTERM: stop accepting, end live sessions, exit (a handler that "
            "sets a flag checked by the accept loop, or the default action)",
        )

    def none_left() -> bool:
        return not [pid for pid in children if is_running(pid)]

    cleared, _ = wait_until(none_left, SIGTERM_TIMEOUT)
    if not cleared:
        still = [pid for pid in children if is_running(pid)]
        fail(
            "no child process of the server left running after it exited",
            f"{len(still)} child(ren) still running: {still}",
            did=server.transcript.tail(),
            cause="on SIGTERM, the parent should signal its children (kill(pid, SIGTERM)) and "
            "wait for them before exiting",
        )


REUSEADDR_CAUSE = (
    "set SO_REUSEADDR on the listening socket before bind(): int one = 1; "
    "setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); without it bind() fails "
    "with EADDRINUSE while connections of the stopped instance linger on the port"
)


@requirement("EXIT-6")
def test_restarts_on_its_port_at_once(server: Server) -> None:
    """Stop the server with a client connected, start it again on the same port."""
    launched = server.launched
    if launched is None:
        pytest.skip("EXIT-6 needs a server the kit launched")
    a = server.connect("A")
    open_session(server, a, server.adapter.request(0, 16))
    launched.stop()
    server.transcript.add(
        f"stopped the server while A was connected (its end of A stays on port {server.port})"
    )
    server.transcript.add(f"started the same command again on port {server.port}")
    try:
        again = restart_on_port(launched)
    except LaunchError as exc:
        fail(
            f"the new instance listening on port {server.port} within {launched.ready_timeout:g} s",
            str(exc).splitlines()[0],
            did=server.transcript.tail(),
            evidence=[line.strip() for line in str(exc).splitlines()[1:] if line.strip()][-4:],
            cause=REUSEADDR_CAUSE,
        )
    finally:
        a.reset()  # frees the stopped instance's end of A: nothing stays on the port
    again.stop()
