"""`http`: HTTP/1.1 `GET` requests on one keep-alive connection; `Connection: close` ends it.

A server may close the connection after a response that says so (`Connection: close`, or an
HTTP/1.0 response without keep-alive: HTTP/1.0 servers, gunicorn's sync worker, CGI-style
services): that is one request per connection, judged as such, not as a dropped session.

A reply is any complete, well-formed response: a status line `HTTP/1.x NNN reason`, headers,
and a body delimited by Content-Length or chunked transfer coding (none for 1xx, 204, 304 and
HEAD). A keep-alive response whose body has neither cannot be told from the next one and is
malformed here; after `Connection: close` the body may run to the close.
"""

from __future__ import annotations

import re
from typing import ClassVar

from hypothesis import strategies as st

from conformance.protocols.base import ROUND_TRIP, ProtocolAdapter

STATUS_LINE = re.compile(rb"HTTP/1\.[01] [1-5]\d\d(?: [^\r\n]*)?")
#: Headers longer than this without their blank line are not a response head.
MAX_HEAD = 65536


def response_length(data: bytes, to_close: bool = False) -> int | None:
    """The end of the HTTP response at the start of `data`; None if incomplete. ValueError
    says what is malformed. `to_close`: the connection ends after it (the body may run to
    the close, so all of `data` is taken)."""
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        if len(data) > MAX_HEAD or (b"\r\n" in data and not _status_ok(data)):
            raise ValueError(f"not an HTTP/1.1 response: {data[:60]!r}")
        return None
    lines = data[:head_end].split(b"\r\n")
    if not STATUS_LINE.fullmatch(lines[0]):
        raise ValueError(f"not an HTTP/1.1 status line: {lines[0][:60]!r}")
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise ValueError(f"a malformed header line: {line[:60]!r}")
        headers[name.lower()] = value.strip()
    status = int(lines[0][9:12])
    body = head_end + 4
    if status < 200 or status in (204, 304):
        return body
    if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        return _chunked_end(data, body)
    if b"content-length" in headers:
        try:
            length = int(headers[b"content-length"])
        except ValueError:
            raise ValueError(f"Content-Length {headers[b'content-length']!r}") from None
        return body + length if len(data) >= body + length else None
    if to_close:
        return len(data)
    raise ValueError("a keep-alive response with neither Content-Length nor chunked coding")


def _status_ok(data: bytes) -> bool:
    return bool(STATUS_LINE.fullmatch(data.split(b"\r\n", 1)[0]))


def _chunked_end(data: bytes, at: int) -> int | None:
    while True:
        end = data.find(b"\r\n", at)
        if end < 0:
            return None
        try:
            size = int(data[at:end].split(b";")[0], 16)
        except ValueError:
            raise ValueError(f"a malformed chunk size: {data[at:end][:20]!r}") from None
        at = end + 2
        if size == 0:
            trailer_end = data.find(b"\r\n\r\n", at - 2)
            return None if trailer_end < 0 else trailer_end + 4
        if len(data) < at + size + 2:
            return None
        at += size + 2


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
