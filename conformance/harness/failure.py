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

import builtins
from dataclasses import dataclass, field
from typing import NoReturn

from conformance.harness.callsites import ListenRef
from conformance.harness.stacks import ThreadRef

# The ignores: mypy checks for the newest Python, where the first always exists and the
# second never runs.
try:
    _GROUP: type[BaseException] = builtins.BaseExceptionGroup  # type: ignore[attr-defined]
except AttributeError:  # Python 3.10: hypothesis depends on the backport
    from exceptiongroup import BaseExceptionGroup as _GROUP  # type: ignore[no-redef]

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
    #: Threads of the server the evidence names (pid, tid, what it says of them): the plugin
    #: adds their stacks once the verdict is in (stacks.py), never the check itself.
    threads: list[ThreadRef] = field(default_factory=list)
    #: A launched server whose listen() call the plugin looks for once the verdict is in
    #: (callsites.py: CONC-3's backlog, which no stack shows).
    listen: ListenRef | None = None

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


class CannotJudge(Exception):
    """The check cannot judge its requirement here, for a reason that is not the server's
    fault (its process is not visible from here, a count cannot settle): the plugin reports
    the requirement as skipped with this reason. The harness knows nothing of pytest."""


class KitError(Exception):
    """The kit itself failed (never the server): reported as `kit-error`, exit status 3."""


#: What a requirement's detail says when the kit, not the server, failed while checking it.
KIT_ERROR = (
    "  The kit itself failed while checking this requirement, so it says nothing about your "
    "server:\n    {error}\n  Please report it with this output (exit status 3)."
)


def unwrap_flaky(exc: BaseException) -> BaseException:
    """The first failure inside a hypothesis Flaky* report, which is the server's evidence.

    When a generated example failed and its replay passed, the server did fail once: the
    first failure (with its Did/Expected/Actual) is what happened, and hypothesis's summary
    ("Failed on the first call but did not on a subsequent one") tells a student nothing.
    """
    if type(exc).__name__ == "_WrappedBaseException" and exc.__cause__ is not None:
        # Hypothesis wraps a BaseException raised in an example (pytest-timeout's "Timeout").
        return unwrap_flaky(exc.__cause__)
    for _ in range(10):  # groups nest; a bound, not a loop that could run for ever
        inner: tuple[BaseException, ...] = getattr(exc, "exceptions", ())
        if not isinstance(exc, _GROUP) or not inner:
            break
        violations = [e for e in inner if isinstance(e, Violation)]
        exc = violations[0] if violations else inner[0]
    return exc


def is_kit_error(exc: BaseException) -> bool:
    """True for an exception that is a bug or limit of the kit, not evidence about the server.

    Violations (and plain assertions) are the server's; an OSError comes from talking to the
    server. Anything else (a hypothesis health or flakiness error with no failure of the
    server inside, a TypeError, ...) is the kit's own.
    """
    if isinstance(exc, (AssertionError, OSError)):
        return False
    name = type(exc).__name__
    module = type(exc).__module__
    if module.startswith(("_pytest", "pytest")) or name in ("Failed", "Skipped", "Exit"):
        return False
    return isinstance(exc, Exception)


def fail(
    expected: str,
    actual: str,
    *,
    did: list[str] | None = None,
    cause: str | None = None,
    evidence: list[str] | None = None,
    threads: list[ThreadRef] | None = None,
    listen: ListenRef | None = None,
) -> NoReturn:
    """Raise a Violation; the traceback stops at the check that called it. `threads`: the
    server's threads the evidence names (where it waits or spins), whose stacks the report
    shows; `listen`: the server whose listen() call the report shows."""
    __tracebackhide__ = True
    raise Violation(
        expected, actual, list(did or []), cause, list(evidence or []), list(threads or []),
        listen,
    )  # fmt: skip


def show(data: bytes, limit: int = 60) -> str:
    """bytes as a student can read them: repr, shortened in the middle, with the length."""
    if len(data) <= limit:
        return repr(data)
    head, tail = data[: limit // 2], data[-limit // 4 :]
    return f"{head!r}...{tail!r} ({len(data)} bytes)"
