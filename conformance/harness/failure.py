"""How a check says a server broke a rule: did / expected / actual / likely cause.

A check raises `Violation` through `fail()`. The plugin prefixes the requirement's ID, level
and text from the spec registry, so the message a student reads is complete:

    [CONC-1 MUST] A connected client that sends nothing does not delay another client: ...
      Did:      opened client A (silent); opened client B; sent b'ping' on B
      Expected: a reply on B within 1.0 s
      Actual:   nothing after 1.0 s
      Likely cause: the server serves one connection at a time; ...
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The line the plugin writes when the server under test has died earlier in address mode.
SERVER_GONE = "the server is no longer running (it died during {check})"


@dataclass
class Violation(AssertionError):
    """A requirement broken by the server, with the evidence (never a bug of the kit)."""

    expected: str
    actual: str
    did: list[str] = field(default_factory=list)
    cause: str | None = None
    evidence: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.expected)

    def render(self) -> str:
        lines = []
        if self.did:
            lines.append("  Did:      " + self.did[0])
            lines += ["            " + step for step in self.did[1:]]
        lines.append("  Expected: " + self.expected)
        lines.append("  Actual:   " + self.actual)
        lines += ["  " + line for line in self.evidence]
        if self.cause:
            lines.append("  Likely cause: " + self.cause)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def fail(
    expected: str,
    actual: str,
    *,
    did: list[str] | None = None,
    cause: str | None = None,
    evidence: list[str] | None = None,
) -> None:
    """Raise a Violation; the traceback stops at the check that called it."""
    __tracebackhide__ = True
    raise Violation(expected, actual, list(did or []), cause, list(evidence or []))


def show(data: bytes, limit: int = 60) -> str:
    """bytes as a student can read them: repr, shortened in the middle, with the length."""
    if len(data) <= limit:
        return repr(data)
    head, tail = data[: limit // 2], data[-limit // 4 :]
    return f"{head!r}...{tail!r} ({len(data)} bytes)"
