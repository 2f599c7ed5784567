"""The kit's error classes that every entry point maps to an exit status.

`UsageError` is anything the user gave that cannot work (an option, a file, a config, a
target): every entry point (`conformance run`, `bench`, `grade`, the pytest plugin) reports
it as one line and exits with USAGE_EXIT, before any check. The failures of a server are
not errors of the kit: those are `Violation`s (harness/failure.py), and the kit's own bugs
are `KitError`s (exit status KIT_ERROR_EXIT when no requirement failed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Exit statuses, for every entry point (the README's table).
OK_EXIT = 0
FAILED_EXIT = 1
USAGE_EXIT = 2
KIT_ERROR_EXIT = 3
INTERRUPTED_EXIT = 130
#: What each status means, in the words every command's --help and the README use.
EXIT_STATUSES = (
    (OK_EXIT, "every MUST passed"),
    (FAILED_EXIT, "a requirement failed"),
    (USAGE_EXIT, "usage error, or the kit could not run (no server, port in use, bad input)"),
    (KIT_ERROR_EXIT, "the kit failed on a requirement (kit-error) and none failed"),
    (INTERRUPTED_EXIT, "interrupted"),
)


class UsageError(ValueError):
    """What the user asked for cannot work; str() says why and how to fix it."""


@dataclass(frozen=True)
class Refusal:
    """Why the kit could not run at all, as a record: the JSON report carries it (`refusal`),
    the terminal shows `text()` once, and each front end phrases its own fix from `kind`
    (the grader reads the record, never the log).

    kind: "usage" (an option, a file, a config), "no-server" (checks collected without a
    server), "unreachable" (nothing listens at --target), "stopped-answering" (the server
    broke before any check), or the launcher's reason (`LaunchError.kind`: "never-listened",
    "exited", "port-in-use", "bad-command", ...).
    """

    kind: str
    #: What happened, in the harness's terms (no option names).
    message: str
    #: What to do about it, in `conformance run`'s terms ("" when the message says it all).
    fix: str = ""
    #: never-listened: the ports the server listens on instead.
    elsewhere: tuple[int, ...] = field(default=())

    def text(self) -> str:
        """The message with the fix after its first line (the rest is the evidence: the
        command, the server's last words)."""
        if not self.fix:
            return self.message
        first, sep, rest = self.message.partition("\n")
        joiner = " " if first.endswith((".", "?")) else "; "
        return f"{first}{joiner}{self.fix}{sep}{rest}"

    def record(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "message": self.message,
            "fix": self.fix,
            "elsewhere": list(self.elsewhere),
        }
