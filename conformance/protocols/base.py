"""The protocol adapter interface: how the kit talks to a server, whatever it speaks.

The checks judge processes, descriptors, signals and concurrency; none of that depends on the
bytes on the wire. What does is written once per protocol, in an adapter:

* `request(i, size)`: request number `i` (distinct per `i`, about `size` bytes where the
  protocol lets the size vary), and `requests()`: a hypothesis strategy of requests, which
  the property-based checks draw from and shrink;
* `reply_length(request, data)`: how many bytes at the start of `data` make the complete
  reply to `request`, or None while it is incomplete (the framing: a line, Content-Length);
* `judge(request, reply)`: None when the reply is right, or what is wrong with it;
* `exit_request`: the bytes that ask the server to end the session politely (`exit`,
  `QUIT`, `Connection: close`); None when only the client's EOF ends a session;
* `closes_after(request, reply)`: whether the protocol lets the server close the connection
  after this reply (HTTP/1.0 without keep-alive, `Connection: close`): such a session has one
  request, and the kit then opens a connection per request;
* `opening(request)`: how many bytes at the start of `request` open a session without
  completing the request (HTTP: the head without its final blank line; `line`: the line
  without its newline), so the kit can hold sessions open on a server that closes after
  each reply; None where the protocol has no such prefix;
* `requirements`: which protocol-bound requirements (`protocols=` in spec.py) it can express,
  and `not_expressible`: generic requirements it cannot, each with the reason. Both become
  `not-applicable` verdicts, with the reason, never failures.

Adding an adapter changes no check: checks and harness only call these.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar

from hypothesis import strategies as st

#: The generic protocol requirement: every request gets one complete, well-formed reply.
ROUND_TRIP = "PROTO-6"


class ProtocolAdapter(ABC):
    """How to run round trips and end sessions in one protocol (see the module docstring)."""

    #: The name the report and JUnit carry (`--protocol NAME` for a built-in adapter).
    name: ClassVar[str] = "adapter"
    #: Protocol-bound requirements (spec.py `protocols=`) this adapter expresses.
    requirements: ClassVar[frozenset[str]] = frozenset({ROUND_TRIP})
    #: Generic requirements this adapter cannot express, with the reason (not-applicable).
    not_expressible: ClassVar[Mapping[str, str]] = {}
    #: The requirement a server that answers nothing breaks (the others are blocked by it).
    root: ClassVar[str] = ROUND_TRIP
    #: The requirement a server that answers only the first request of a connection breaks
    #: (the checks that then fail for sending a second one are blocked by it).
    several: ClassVar[str] = ROUND_TRIP
    #: The request that ends a session politely; None: the client's EOF ends it.
    exit_request: bytes | None = None
    #: False for protocols whose first bytes back already count as the reply where the reply
    #: is not judged (the teaching profiles): the harness then reads once, as it always has.
    framed: ClassVar[bool] = True
    #: True when the reply may still be arriving after the client's EOF (echo): EXIT-2 then
    #: reads it with the EOF instead of before sending it.
    streaming: ClassVar[bool] = False

    @abstractmethod
    def request(self, i: int, size: int = 16) -> bytes:
        """Request number `i`: distinct per `i`, never the exit request."""

    @abstractmethod
    def reply_length(self, request: bytes, data: bytes) -> int | None:
        """Bytes at the start of `data` that complete the reply to `request`; None if more
        are needed. Raise ValueError when `data` can never become a well-formed reply."""

    def judge(self, request: bytes, reply: bytes) -> str | None:
        """None when `reply` (complete, per reply_length) is right for `request`; else why."""
        return None

    def expected_reply(self, request: bytes) -> bytes | None:
        """The exact reply to `request` when it is known in advance (the load driver's fast
        path compares bytes); None: judged by `reply_length` and `judge`."""
        return None

    def exit_reply_ok(self, data: bytes) -> str | None:
        """Judge what the server sent after `exit_request`, up to its close (None: right)."""
        try:
            n = self.reply_length(self.exit_request or b"", data)
        except ValueError as exc:
            return str(exc)
        return None if n is not None else "no complete reply"

    def closes_after(self, request: bytes, reply: bytes) -> bool:
        """Whether the protocol lets the server close the connection once it has sent
        `reply` (complete) to `request`: then that reply ends the session, and the kit sends
        nothing more on it. False by default: the client ends a session."""
        return False

    def opening(self, request: bytes) -> int | None:
        """The bytes at the start of `request` that open a session without completing the
        request (the server waits for the rest), or None where there is no such prefix.
        The kit sends them to hold a session open on a server that closes after a reply."""
        return None

    def wrap(self, text: bytes) -> bytes:
        """A request carrying `text` (printable ASCII) where the protocol has room for it;
        by default request(0), for protocols without room for free text."""
        return self.request(0)

    def probe(self) -> bytes:
        """The request model detection sends (any answer counts)."""
        return self.request(0)

    def read_size(self, request: bytes, got: int) -> int:
        """How many bytes to ask recv() for, `got` bytes of the reply in."""
        return 65536

    def requests(self) -> st.SearchStrategy[bytes]:
        """Requests for the property-based checks; shrinks towards request(0)."""
        return st.integers(min_value=0, max_value=999_999).map(self.request)

    def complete(self, request: bytes, data: bytes) -> bool:
        """Whether `data` holds the whole reply to `request` (a malformed reply counts as
        complete: there is nothing more to wait for, and the judge says what is wrong)."""
        try:
            return self.reply_length(request, data) is not None
        except ValueError:
            return True

    def replies_in(self, request: bytes, data: bytes) -> int:
        """How many complete replies to `request` follow one another in `data`."""
        count = 0
        while data:
            try:
                n = self.reply_length(request, data)
            except ValueError:
                return count + 1
            if not n:
                break
            count, data = count + 1, data[n:]
        return count
