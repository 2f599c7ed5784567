"""What the server gets wrong before any check: no answer at all, or a death after its first
sessions. Each is asked once, on a server of its own, before the checks.

A server that accepts and never answers (or never accepts) breaks one rule, the first
protocol requirement, and every other check would only wait out its own deadline to say the
same thing with a wrong cause ("the parent never waits for its children"). Asked once, the
answer lets those checks be reported as blocked by that rule at once, so such a server gets
its whole report in seconds.
"""

from __future__ import annotations

import contextlib

from conformance.harness.client import Client
from conformance.harness.polling import wait_until
from conformance.harness.server import Server
from conformance.harness.sessions import DEATH_GRACE
from conformance.harness.timeouts import ANSWER_TIMEOUT, SETTLE_TIMEOUT


def root(protocol: str) -> str:
    """The requirement a server that never answers breaks: the adapter's `root`."""
    from conformance import protocols

    return protocols.get(protocol).root


def silence(server: Server) -> str | None:
    """None if the server answers a message within ANSWER_TIMEOUT; else what the kit saw.

    Any byte counts as an answer: whether the bytes are right is the protocol checks' call.
    Whether the reply announces a close (`announced_close`) is kept in `server.one_reply`.
    """
    payload = server.adapter.request(0, 16)
    try:
        client = server.connect("P")
    except AssertionError:
        return "a client could not even connect"
    try:
        client.send(payload)
        got = client.recv_some(ANSWER_TIMEOUT)
        # Asked here, of the same reply: a server that dies once its first session ends
        # (EINTR-1) could not be asked again.
        server.one_reply = announced_close(server, payload, got, client) if got else None
        client.server_closes = server.one_reply is not None
    except AssertionError:
        got = b""
    finally:
        with contextlib.suppress(OSError):
            client.end()
        server.clients.clear()
    if got:
        return None
    if not server.alive():
        return None  # a death is not silence: the checks report it, with its cause
    what = "the server closed the connection" if got == b"" else "nothing came back"
    return f"before the checks, a client sent {payload!r} and {what} within {ANSWER_TIMEOUT:.0f} s"


def announced_close(server: Server, request: bytes, first: bytes, client: Client) -> str | None:
    """What the kit saw if the reply to `request` (its first bytes `first`, the rest read
    here) says the server closes the connection after it, as the protocol lets it (HTTP/1.0
    without keep-alive, `Connection: close`); else None.

    Such a server serves one request per connection, and nothing is wrong with that: the
    checks then hold sessions open with a request's opening (`Client.hold`) where they need
    one open, and never send a second request on a connection. Whether it then does close
    is PROTO-6's to judge (a parent that keeps the connection breaks FDP-1 too): the
    announcement decides, so such a server is still judged as one of one request.
    """
    adapter = server.adapter
    if not adapter.framed:
        return None
    reply, _ = client.read_reply(request, ANSWER_TIMEOUT, first)
    if not adapter.closes_after(request, reply):
        return None
    first_line = reply.split(b"\r\n", 1)[0][:60]
    return (
        f"the server's reply says it closes the connection after it ({first_line!r}): one "
        "request per connection"
    )


def one_reply_per_connection(server: Server) -> str | None:
    """None if a connection carries a second request and its reply; else what the kit saw.

    A server that answers only the first request of a connection (HTTP/1.0 without
    keep-alive, gunicorn's sync workers, a loop that reads once) breaks one rule, the
    adapter's `several`; every check that sends a second request on a connection would fail
    it again, with a cause of its own ("a signal interrupted recv()"). Asked of a server that
    answers (see `silence`); a server that dies is not this question's, so it says None.
    """
    first, second = server.adapter.request(0, 16), server.adapter.request(1, 16)
    try:
        client = server.connect("P")
    except AssertionError:
        return None
    try:
        try:
            client.send(first)
            client.reply(ANSWER_TIMEOUT)
        except AssertionError:
            return None  # no first reply: silence() or the checks say so
        try:
            client.send(second)
            got = client.recv_some(ANSWER_TIMEOUT)
        except AssertionError:
            got = b""
    finally:
        with contextlib.suppress(OSError, AssertionError):
            client.end()
        server.clients.clear()
    if got or not server.alive():
        return None
    what = "the server closed the connection" if got == b"" else "nothing came back"
    return (
        f"before the checks, a client sent two requests on one connection: the first got its "
        f"reply, and after the second {what} within {ANSWER_TIMEOUT:.0f} s"
    )


#: The requirement a fork server breaks when it dies once its first sessions' children exit.
DIES_AFTER_SESSIONS = "EINTR-1"


def death_after_sessions(server: Server) -> str | None:
    """Fork servers: how the server died once the sessions it served ended and their
    children exited (None if it is still running).

    That is EINTR-1's defect (SIGCHLD interrupts accept() and the server gives up), and every
    check that needs a second session after a first one ended would otherwise fail it again
    with a cause of its own. Called after model detection, whose sessions have ended.
    """
    proc = server.process
    if proc is None:
        return None
    wait_until(lambda: not server.alive() or not proc.live_descendants(), SETTLE_TIMEOUT)
    died, _ = wait_until(lambda: not server.alive(), DEATH_GRACE)
    if not died:
        return None
    return f"once the kit's first sessions ended and their children exited, {server.death()}"
