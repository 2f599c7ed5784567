"""The exclusions file: requirements a user decided not to check, each with a written reason.

Format, one entry per line, `#` starts a comment:

    EINTR-3: our CI forbids ptrace, so strace cannot inject EINTR
    EXIT-5:  the server is stopped by its supervisor with SIGKILL by design

An entry without a reason, or with an unknown ID, is an error: an exclusion nobody can
explain, or one that silently excludes nothing, is worse than none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conformance.errors import UsageError
from conformance.spec import BY_ID


class ExclusionsError(UsageError):
    pass


@dataclass(frozen=True)
class Exclusions:
    entries: dict[str, str]

    @classmethod
    def load(cls, path: Path) -> Exclusions:
        try:
            text = path.read_text()
        except OSError as exc:
            raise ExclusionsError(
                f"cannot read the exclusions file {path}: {exc.strerror}"
            ) from exc
        return cls.parse(text, str(path))

    @classmethod
    def parse(cls, text: str, source: str = "exclusions") -> Exclusions:
        entries: dict[str, str] = {}
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            req_id, sep, reason = line.partition(":")
            req_id, reason = req_id.strip().upper(), reason.strip()
            where = f"{source}:{number}"
            if req_id not in BY_ID:
                raise ExclusionsError(f"{where}: unknown requirement {req_id!r}")
            if not sep or not reason:
                raise ExclusionsError(
                    f"{where}: {req_id} has no reason; write 'ID: why it is excluded'"
                )
            entries[req_id] = reason
        return cls(entries)

    def reason(self, req_id: str) -> str | None:
        return self.entries.get(req_id)
