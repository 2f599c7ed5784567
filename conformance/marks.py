"""`@requirement("ID")`: ties a check to its requirement in the spec registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest

from conformance.spec import BY_ID

F = TypeVar("F", bound=Callable[..., object])


def requirement(req_id: str) -> Callable[[F], F]:
    """Mark a check as the check of `req_id`; an unknown ID fails at import, loudly."""
    if req_id not in BY_ID:
        raise ValueError(f"@requirement({req_id!r}): no such requirement in conformance/spec.py")
    return pytest.mark.requirement(req_id)


# pytest.skip.Exception is pytest's public name for its Skipped class, but an attribute of a
# function as far as a type checker knows: hence the two ignores below.
class NotApplicable(pytest.skip.Exception):  # type: ignore[name-defined]
    """The requirement does not apply to this server (its model or protocol profile)."""


class Blocked(pytest.skip.Exception):  # type: ignore[name-defined]
    """The requirement could not be judged: another requirement's failure stopped its check.

    A check fails only on evidence of its own requirement. When the sessions it needs cannot
    even run (the server never answers, drops a session on a signal, dies), the failure
    belongs to the requirement that forbids that (`by`), and this one is reported as
    blocked by it, with what happened.
    """

    def __init__(self, by: str, reason: str) -> None:
        super().__init__(msg=f"blocked by {by}: {reason}")
        self.by = by
        #: Set when the server died during the check and its death named `by` (deaths.py).
        self.by_death = False
