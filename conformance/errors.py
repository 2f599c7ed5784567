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


class UsageError(ValueError):
    """What the user asked for cannot work; str() says why and how to fix it."""
