"""Does the server answer at all? One session, asked once before any check.

A server that accepts and never answers (or never accepts) breaks one rule, the first
protocol requirement, and every other check would only wait out its own deadline to say the
same thing with a wrong cause ("the parent never waits for its children"). Asked once, the
answer lets those checks be reported as blocked by that rule at once, so such a server gets
its whole report in seconds.
"""

from __future__ import annotations

import contextlib

from conformance.harness.sessions import end_session, message
from conformance.harness.target import Server
from conformance.harness.timeouts import ANSWER_TIMEOUT

#: The requirement a server that never answers breaks, per protocol profile.
ROOT = {"ok": "PROTO-1", "echo": "PROTO-4"}


def silence(server: Server) -> str | None:
    """None if the server answers a message within ANSWER_TIMEOUT; else what the kit saw.

    Any byte counts as an answer: whether the bytes are right is the protocol checks' call.
    """
    payload = message(0) if server.protocol == "ok" else message(0, 16)
    try:
        client = server.connect("P")
    except AssertionError:
        return "a client could not even connect"
    try:
        client.send(payload)
        got = client.recv_some(ANSWER_TIMEOUT)
    except AssertionError:
        got = b""
    finally:
        with contextlib.suppress(OSError):
            end_session(server, client)
        server.clients.clear()
    if got:
        return None
    what = "the server closed the connection" if got == b"" else "nothing came back"
    return f"before the checks, a client sent {payload!r} and {what} within {ANSWER_TIMEOUT:.0f} s"
