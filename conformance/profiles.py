"""How hard a run tries: every number that changes with `--profile`, in one record each.

The spec's own numbers (64 clients, 200 sessions, 1 s) never change with the profile; what
does is how many generated examples and scenarios the property checks try, how long
hypothesis may spend shrinking a failure to its minimal example, and how many times the
checks repeat what the spec does not count (resets, rounds).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    #: Generated examples per property check (PROTO-1, PROTO-4).
    examples: int
    #: Generated scenarios per scenario check (CONC-5, and ZOMB-1's and FDL-1's scenarios).
    scenarios: int
    #: Steps per generated scenario, at most.
    steps: int
    #: Wall-clock seconds hypothesis may spend shrinking one failure.
    shrink_budget: float
    #: Factor on what the checks repeat that the spec does not count (see `repeats`).
    effort: float
    #: pytest-timeout's backstop per check, in seconds: every check fails on its own
    #: deadlines first; thorough tries forty times the examples, each with a fresh server.
    check_timeout: float = 60.0

    @property
    def fresh_servers(self) -> int:
        """The most servers one check starts: one per generated example or scenario, and its
        own."""
        return max(self.examples, self.scenarios) + 1

    def repeats(self, n: int) -> int:
        """`n` scaled by the profile's effort, never below 2."""
        return max(2, round(n * self.effort))


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("quick", examples=5, scenarios=3, steps=8, shrink_budget=2.0, effort=0.5),
        Profile("default", examples=15, scenarios=8, steps=15, shrink_budget=3.0, effort=1.0),
        Profile(
            "thorough",
            examples=200,
            scenarios=60,
            steps=30,
            shrink_budget=60.0,
            effort=3.0,
            check_timeout=300.0,
        ),
    )
}
NAMES: tuple[str, ...] = tuple(PROFILES)
