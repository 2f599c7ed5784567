"""The kit's two teaching protocols, `ok` and `echo`, as adapters (their bytes: harness/wire.py).

`ok`: a message of 1..1023 bytes gets exactly `OK!!!`; `exit` gets `OK!!!`, then the server
closes. `echo`: every byte comes back; the client's half-close ends the session. Their
protocol-bound requirements are the spec's (`protocols=` in spec.py), and where the reply is
not judged the first bytes back count as the answer (`framed = False`), as they always have.
"""

from __future__ import annotations

from typing import ClassVar

from hypothesis import strategies as st

from conformance.harness.wire import EXIT, OK_REPLY, message
from conformance.protocols.base import ProtocolAdapter
from conformance.spec import BOTH, REQUIREMENTS


def _bound_to(profile: str) -> frozenset[str]:
    return frozenset(r.id for r in REQUIREMENTS if r.protocols != BOTH and profile in r.protocols)


class OkAdapter(ProtocolAdapter):
    """ok: every message gets exactly OK!!!; `exit` gets OK!!! then a close."""

    name: ClassVar[str] = "ok"
    requirements: ClassVar[frozenset[str]] = _bound_to("ok")
    root: ClassVar[str] = "PROTO-1"
    several: ClassVar[str] = "PROTO-2"
    exit_request: bytes | None = EXIT
    framed: ClassVar[bool] = False

    def request(self, i: int, size: int = 32) -> bytes:
        return message(i)

    def reply_length(self, request: bytes, data: bytes) -> int | None:
        return len(data) if data else None

    def expected_reply(self, request: bytes) -> bytes | None:
        return OK_REPLY

    def judge(self, request: bytes, reply: bytes) -> str | None:
        return None if reply == OK_REPLY else f"{reply!r} instead of {OK_REPLY!r}"

    def exit_reply_ok(self, data: bytes) -> str | None:
        return None if data == OK_REPLY else f"{data!r} instead of {OK_REPLY!r}"

    def wrap(self, text: bytes) -> bytes:
        return text

    def probe(self) -> bytes:
        return b"model probe"

    def requests(self) -> st.SearchStrategy[bytes]:
        return st.binary(min_size=1, max_size=64).filter(lambda m: not m.startswith(EXIT))


class EchoAdapter(ProtocolAdapter):
    """echo: every byte comes back, in order; the client's half-close ends the session."""

    name: ClassVar[str] = "echo"
    requirements: ClassVar[frozenset[str]] = _bound_to("echo")
    root: ClassVar[str] = "PROTO-4"
    several: ClassVar[str] = "PROTO-4"
    exit_request: bytes | None = None
    framed: ClassVar[bool] = False
    streaming: ClassVar[bool] = True

    def request(self, i: int, size: int = 32) -> bytes:
        return message(i, size)

    def reply_length(self, request: bytes, data: bytes) -> int | None:
        return len(request) if len(data) >= len(request) else None

    def expected_reply(self, request: bytes) -> bytes | None:
        return request

    def judge(self, request: bytes, reply: bytes) -> str | None:
        return None if reply == request else f"{reply!r} instead of {request!r}"

    def exit_reply_ok(self, data: bytes) -> str | None:
        return None if data == b"" else f"{data!r} after the client's EOF"

    def wrap(self, text: bytes) -> bytes:
        return text

    def probe(self) -> bytes:
        return b"m"

    def read_size(self, request: bytes, got: int) -> int:
        return len(request) - got

    def requests(self) -> st.SearchStrategy[bytes]:
        return st.binary(min_size=1, max_size=64).filter(lambda m: not m.startswith(EXIT))
