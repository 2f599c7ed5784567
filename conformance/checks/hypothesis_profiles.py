"""Hypothesis settings per kit profile: reproducible by construction, bounded in time.

The seed is given explicitly, so `--seed N` picks the scenarios and the same seed gives the
same scenarios; `database=None` keeps an example database from making two runs differ;
`deadline=None` because network round trips are not pure functions. Shrinking a failure
against a server costs real seconds per attempt, so it gets a wall-clock budget per profile.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator

from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis.errors import Flaky, Unsatisfiable
from hypothesis.stateful import RuleBasedStateMachine, get_state_machine_test

from conformance.harness.failure import Violation
from conformance.profiles import PROFILES

__all__ = ["Unsatisfiable", "run_given", "run_machine", "without_shrinking"]

#: Whether a failure is shrunk; see `without_shrinking`.
_shrinking = True
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


@contextlib.contextmanager
def without_shrinking() -> Iterator[None]:
    """Report a failure as first found, without shrinking it, inside the block.

    For a check whose failure the plugin reports as blocked by another requirement (the
    server answers one request per connection, and the check sends more): the verdict is the
    same however small the example, the example is not shown, and shrinking it would cost
    seconds, each attempt waiting out a reply deadline against a fresh server.
    """
    global _shrinking
    old, _shrinking = _shrinking, False
    try:
        yield
    finally:
        _shrinking = old


def _settings(profile: str, examples: int, steps: int | None = None) -> settings:
    base = settings(
        phases=tuple(Phase) if _shrinking else NO_SHRINK,
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        print_blob=False,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
    )
    return base if steps is None else settings(base, stateful_step_count=steps)


@contextlib.contextmanager
def _shrink_budget(profile: str) -> Iterator[None]:
    """Bound shrinking by wall-clock time (hypothesis's own limit is 300 s).

    Hypothesis then prints a warning about "five minutes" that would mislead a student; it is
    dropped here, and the minimal example still reaches the report through the exception.
    """
    try:
        from hypothesis.internal.conjecture import engine
        from hypothesis.reporting import current_reporter, with_reporter
    except ImportError:  # pragma: no cover - hypothesis moved it; keep its own limit
        yield
        return
    old = getattr(engine, "MAX_SHRINKING_SECONDS", None)
    # Declared an int by hypothesis; it is compared with seconds, so a float works.
    engine.MAX_SHRINKING_SECONDS = PROFILES[profile].shrink_budget  # type: ignore[assignment]
    outer = current_reporter()

    def report(value: object) -> None:
        if "shrink" not in str(value):
            outer(value)

    try:
        with with_reporter(report):
            yield
    finally:
        if old is not None:
            engine.MAX_SHRINKING_SECONDS = old


#: Added to a server failure that hypothesis saw once and not again when it replayed it.
NOT_AGAIN = (
    "Seen once: the same example passed when it was replayed, so the server behaves "
    "differently from run to run (a race); what it did the first time is above."
)


@contextlib.contextmanager
def _first_failure_wins(failures: list[Violation]) -> Iterator[None]:
    """A failure hypothesis saw once and not on its replay is the server's first failure.

    Hypothesis then raises Flaky (FlakyFailure, or FlakyStrategyDefinition when the replay
    took another path): a summary a student cannot act on. The server did fail, and what it
    did that first time is the evidence, so that is what is raised.
    """
    try:
        yield
    except Flaky:
        if not failures:
            raise  # nothing of the server's: the kit's own error (see failure.is_kit_error)
        first = failures[0]
        first.evidence.append(NOT_AGAIN)
        raise first from None


def run_given(test: Callable[..., None], profile: str, run_seed: int) -> None:
    """Run a @given test with the profile's settings and the run's seed."""
    failures: list[Violation] = []
    # Hypothesis runs every example through `inner_test`, which it documents as replaceable.
    handle = getattr(test, "hypothesis")  # noqa: B009 - set by @given, unknown to type checkers
    inner = handle.inner_test

    @functools.wraps(inner)
    def recorded(*args: object, **kwargs: object) -> None:
        try:
            inner(*args, **kwargs)
        except Violation as exc:
            failures.append(exc)
            raise

    handle.inner_test = recorded
    configured = seed(run_seed)(_settings(profile, PROFILES[profile].examples)(test))
    with _shrink_budget(profile), _first_failure_wins(failures):
        configured()


def run_machine(
    machine: type[RuleBasedStateMachine],
    profile: str,
    run_seed: int,
    failures: list[Violation] | None = None,
) -> None:
    """Run a state machine; `failures` is where the machine records each Violation it
    raises, so a failure seen once and not on replay is reported as itself."""
    s = _settings(profile, PROFILES[profile].scenarios, steps=PROFILES[profile].steps)
    test = seed(run_seed)(get_state_machine_test(machine, settings=s))
    with _shrink_budget(profile), _first_failure_wins(failures if failures is not None else []):
        test()
