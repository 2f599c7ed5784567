"""Clients of the server under test: sockets with a timeout on every operation, and a transcript.

Every action a check takes through a `Client` is written to the shared `Transcript`, so a
failure can say exactly what the kit did ("opened client A; sent b'ping' on A; ...") without
each check keeping its own log. Receiving helpers never wait without a deadline, and the
`expect*` helpers raise `Violation`s that describe the server's behaviour, not socket errors.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

from conformance.harness.address import family_of
from conformance.harness.failure import fail, show
from conformance.harness.timeouts import ANSWER_TIMEOUT, LOOPBACK_TIMEOUT, QUIET_PERIOD
from conformance.harness.waiting import STUCK_FOR, Silence
from conformance.harness.wire import EXIT

if TYPE_CHECKING:
    from conformance.protocols.base import ProtocolAdapter

RECV_SIZE = 65536


#: Waits kept per check: a picture of more is no clearer, and the report stays small.
WAITS_KEPT = 64

#: How long a later request of a connection waits for its reply on a server seen, before
#: the checks, to answer only the first (see `LaterReplies`). That server gave its second
#: request nothing for ANSWER_TIMEOUT already: waiting as long again in every check that
#: sends one only delays a verdict that is known (a thread server with one reply per
#: connection took 38 s to its report, most of it in such waits). A quarter of a second is
#: still some 1000 loopback round trips of a server that does answer.
LATER_REPLY_WAIT = 0.25


class LaterReplies:
    """A later request of a connection that gets no reply, on a server that answers only the
    first request of a connection (liveness.one_reply_per_connection, asked before the
    checks): `block` is set by the plugin for each check that does not judge that rule
    itself, and raises that check's Blocked (the rule it is blocked by, and why). Unset, as
    outside the plugin, every wait is the caller's."""

    def __init__(self) -> None:
        self.block: Callable[[str], NoReturn] | None = None

    def wait(self, client: Client, timeout: float) -> float:
        """The wait for `client`'s next reply: capped once it has had one, when known."""
        return timeout if client.replies == 0 else self.capped(timeout)

    def capped(self, timeout: float) -> float:
        """The wait for a later reply, for callers that know every connection had one."""
        return timeout if self.block is None else min(timeout, LATER_REPLY_WAIT)

    def silent(self, client: Client, got: bytes | None, waited: float) -> None:
        """`client`'s later request got `got` (None: nothing within `waited`; b"": EOF)."""
        if client.replies == 0 or got:
            return
        what = "the connection closed" if got == b"" else f"nothing came in {waited:g} s"
        self.none_came(f"request {client.replies + 1} on {client.name}: {what}")

    def none_came(self, what: str) -> None:
        """Later requests got no reply (`what`): the check ends, blocked, when known."""
        if self.block is not None:
            self.block(what)


LATER_REPLIES = LaterReplies()


@dataclass
class Transcript:
    """What the kit did, in order, as short sentences; and how long each client waited for
    a reply (`waits`: the HTML report draws them for a concurrency failure)."""

    steps: list[str] = field(default_factory=list)
    waits: list[dict[str, object]] = field(default_factory=list)

    def add(self, step: str) -> None:
        self.steps.append(step)

    def waited(self, client: str, seconds: float, answered: bool, limit: float) -> None:
        """Client `client` waited `seconds` for a reply, which came (`answered`) or not
        within `limit` seconds. The last WAITS_KEPT are kept."""
        self.waits.append(
            {
                "client": client,
                "waited_s": round(seconds, 3),
                "answered": answered,
                "limit_s": round(limit, 3),
            }
        )
        del self.waits[:-WAITS_KEPT]

    def tail(self, n: int = 12) -> list[str]:
        if len(self.steps) <= n:
            return list(self.steps)
        return [f"... {len(self.steps) - n} earlier steps", *self.steps[-n:]]


#: Linux's TCP state number for CLOSE_WAIT (include/net/tcp_states.h): the peer sent its FIN.
_TCP_CLOSE_WAIT = 8
_ABORT = struct.pack("ii", 1, 0)


def close_socket(sock: socket.socket, abort: bool = False) -> None:
    """Close a client socket without leaving the server's end of it in TIME_WAIT.

    The side that closes first keeps the connection in TIME_WAIT for a minute, bound to its
    port. When the server closed first (after `exit`), that side is the server's, on the
    server's port, and a server that hard-codes its port and does not set SO_REUSEADDR could
    not be started again on it for a minute. So when the server's FIN has already arrived
    (CLOSE_WAIT), the kit answers with RST instead of FIN: the server has closed its
    descriptor already, the connection is over either way, and nothing stays on its port.

    `abort`: the session was ended by `exit` and its reply read, so the server is closing
    too, maybe at this very moment; two FINs that cross leave *both* ends in TIME_WAIT, so
    the kit resets instead, which the server, done with the session, never reads.
    """
    with contextlib.suppress(OSError):
        state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
        if abort or state == _TCP_CLOSE_WAIT:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _ABORT)
    sock.close()


#: tcp_states.h: the connection is over (both FINs seen, or a reset) for a socket we hold.
_TCP_TIME_WAIT = 6
_TCP_CLOSE = 7


def peer_closed(sock: socket.socket) -> bool:
    """Whether the other end has closed (its FIN is here: CLOSE_WAIT, or after our own FIN
    TIME_WAIT or CLOSE; a reset: CLOSE), read from TCP_INFO without touching the data still
    queued."""
    try:
        state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
    except OSError:
        return True
    return state in (_TCP_TIME_WAIT, _TCP_CLOSE, _TCP_CLOSE_WAIT)


class Client:
    """One TCP connection to the server under test."""

    def __init__(self, sock: socket.socket, name: str, transcript: Transcript) -> None:
        self.sock = sock
        self.name = name
        self.transcript = transcript
        self.closed = False
        #: `exit` was sent: the server ends the session, and close() resets (close_socket).
        self.ended_by_exit = False
        #: Kept from the start: a closed socket cannot say which port it used.
        self.local_address: tuple[str, int] = sock.getsockname()[:2]
        #: The protocol's adapter (set by Server): how much of what arrives is one reply.
        self.adapter: ProtocolAdapter | None = None
        #: The last request sent (its reply's framing may depend on it).
        self.last_request: bytes = b""
        #: Where the server waits when this client's reply does not come (set by Server,
        #: which knows its processes; see waiting.py).
        self.on_silence: Callable[[], Silence] | None = None
        #: Who takes the socket once `end` has ended the session (set by Server, which
        #: awaits the server's end and closes it later); called with whether `exit` went.
        self.on_end: Callable[[Client, bool], None] | None = None
        #: The last reply said the server closes the connection after it, as the protocol
        #: lets it (HTTP/1.0, `Connection: close`): the session is over, nothing more is sent.
        self.server_closes = False
        #: The rest of a request whose opening was sent to hold the session open (`hold`).
        self.held: bytes | None = None
        #: Replies received whole on this connection (see LaterReplies).
        self.replies = 0

    @property
    def exit_bytes(self) -> bytes:
        """The bytes that end a session politely (the protocol's exit request)."""
        exit_request = self.adapter.exit_request if self.adapter is not None else None
        return EXIT if exit_request is None else exit_request

    def silence(self) -> Silence:
        """Where the server waits while this client's reply is missing: evidence lines, and
        a cause when they show one (which then replaces the check's own guess)."""
        return self.on_silence() if self.on_silence is not None else Silence()

    # -- opening and closing ----------------------------------------------------------------
    @classmethod
    def connect(
        cls,
        host: str,
        port: int,
        name: str,
        transcript: Transcript,
        timeout: float = LOOPBACK_TIMEOUT,
    ) -> Client:
        sock = socket.socket(family_of(host), socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect((host, port))
        except OSError as exc:
            __tracebackhide__ = True
            sock.close()
            transcript.add(f"tried to open client {name}")
            fail(
                f"the server accepts a connection from client {name} on {host}:{port}",
                f"connect() failed: {_describe_oserror(exc)}",
                did=transcript.tail(),
            )
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transcript.add(f"opened client {name}")
        return cls(sock, name, transcript)

    def end(self, close: bool = True) -> None:
        """End the session without judging how the server ends it, then close (unless not
        `close`: a check that ends many sessions at once closes them after).

        The one way the kit ends a session it does not judge (see `end_session_on`); the
        protocol and exit checks, which judge the ending, send their own bytes. A client of
        a `Server` hands the socket to it instead of closing (`on_end`): the server's end
        is awaited and the close deferred (Server.ended).
        """
        if not self.closed:
            sent_exit = end_session_on(
                self.sock, self.adapter, server_closes=self.server_closes, held=self.held
            )
            self.ended_by_exit = self.ended_by_exit or sent_exit
            if self.on_end is not None:
                self.on_end(self, sent_exit)
            elif close:
                self.close()

    def close(self, record: bool = True) -> None:
        if not self.closed:
            self.closed = True
            # A server that closes after its reply is closing now too (see close_socket).
            close_socket(self.sock, abort=self.ended_by_exit or self.server_closes)
            if record:
                self.transcript.add(f"closed {self.name}")

    def half_close(self) -> None:
        """Send FIN: the server's recv() returns 0 while we can still read its answers."""
        self.sock.shutdown(socket.SHUT_WR)
        self.transcript.add(f"half-closed {self.name} (sent EOF)")

    def reset(self) -> None:
        """Abortive close: SO_LINGER with a zero timeout makes close() send RST, not FIN."""
        if self.closed:
            return
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _ABORT)
        self.closed = True
        self.sock.close()
        self.transcript.add(f"reset {self.name} (RST)")

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sending ----------------------------------------------------------------------------
    def send(self, data: bytes, timeout: float = LOOPBACK_TIMEOUT) -> None:
        """Send all of `data` in one call (a message of <= 1023 bytes is one segment)."""
        __tracebackhide__ = True
        self.transcript.add(f"sent {show(data)} on {self.name}")
        self.ended_by_exit = data == self.exit_bytes
        self.last_request = data
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(data)
        except OSError as exc:
            fail(
                f"to send {len(data)} bytes on {self.name}",
                f"send failed: {_describe_oserror(exc)}",
                did=self.transcript.tail(),
            )

    # -- receiving --------------------------------------------------------------------------
    def recv_some(self, timeout: float) -> bytes | None:
        """One recv(): the bytes that arrived, b'' at EOF, None if nothing within `timeout`.

        A reset by the server reads as EOF here; `expect_eof` callers treat both as closed.
        """
        self.sock.settimeout(max(timeout, 1e-6))
        try:
            return self.sock.recv(RECV_SIZE)
        except TimeoutError:
            return None
        except ConnectionResetError:
            return b""

    def recv_exactly(self, n: int, timeout: float) -> tuple[bytes, str]:
        """Read until `n` bytes, EOF or the deadline. Returns (bytes, "ok"|"eof"|"timeout")."""
        deadline = time.monotonic() + timeout
        data = b""
        while len(data) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return data, "timeout"
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(n - len(data))
            except TimeoutError:
                return data, "timeout"
            except ConnectionResetError:
                return data, "eof"
            if not chunk:
                return data, "eof"
            data += chunk
        return data, "ok"

    def recv_stream(self, n: int, stall: float) -> tuple[bytes, str]:
        """Read `n` bytes of a long stream; give up when nothing arrives for `stall` seconds.

        A deadline on the whole stream would have to be long enough for a slow machine and
        would then make a server that stops sending wait that long; a stall limit does not.
        """
        chunks: list[bytes] = []
        got = 0
        while got < n:
            chunk = self.recv_some(stall)
            if chunk is None:
                return b"".join(chunks), "timeout"
            if not chunk:
                return b"".join(chunks), "eof"
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks), "ok"

    def read_until_eof(
        self, timeout: float, limit: int = 1 << 20, stuck: Callable[[], bool] | None = None
    ) -> tuple[bytes, bool]:
        """Everything the server sends until it closes. Returns (bytes, closed_in_time).

        `stuck`: asked between reads, at most every STUCK_FOR s, whether the server can no
        longer close (waiting.StuckWatch); if so, the wait ends there, as not closed."""
        deadline = time.monotonic() + timeout
        data = b""
        while len(data) < limit:
            left = deadline - time.monotonic()
            chunk = self.recv_some(left if stuck is None else min(left, STUCK_FOR))
            if chunk is None:
                if stuck is None or time.monotonic() >= deadline or stuck():
                    return data, False
                continue
            if not chunk:
                return data, True
            data += chunk
        return data, False

    def expect(
        self,
        expected: bytes,
        timeout: float = ANSWER_TIMEOUT,
        *,
        exact: bool = True,
        cause: str | None = None,
    ) -> None:
        """Read exactly len(expected) bytes and compare; with `exact`, confirm nothing follows.

        `OK!!!\\n` is a failure: after the 5 bytes we listen for QUIET_PERIOD more.
        """
        __tracebackhide__ = True
        timeout = LATER_REPLIES.wait(self, timeout)
        data, status = self.recv_exactly(len(expected), timeout)
        if status != "ok":
            LATER_REPLIES.silent(self, data or (None if status == "timeout" else b""), timeout)
        if status == "timeout":
            got = f"only {show(data)}" if data else "nothing"
            fail(
                f"{show(expected)} on {self.name} within {timeout:.1f} s",
                f"{got} after {timeout:.1f} s",
                did=self.transcript.tail(),
                cause=cause,
            )
        if status == "eof":
            fail(
                f"{show(expected)} on {self.name}",
                f"the server closed the connection after sending {show(data)}",
                did=self.transcript.tail(),
                cause=cause,
            )
        if data != expected:
            fail(
                f"{show(expected)} on {self.name}",
                f"{show(data)}",
                did=self.transcript.tail(),
                cause=cause,
            )
        if exact:
            extra = self.recv_some(QUIET_PERIOD)
            if extra:
                fail(
                    f"exactly {show(expected)} on {self.name} and nothing more",
                    f"{show(expected + extra)}: {len(extra)} extra byte(s) {show(extra)}",
                    did=self.transcript.tail(),
                    cause="the reply carries extra bytes (a newline or a terminating NUL?): "
                    'send exactly the 5 bytes OK!!!, e.g. write(fd, "OK!!!", 5).',
                )
        self.replies += 1
        self.transcript.add(f"received {show(expected)} on {self.name}")

    def reply(self, timeout: float = ANSWER_TIMEOUT, cause: str | None = None) -> bytes:
        """Wait for the answer to a message, whatever its bytes (checks outside `protocol`).

        Only the protocol checks judge the reply's bytes; the others only need to know the
        server answered, so a server that replies `OK!!!\\n` fails protocol and nothing else.
        """
        __tracebackhide__ = True
        started = time.monotonic()
        timeout = LATER_REPLIES.wait(self, timeout)
        data = self.recv_some(timeout)
        self.transcript.waited(self.name, time.monotonic() - started, bool(data), timeout)
        LATER_REPLIES.silent(self, data, timeout)
        if data is None:
            silence = self.silence()
            fail(
                f"a reply on {self.name} within {timeout:.1f} s",
                f"nothing after {timeout:.1f} s",
                did=self.transcript.tail(),
                cause=silence.cause or cause,
                evidence=silence.lines,
                threads=silence.threads,
            )
        if not data:
            fail(
                f"a reply on {self.name}",
                "the server closed the connection instead of replying",
                did=self.transcript.tail(),
                cause=cause,
            )
        if self.adapter is not None and self.adapter.framed:
            data = self._rest_of_reply(data, started + timeout, timeout, cause)
            self.server_closes = self.adapter.closes_after(self.last_request, data)
        self.replies += 1
        self.transcript.add(f"received {show(data)} on {self.name}")
        return data

    def _rest_of_reply(
        self, data: bytes, deadline: float, timeout: float, cause: str | None
    ) -> bytes:
        """Read on until `data` holds the whole reply (the adapter's framing), by `deadline`:
        the reply's first bytes and its last share one `timeout`, it does not start again."""
        __tracebackhide__ = True
        assert self.adapter is not None
        remaining = max(0.0, deadline - time.monotonic())
        data, status = self.read_reply(self.last_request, remaining, data)
        if status == "timeout":
            silence = self.silence()
            fail(
                f"a complete reply on {self.name} within {timeout:.1f} s",
                f"only {show(data)} after {timeout:.1f} s",
                did=self.transcript.tail(),
                cause=silence.cause or cause,
                evidence=silence.lines,
                threads=silence.threads,
            )
        if status == "eof":
            fail(
                f"a complete reply on {self.name}",
                f"the server closed the connection after sending {show(data)}",
                did=self.transcript.tail(),
                cause=cause,
            )
        return data

    def read_reply(self, request: bytes, timeout: float, data: bytes = b"") -> tuple[bytes, str]:
        """Read until the adapter says the reply to `request` is complete, EOF or the
        deadline. Returns (bytes, "ok"|"eof"|"timeout"); without an adapter, one recv()."""
        if not data:
            timeout = LATER_REPLIES.wait(self, timeout)
        received, status = self._read_reply(request, timeout, data)
        if not data and status != "ok":
            LATER_REPLIES.silent(self, received or (None if status == "timeout" else b""), timeout)
        if status == "ok" and not data:
            self.replies += 1
        return received, status

    def _read_reply(self, request: bytes, timeout: float, data: bytes) -> tuple[bytes, str]:
        adapter = self.adapter
        deadline = time.monotonic() + timeout

        def whole() -> bool:
            return bool(data) and (adapter is None or adapter.complete(request, data))

        while not whole():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return data, "timeout"
            size = adapter.read_size(request, len(data)) if adapter is not None else RECV_SIZE
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(max(size, 1))
            except TimeoutError:
                return data, "timeout"
            except ConnectionResetError:
                return data, "eof"
            if not chunk:
                return data, "eof"
            data += chunk
        return data, "ok"

    def hold(self, message: bytes) -> None:
        """Open a session that stays open without a reply due: send the opening of `message`
        (the adapter's `opening`); `finish` sends the rest. Without an opening (ok, echo,
        where any bytes are a whole message) the whole request goes, and its reply is read."""
        __tracebackhide__ = True
        n = self.adapter.opening(message) if self.adapter is not None else None
        if n is None:
            self.request(message)
            return
        self.send(message[:n])
        self.held, self.last_request = message[n:], message

    def finish(self, timeout: float = ANSWER_TIMEOUT, cause: str | None = None) -> bytes:
        """Send the rest of the request `hold` opened, and wait for its reply."""
        __tracebackhide__ = True
        rest, request = self.held, self.last_request
        if rest is None:
            return b""
        self.held = None
        self.send(rest)
        self.last_request = request
        return self.reply(timeout, cause=cause)

    def request(
        self, message: bytes, timeout: float = ANSWER_TIMEOUT, cause: str | None = None
    ) -> bytes:
        """Send a message and wait for its reply (bytes not judged; see `reply`)."""
        __tracebackhide__ = True
        self.send(message)
        return self.reply(timeout, cause=cause)

    def expect_eof(self, timeout: float, cause: str | None = None) -> bytes:
        """Wait for the server to close; returns what it sent before (the caller judges it)."""
        __tracebackhide__ = True
        data, closed = self.read_until_eof(timeout)
        if not closed:
            sent = f"; it sent {show(data)} meanwhile" if data else ""
            fail(
                f"EOF on {self.name} within {timeout:.1f} s (the server closes the connection)",
                f"the connection was still open after {timeout:.1f} s{sent}",
                did=self.transcript.tail(),
                cause=cause,
            )
        self.transcript.add(f"read EOF on {self.name}")
        return data


def end_session_on(
    sock: socket.socket,
    adapter: ProtocolAdapter | None,
    *,
    server_closes: bool = False,
    held: bytes | None = None,
    strict: bool = False,
) -> bool:
    """End a session on `sock` without judging how the server ends it: the one home of that
    rule, for clients, the load driver and raw probes alike. Returns True if the protocol's
    exit request was sent. The caller closes `sock`, or reads on to see the server's end.

    - the server said its last reply ends the session (HTTP/1.0, `Connection: close`):
      nothing to send, it closes on its own;
    - a request held open (`Client.hold`), or a protocol without an exit request (echo,
      line): the client's EOF ends it (shutdown), as any server must accept;
    - otherwise the exit request (`exit`, `QUIT`, `Connection: close`) *and* the close, so a
      server that forgets to close after `exit` (an exit defect) still sees its session end
      by the client's EOF, and is not also failed for leaking descriptors or zombies.
    A socket the server already reset may refuse either: that is its end too (`strict`: the
    OSError is raised, for a caller that counts it).
    """
    exit_request = adapter.exit_request if adapter is not None else EXIT
    try:
        if server_closes:
            return False
        if exit_request is None or held is not None:
            sock.shutdown(socket.SHUT_WR)
            return False
        sock.send(exit_request)  # a few bytes: one call, blocking or not
        return True
    except OSError:
        if strict:
            raise
        return False


def _describe_oserror(exc: OSError) -> str:
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timed out"
    if exc.errno is not None:
        return f"{errno.errorcode.get(exc.errno, exc.errno)} ({exc.strerror})"
    return str(exc)
