"""Scenario steps: what several clients can do, each as a function a replay script can call.

The state machine of CONC-5 calls these functions and records each call as a line of Python,
so the minimal failing scenario hypothesis shrinks to is shown twice: as readable steps, and
as a standalone snippet that replays it against the same launch command or address.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator

from conformance.harness.address import family_of
from conformance.harness.client import Client, end_session_on
from conformance.harness.failure import Violation, fail, show
from conformance.harness.model import running_threads, settled_count
from conformance.harness.polling import wait_until
from conformance.harness.processes import (
    RunDelays,
    ServerProcess,
    SocketInfo,
    awaits_accept,
    holders_of_connection,
)
from conformance.harness.server import (
    LAUNCH_AHEAD,
    THREADED,
    Server,
    Target,
    attach_server,
    start_server,
)
from conformance.harness.signals import STORM_SIGNALS
from conformance.harness.timeouts import REPLY_TIMEOUT, SETTLE_TIMEOUT
from conformance.harness.waiting import (
    StuckWatch,
    at_rest,
    cannot_close,
    takes_clients,
    where_it_waits,
)

BURST_SIGNALS = 30
#: Descriptors a server may open lazily on first use (an epoll fd, a log file).
DESCRIPTOR_SLACK = 4


def connect(server: Server, name: str) -> Client:
    return server.connect(name)


def connect_together(server: Server, *names: str) -> list[Client]:
    """Clients that reach the accept queue together (see Server.connect_together)."""
    return server.connect_together(list(names))


def unconnected(server: Server, name: str) -> Client:
    """A client that never connected: every send on it fails, closing it does nothing."""
    family = family_of(server.host)
    client = Client(socket.socket(family, socket.SOCK_STREAM), name, server.transcript)
    client.adapter = server.adapter
    server.clients.append(client)
    return client


class SessionClosed(Violation):
    """The server closed a session instead of answering it."""


def send(server: Server, client: Client, data: bytes) -> None:
    """Send one message and wait for its answer, complete as the protocol's adapter frames
    it (any reply in ok; the echoed bytes in echo).

    Whether the bytes are right is the protocol checks' business; here a partial reply is an
    answer, so a server that mangles bytes fails protocol and not concurrency too.
    """
    __tracebackhide__ = True
    try:
        client.send(data)
    except Violation as exc:  # EPIPE or ECONNRESET: the server had ended the session
        raise SessionClosed(exc.expected, exc.actual, exc.did) from None
    proc = server.process
    delays = proc.run_delays() if proc is not None else RunDelays(0.0)
    received, status = client.read_reply(data, REPLY_TIMEOUT)
    starved = 0.0
    if status == "timeout" and not received and proc is not None:
        received, status, starved = _wait_out_starvation(client, data, proc, delays)
    if received and status == "timeout":
        status = "ok"
    if status == "ok":
        client.server_closes = server.adapter.closes_after(data, received)
    if status == "eof":
        raise SessionClosed(
            f"an answer on {client.name} within {REPLY_TIMEOUT:.1f} s",
            f"the server closed the connection after {show(received or b'')}",
            client.transcript.tail(),
        )
    if status != "ok":
        waited = f" (besides {starved:.1f} s the server spent waiting for a CPU)" if starved else ""
        silence = client.silence()
        fail(
            f"an answer on {client.name} within {REPLY_TIMEOUT:.1f} s",
            f"{show(received or b'')} then nothing for {REPLY_TIMEOUT:.1f} s{waited}",
            did=client.transcript.tail(),
            evidence=silence.lines,
            cause=silence.cause,
            threads=silence.threads,
        )
    client.transcript.add(f"received {show(received or b'')} on {client.name}")


#: A server that waited this long for a CPU within a reply's deadline was starved by the
#: machine, and the deadline is extended by that time...
STARVED = 0.1 * REPLY_TIMEOUT
#: ...at most this much in all, so a server that never answers still fails in bounded time.
MAX_STARVED = 5 * REPLY_TIMEOUT


def _wait_out_starvation(
    client: Client, data: bytes, proc: ServerProcess, delays: RunDelays
) -> tuple[bytes, str, float]:
    """The deadline counts the server's own time, not the time it waited on the run queue
    of a busy machine (schedstat): wait again for as long as it was kept from running, while
    that is what kept it. A server blocked elsewhere (a serial server in another client's
    recv()) sleeps, waits for no CPU, and gets no more time. Returns (bytes, status, the
    seconds of starvation waited out)."""
    received, status, extra = b"", "timeout", 0.0
    while status == "timeout" and not received and extra < MAX_STARVED:
        owed = proc.starved_since(delays) - extra  # starvation not yet waited out
        if owed < STARVED:
            break
        wait = min(owed, MAX_STARVED - extra)
        extra += wait
        received, status = client.read_reply(data, wait)
    return received, status, extra


#: finish(): how long the reply to `exit` is awaited before asking whether it can come.
EXIT_REPLY_LOOK = 0.2


def finish(server: Server, client: Client) -> None:
    """End the session as `Client.end` does (the exit request, or EOF), and read the exit
    request's reply before closing, without waiting for the server's EOF."""
    sent_exit = end_session_on(
        client.sock, client.adapter, server_closes=client.server_closes, held=client.held
    )
    if sent_exit:
        client.ended_by_exit = True
        client.transcript.add(f"sent {client.exit_bytes!r} on {client.name}")
        with contextlib.suppress(OSError):
            # A session the server serves answers at once (earlier replies are queued
            # already); one that no thread reads (a descriptor lost to a shared variable,
            # a serial server busy elsewhere) never will, as where the server waits shows.
            if client.recv_some(EXIT_REPLY_LOOK) is None and client.silence().cause is None:
                client.recv_some(REPLY_TIMEOUT - EXIT_REPLY_LOOK)
    elif not client.server_closes:
        client.transcript.add(f"half-closed {client.name} (sent EOF)")
    client.close()


def close(client: Client) -> None:
    client.close()


def reset(client: Client) -> None:
    client.reset()


def signal_burst(server: Server) -> None:
    """A few dozen harmless signals (SIGCHLD, SIGWINCH, SIGURG) to the server and children."""
    if server.process is None:
        return
    pids = server.process.tree_pids(recent=True)
    for i in range(BURST_SIGNALS):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, STORM_SIGNALS[i % len(STORM_SIGNALS)])
    server.transcript.add(f"sent {BURST_SIGNALS} signals to the server and its children")


def send_only(client: Client, data: bytes) -> None:
    """Send one message and read nothing: for scenarios that judge resources, not answers."""
    client.send(data)


def no_zombies(server: Server, cause: str | None = None) -> None:
    """Invariant: every child that has exited is reaped within the grace period."""
    __tracebackhide__ = True
    if server.process is None:
        return
    proc = server.process
    delays = proc.run_delays()
    settled, _ = wait_until(lambda: not proc.zombie_descendants(), SETTLE_TIMEOUT)
    # As for a reply (see send): the grace period is the server's time. A parent that was
    # kept from running gets that time again, at most MAX_STARVED; one asleep in accept()
    # with its zombies unreaped waits for no CPU and gets nothing more.
    extra = 0.0
    while not settled and extra < MAX_STARVED:
        owed = proc.starved_since(delays) - extra
        if owed < STARVED:
            break
        wait = min(owed, MAX_STARVED - extra)
        extra += wait
        settled, _ = wait_until(lambda: not proc.zombie_descendants(), wait)
    if not settled:
        zombies = proc.zombie_descendants()
        waited = f" (besides {extra:.1f} s the server spent waiting for a CPU)" if extra else ""
        fail(
            f"no zombie children within {SETTLE_TIMEOUT:.1f} s of any step",
            f"{len(zombies)} zombie(s) after {SETTLE_TIMEOUT:.1f} s{waited}: pids {zombies[:10]}",
            did=server.transcript.tail(),
            cause=cause,
        )


#: How long the count must hold still: gunicorn sleeps up to 0.1 s between two workers' starts.
BASELINE_STEADY = 0.15


def descriptors(server: Server) -> int:
    """Open descriptors of the server's main process (0 when it is not visible), once the
    count has held still with no thread of the server's tree running: a server may still be
    opening what it keeps after it listens (gunicorn's arbiter: a file per worker as each
    boots, then a control socket), and a count taken then reads those as the sessions'.
    A server at rest is counted at once."""
    proc = server.process
    if proc is None:
        return 0
    # Unless every thread of it waits for a client and nothing else: then nothing changes
    # before the kit connects, and there is nothing to wait for (waiting.at_rest).
    first = proc.fd_count()
    if at_rest(proc.tree_pids(), server.port) and proc.fd_count() == first:
        return first

    def quiet() -> bool:
        return not any(running_threads(pid) for pid in proc.tree_pids(recent=True))

    return settled_count(proc.fd_count, quiet, SETTLE_TIMEOUT, steady=BASELINE_STEADY)


def descriptors_bounded(
    server: Server,
    baseline: int,
    open_sessions: int,
    ended: list[tuple[str, int]],
    cause: str | None = None,
) -> None:
    """Invariant: no server process keeps the connection of an ended session, and the main
    process holds at most `baseline` + one descriptor per open session + DESCRIPTOR_SLACK."""
    __tracebackhide__ = True
    if server.process is None:
        return
    proc = server.process
    bound = baseline + open_sessions + DESCRIPTOR_SLACK

    def kept() -> list[SocketInfo]:
        pids = proc.tree_pids(recent=True)
        return [s for addr in ended for s in holders_of_connection(pids, addr, server.port)]

    stuck = StuckWatch(
        lambda: cannot_close(
            proc.tree_pids(recent=True), [(s.pid, s.fd) for s in kept()], server.port
        )
    )

    # A connection the server has yet to accept() is held by no process, but will be once
    # it is taken (a busy machine may keep the server from it for a while): it is not
    # released until then, unless the server takes no client now (a serial server in
    # another session), and then there is nothing of it to judge.
    elsewhere = StuckWatch(
        lambda: (
            None
            if takes_clients(proc.tree_pids(recent=True), server.port)
            else "takes no client now"
        )
    )

    def queued() -> bool:
        waiting = any(awaits_accept(addr, server.port) for addr in ended)
        return waiting and not (elsewhere.evidence or elsewhere())

    def released() -> bool:
        return not kept() and proc.fd_count() <= bound and not queued()

    delays = proc.run_delays()
    wait_until(lambda: released() or stuck(), SETTLE_TIMEOUT)
    # As for a reply (see send): the grace period is the server's time. Processes kept from
    # running (a child that has yet to close and exit, on a busy machine) get that time
    # again, at most MAX_STARVED; ones asleep with the connection get nothing more.
    extra = 0.0
    while stuck.evidence is None and not released() and extra < MAX_STARVED:
        owed = proc.starved_since(delays) - extra
        if owed < STARVED:
            break
        wait = min(owed, MAX_STARVED - extra)
        extra += wait
        wait_until(lambda: released() or stuck(), wait)
    held, count = kept(), proc.fd_count()
    if not held and count <= bound:
        return
    if held:
        actual = f"{len(held)} connection(s) of ended sessions still open: " + ", ".join(
            f"pid {h.pid}{' (the main process)' if h.pid == proc.pid else ''} fd {h.fd} "
            f"{h.laddr} <-> {h.raddr}"
            for h in held[:5]
        )
    else:
        actual = f"{count} open descriptors"
    clients = {c.local_address[1]: c.name for c in server.clients}
    waits = where_it_waits(sorted({h.pid for h in held}), server.port, clients)
    fail(
        f"within {SETTLE_TIMEOUT:.1f} s of any step, no descriptor for an ended session and at "
        f"most {bound} open descriptors ({baseline} at start + {open_sessions} open "
        f"session(s) + {DESCRIPTOR_SLACK})",
        actual,
        did=server.transcript.tail(),
        evidence=[stuck.evidence] if stuck.evidence else [f"Holder:   {w.line}" for w in waits],
        cause=cause,
    )


@contextlib.contextmanager
def scenario_server(target: Target, protocol: str, model: str = "unknown") -> Iterator[Server]:
    """A fresh server (launch mode) or the running one (address mode), for one example.

    A fresh server per generated example keeps examples independent: a crash in one cannot
    fail the next, so hypothesis shrinks to the input that caused it, and the verdict does not
    hang on how fast a dying server dies. A failure inside says how the server died, if it did.
    """
    if target.mode == "launch":
        server = start_server(target, protocol, model)
    else:
        server = attach_server(target, protocol, model)
    try:
        yield server
    except Violation as exc:
        if not server.alive():
            exc.evidence.append("Server:   " + server.death())
        if server.launched is not None:
            # This example's server is stopped below, long before the verdict's stacks are
            # read (plugin._add_stacks): a native one is gone by then, and a JVM in its
            # shutdown does not answer jcmd, which waited out its whole budget for nothing.
            exc.threads = []
        raise
    finally:
        server.close_clients()
        if server.launched is not None:
            LAUNCH_AHEAD.retire(server.launched)


def replay_snippet(target: Target, protocol: str, lines: list[str], model: str = "unknown") -> str:
    """A standalone Python program that replays `lines` (calls of this module's steps)."""
    where = (
        f"Target('launch', '127.0.0.1', {target.port!r}, {target.command!r})"
        if target.mode == "launch"
        else f"Target('address', {target.host!r}, {target.port!r})"
    )
    body = "\n".join("    " + line for line in lines) or "    pass"
    # The model matters to the replay only where connect_together stops the server.
    pause = f", model={model!r}" if model in THREADED else ""
    from conformance import protocols

    options = protocols.options_of(protocol)
    setup = (
        f"from conformance import protocols\n\nprotocols.configure({protocol!r}, {options!r})\n"
        if options
        else ""
    )
    return (
        "from conformance.harness.scenario_steps import *\n"
        "from conformance.harness.server import Target\n"
        f"{setup}\n"
        f"with scenario_server({where}, {protocol!r}{pause}) as server:\n{body}\n"
    )


__all__ = [
    "SessionClosed",
    "close",
    "connect",
    "connect_together",
    "descriptors",
    "descriptors_bounded",
    "finish",
    "no_zombies",
    "replay_snippet",
    "reset",
    "scenario_server",
    "send",
    "send_only",
    "signal_burst",
    "unconnected",
]
