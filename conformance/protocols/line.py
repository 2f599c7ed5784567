"""`line`: newline-framed requests, one reply line per request.

A request is a line of printable ASCII ending in `\\n`; its reply is everything up to the next
`\\n`. With `--line-reply REGEX` the reply line (without its line end) must match REGEX
(`re.fullmatch`). A session ends when the client closes its side (EOF): line protocols have no
common `exit`, so EXIT-1 (the server closes after `exit`) is not-applicable.
"""

from __future__ import annotations

import re
import string
from typing import ClassVar

from hypothesis import strategies as st

from conformance.protocols.base import ROUND_TRIP, ProtocolAdapter

#: A reply line longer than this without a newline is not a line.
MAX_LINE = 65536
_PRINTABLE = string.ascii_letters + string.digits + string.punctuation + " "


class LineAdapter(ProtocolAdapter):
    """line: a request is a line, its reply is one line (--line-reply REGEX to judge it)."""

    name: ClassVar[str] = "line"
    requirements: ClassVar[frozenset[str]] = frozenset({ROUND_TRIP})

    def __init__(self, reply: str | None = None) -> None:
        self.pattern = re.compile(reply.encode()) if reply else None

    def request(self, i: int, size: int = 16) -> bytes:
        text = f"msg-{i:06d}-"
        return (text * (size // len(text) + 1)).encode()[: max(size - 1, 11)] + b"\n"

    def opening(self, request: bytes) -> int | None:
        return len(request) - 1  # the line without its newline

    def wrap(self, text: bytes) -> bytes:
        return text + b"\n"

    def reply_length(self, request: bytes, data: bytes) -> int | None:
        end = data.find(b"\n")
        if end < 0:
            if len(data) > MAX_LINE:
                raise ValueError(f"no line end in the first {MAX_LINE} bytes")
            return None
        return end + 1

    def judge(self, request: bytes, reply: bytes) -> str | None:
        line = reply.rstrip(b"\n").rstrip(b"\r")
        if self.pattern is not None and not self.pattern.fullmatch(line):
            return f"the reply line {line!r} does not match {self.pattern.pattern.decode()!r}"
        return None

    def requests(self) -> st.SearchStrategy[bytes]:
        return st.text(_PRINTABLE, min_size=1, max_size=200).map(lambda t: t.encode() + b"\n")
