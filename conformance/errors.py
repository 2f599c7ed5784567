"""The kit's error classes that every entry point maps to an exit status.

`UsageError` is anything the user gave that cannot work (an option, a file, a config, a
target): every entry point (`conformance run`, `bench`, `grade`, the pytest plugin) reports
it as one line and exits with USAGE_EXIT, before any check. The failures of a server are
not errors of the kit: those are `Violation`s (harness/failure.py), and the kit's own bugs
are `KitError`s (exit status KIT_ERROR_EXIT when no requirement failed).
"""

from __future__ import annotations

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
