"""`http`: HTTP/1.1 `GET` requests on one keep-alive connection; `Connection: close` ends it.

A server may close the connection after a response that says so (`Connection: close`, or an
HTTP/1.0 response without keep-alive: HTTP/1.0 servers, gunicorn's sync worker, CGI-style
services): that is one request per connection, judged as such, not as a dropped session.

A reply is any complete response that is well-formed by HTTP/1.1's rules (RFC 9112), as h11
reads them: a status line `HTTP/1.x NNN reason`, valid header fields, and a body delimited by
one Content-Length of digits or by the chunked transfer coding, whose chunks are framed
exactly (none for 1xx, 204 and 304). h11 is strict where a hand-written reader is not: a
negative or signed Content-Length, two that disagree, or a transfer coding other than
`chunked` (the kit's requests send no TE) are malformed, not read one way or another. A
keep-alive response whose body has neither framing cannot be told from the next one and is
malformed here; after `Connection: close` the body may run to the close.

h11 costs about 100 microseconds a response, ten times a hand-written reader; a server's
replies are mostly identical bytes (the load driver reads thousands of them), so a response
already judged is looked up instead of parsed again (`_JUDGED`).
"""

from __future__ import annotations

import re
from typing import ClassVar

import h11
from hypothesis import strategies as st

from conformance.protocols.base import ROUND_TRIP, ProtocolAdapter

STATUS_LINE = re.compile(rb"HTTP/1\.[01] [1-5]\d\d(?: [^\r\n]*)?")
#: Headers longer than this without their blank line are not a response head.
MAX_HEAD = 65536
#: What h11 is told the client sent: the kit's requests differ only in an X-Request header,
#: which does not change how a response is framed (a HEAD would; the kit sends none).
_REQUEST = h11.Request(method="GET", target="/", headers=[("Host", "127.0.0.1")])
#: Responses judged complete and well-formed, with their length: the same bytes get the
#: same verdict, so they are not parsed again. Bounded: cleared when full.
_JUDGED: dict[tuple[bytes, bool], int] = {}
_JUDGED_MAX = 256


def response_length(data: bytes, to_close: bool = False) -> int | None:
    """The end of the HTTP response at the start of `data`; None if incomplete. ValueError
    says what is malformed. `to_close`: the connection ends after it (the body may run to
    the close, so all of `data` is taken)."""
    known = _JUDGED.get((data, to_close))
    if known is not None:
        return known
    if b"\r\n\r\n" not in data:
        # h11 waits for the whole head; a first line that is no status line is wrong now.
        if len(data) > MAX_HEAD or (b"\r\n" in data and not _status_ok(data)):
            raise ValueError(f"not an HTTP/1.1 response: {data[:60]!r}")
        return None
    if not _status_ok(data):
        first = data.split(b"\r\n", 1)[0]
        raise ValueError(f"not an HTTP/1.1 status line: {first[:60]!r}")
    length = _parse(data, to_close)
    if length is not None:
        if len(_JUDGED) >= _JUDGED_MAX:
            _JUDGED.clear()
        _JUDGED[(data, to_close)] = length
    return length


def _parse(data: bytes, to_close: bool) -> int | None:
    """h11's reading of the response at the start of `data` (see response_length)."""
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
    conn.send(_REQUEST)
    conn.send(h11.EndOfMessage())
    conn.receive_data(data)
    if to_close:
        conn.receive_data(b"")
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                return None
            if isinstance(event, h11.Response) and not to_close:
                _framed(event)
            if isinstance(event, h11.EndOfMessage):
                return len(data) - len(conn.trailing_data[0])
            if isinstance(event, h11.ConnectionClosed):
                raise ValueError("the connection closed before the response was complete")
    except h11.RemoteProtocolError as exc:
        raise ValueError(f"a malformed HTTP response: {exc}{_framing_of(data)}") from None


def _framing_of(data: bytes) -> str:
    """The head's framing fields, quoted for a failure message (h11 does not show them)."""
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
    fields = [
        line.decode(errors="replace")
        for line in head
        if line.lower().startswith((b"content-length", b"transfer-encoding"))
    ]
    return f" ({'; '.join(fields)})" if fields else ""


def _framed(response: h11.Response) -> None:
    """A keep-alive response must say where its body ends (RFC 9112 §6.3)."""
    if response.status_code in (204, 304):
        return
    names = {name for name, _ in response.headers}
    if b"content-length" not in names and b"transfer-encoding" not in names:
        raise ValueError("a keep-alive response with neither Content-Length nor chunked coding")


def _status_ok(data: bytes) -> bool:
    return bool(STATUS_LINE.fullmatch(data.split(b"\r\n", 1)[0]))


def announces_close(response: bytes) -> bool:
    """Whether a response says the server closes the connection after it (RFC 9112 §9.3,
    §9.6): `Connection: close`, or HTTP/1.0 without `Connection: keep-alive`."""
    head = response.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    tokens: set[bytes] = set()
    for line in head[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"connection":
            tokens |= {t.strip().lower() for t in value.split(b",")}
    if b"close" in tokens:
        return True
    return head[0].startswith(b"HTTP/1.0") and b"keep-alive" not in tokens


class HttpAdapter(ProtocolAdapter):
    """http: HTTP/1.1 GET on a keep-alive connection; Connection: close ends the session."""

    name: ClassVar[str] = "http"
    requirements: ClassVar[frozenset[str]] = frozenset({ROUND_TRIP, "EXIT-1", "ISO-2"})

    def __init__(self, path: str = "/") -> None:
        self.path = path.encode()
        self.exit_request = self._get(b"Connection: close\r\n")

    def _get(self, extra: bytes = b"") -> bytes:
        return b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (self.path, extra)

    def request(self, i: int, size: int = 16) -> bytes:
        return self._get(b"X-Request: %d\r\n" % i)

    def wrap(self, text: bytes) -> bytes:
        return self._get()

    def reply_length(self, request: bytes, data: bytes) -> int | None:
        return response_length(data)

    def closes_after(self, request: bytes, reply: bytes) -> bool:
        return announces_close(reply)

    def opening(self, request: bytes) -> int | None:
        # The head without its final CRLF: the server has the request line and headers,
        # and waits for the blank line that ends them.
        return len(request) - 2

    def exit_reply_ok(self, data: bytes) -> str | None:
        try:
            n = response_length(data, to_close=True)
        except ValueError as exc:
            return str(exc)
        return None if n is not None else "no complete response before the close"

    def requests(self) -> st.SearchStrategy[bytes]:
        return st.integers(min_value=0, max_value=999_999).map(self.request)
