"""`resp`: Redis's protocol (RESP2). `PING` gets `+PONG`; `QUIT` gets `+OK`, then a close.

Requests are sent as RESP arrays of bulk strings, as redis-cli does: `*1\\r\\n$4\\r\\nPING\\r\\n`.
A reply is one complete RESP value (simple string, error, integer, bulk string or array); a
`PING` must get `+PONG` and `PING message` its message back as a bulk string.
"""

from __future__ import annotations

from typing import ClassVar

from hypothesis import strategies as st

from conformance.protocols.base import ROUND_TRIP, ProtocolAdapter


def command(*parts: bytes) -> bytes:
    """A RESP array of bulk strings, the form clients send commands in."""
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def value_length(data: bytes, at: int = 0) -> int | None:
    """The end of the RESP value starting at `data[at]`, None if incomplete (ValueError if
    it is not RESP)."""
    if at >= len(data):
        return None
    end = data.find(b"\r\n", at)
    if end < 0:
        return None
    kind, head = data[at : at + 1], data[at + 1 : end]
    if kind in (b"+", b"-"):
        return end + 2
    try:
        n = int(head)
    except ValueError:
        raise ValueError(f"not a RESP value: {data[at : end + 2]!r}") from None
    if kind == b":":
        return end + 2
    if kind == b"$":
        if n < 0:
            return end + 2
        stop = end + 2 + n + 2
        if len(data) < stop:
            return None
        if data[stop - 2 : stop] != b"\r\n":
            raise ValueError("a bulk string without its CRLF")
        return stop
    if kind == b"*":
        pos = end + 2
        for _ in range(max(n, 0)):
            nxt = value_length(data, pos)
            if nxt is None:
                return None
            pos = nxt
        return pos
    raise ValueError(f"not a RESP value: {data[at : end + 2]!r}")


class RespAdapter(ProtocolAdapter):
    """resp: Redis's protocol; PING gets +PONG, QUIT ends the session."""

    name: ClassVar[str] = "resp"
    requirements: ClassVar[frozenset[str]] = frozenset({ROUND_TRIP, "EXIT-1", "ISO-2"})
    exit_request: bytes | None = command(b"QUIT")

    def request(self, i: int, size: int = 16) -> bytes:
        return command(b"PING") if i % 2 == 0 else command(b"PING", b"msg-%06d" % i)

    def opening(self, request: bytes) -> int | None:
        return len(request) - 2  # the command without its last CRLF

    def wrap(self, text: bytes) -> bytes:
        return command(b"PING")

    def reply_length(self, request: bytes, data: bytes) -> int | None:
        return value_length(data)

    def judge(self, request: bytes, reply: bytes) -> str | None:
        parts = request.split(b"\r\n")
        if len(parts) > 4 and parts[0] == b"*2":
            message = parts[4]
            expected = {b"$%d\r\n%s\r\n" % (len(message), message), b"+%s\r\n" % message}
            return None if reply in expected else f"{reply!r} instead of the bulk {message!r}"
        return None if reply == b"+PONG\r\n" else f"{reply!r} instead of b'+PONG\\r\\n'"

    def exit_reply_ok(self, data: bytes) -> str | None:
        return None if data == b"+OK\r\n" else f"{data!r} instead of b'+OK\\r\\n'"

    def requests(self) -> st.SearchStrategy[bytes]:
        words = st.binary(min_size=1, max_size=64)
        return st.one_of(st.just(command(b"PING")), words.map(lambda w: command(b"PING", w)))
