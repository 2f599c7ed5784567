"""The CONC-5 state machine: several clients doing anything, in any order.

Rules draw their inputs (which client, what bytes) before doing any I/O, and preconditions
depend only on the model (which clients are open), never on what the server said, so the
same seed gives the same scenarios. Each scenario starts from a fresh server in launch mode.
A scenario in which the server dies is rejected as invalid here: a server that dies on a
reset or a signal fails EXIT-3 or EINTR-*, where that rule lives.

One machine, three judges, so each failure lands in the category of its rule: `answers`
(CONC-5) waits for every reply; `zombies` (ZOMB-1) and `descriptors` (FDL-1) send without
waiting for replies, so a slow or serial server is not judged there, and after every step
check their invariant: no zombie after the grace period; no descriptor kept for an ended
session and no more than one per open session (plus a little slack) in the main process.
"""

from __future__ import annotations

import contextlib
import itertools
import string
from collections.abc import Iterator

import pytest
from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from conformance.checks.hypothesis_profiles import Unsatisfiable, run_machine
from conformance.harness import Server, Violation
from conformance.harness import scenario as step
from conformance.harness.client import Client
from conformance.harness.target import Target
from conformance.plugin import Settings

MAX_CLIENTS = 4
MESSAGES = st.binary(min_size=1, max_size=64).filter(lambda m: not m.startswith(b"exit"))
PICK = st.integers(min_value=0, max_value=MAX_CLIENTS - 1)
JUDGES = ("answers", "zombies", "descriptors")


def _names() -> Iterator[str]:
    yield from string.ascii_uppercase
    for i in itertools.count(26):
        yield f"C{i}"


def machine_for(
    target: Target, protocol: str, judge: str = "answers", cause: str | None = None
) -> type[RuleBasedStateMachine]:
    """The scenario machine for one judge (see the module docstring); `cause` for failures."""
    if judge not in JUDGES:
        raise ValueError(f"unknown judge {judge!r}; one of {JUDGES}")

    class ClientScenarios(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self._context = step.scenario_server(target, protocol)
            self.server: Server = self._context.__enter__()  # ended in teardown()
            self.clients: dict[str, Client] = {}
            self.ended: dict[str, Client] = {}
            self.names = _names()
            self.program: list[str] = []
            self.baseline = 0
            self.signalled = False
            if judge == "descriptors":
                self.program.append("baseline = descriptors(server)")
                self.baseline = step.descriptors(self.server)

        def _end(self, i: int) -> tuple[str, Client]:
            name, client = self._pick(i)
            del self.clients[name]
            self.ended[name] = client
            return name, client

        def _pick(self, i: int) -> tuple[str, Client]:
            # 0 is the newest client, so the shrinker (which prefers 0) ends on the client
            # just opened and can drop the connects before it.
            order = list(self.clients)
            name = order[-1 - i % len(order)]
            return name, self.clients[name]

        def _do(self, line: str, action, record: bool = True) -> None:  # type: ignore[no-untyped-def]
            if record:
                self.program.append(line)
            try:
                action()
            except Violation as exc:
                if not self.server.alive():
                    reject()
                if isinstance(exc, step.SessionClosed) and self.signalled:
                    reject()  # a session a signal ended: EINTR-2's rule (recv EINTR as EOF)
                if not record:
                    self.program.append(line)
                exc.cause = exc.cause or cause
                exc.did = [*self.program[:-1], f"{line}   <- here"]
                exc.evidence.append(
                    "Replay:\n" + step.replay_snippet(target, protocol, self.program)
                )
                raise Violation(
                    exc.expected, exc.actual, exc.did, exc.cause, exc.evidence
                ) from None

        @initialize()
        def two_clients(self) -> None:
            # Every scenario starts with two sessions open: what a server gets wrong about
            # concurrency needs a second client, and the short profiles have few steps.
            self.connect()
            self.connect()

        @precondition(lambda self: len(self.clients) < MAX_CLIENTS)
        @rule()
        def connect(self) -> None:
            name = next(self.names)
            line = f"{name.lower()} = connect(server, {name!r})"
            self._do(line, lambda: self.clients.__setitem__(name, step.connect(self.server, name)))

        @precondition(lambda self: self.clients)
        @rule(i=PICK, data=MESSAGES)
        def send(self, i: int, data: bytes) -> None:
            name, client = self._pick(i)
            if judge == "answers":
                self._do(
                    f"send(server, {name.lower()}, {data!r})",
                    lambda: step.send(self.server, client, data),
                )
            else:
                self._do(
                    f"send_only({name.lower()}, {data!r})", lambda: step.send_only(client, data)
                )

        @precondition(lambda self: self.clients)
        @rule(i=PICK)
        def finish(self, i: int) -> None:
            name, client = self._end(i)
            self._do(f"finish(server, {name.lower()})", lambda: step.finish(self.server, client))

        @precondition(lambda self: self.clients)
        @rule(i=PICK)
        def close(self, i: int) -> None:
            name, client = self._end(i)
            self._do(f"close({name.lower()})", lambda: step.close(client))

        @precondition(lambda self: self.clients)
        @rule(i=PICK)
        def reset(self, i: int) -> None:
            name, client = self._end(i)
            self._do(f"reset({name.lower()})", lambda: step.reset(client))

        @rule()
        def signal_burst(self) -> None:
            self.signalled = True
            self._do("signal_burst(server)", lambda: step.signal_burst(self.server))

        @invariant()
        def resources_settle(self) -> None:
            if judge == "zombies":
                self._do("no_zombies(server)", lambda: step.no_zombies(self.server), False)
            elif judge == "descriptors":
                # Sessions seen released stay released: only the newly ended are looked up.
                ended = [c.local_address for c in self.ended.values()]
                names = ", ".join(f"{n.lower()}.local_address" for n in self.ended)
                self._do(
                    f"descriptors_bounded(server, baseline, {len(self.clients)}, [{names}])",
                    lambda: step.descriptors_bounded(
                        self.server, self.baseline, len(self.clients), ended
                    ),
                    False,
                )
                self.ended.clear()

        def teardown(self) -> None:
            with contextlib.suppress(Exception):
                self._context.__exit__(None, None, None)

    return ClientScenarios


def run_scenarios(
    settings: Settings, profile: str, run_seed: int, judge: str, cause: str | None = None
) -> None:
    """Run the machine for one judge; skip (with the reason) if the server died every time."""
    machine = machine_for(settings.target, settings.protocol, judge=judge, cause=cause)
    try:
        run_machine(machine, profile, run_seed)
    except Unsatisfiable:
        pytest.skip("the server died in every generated scenario; see EXIT-3 and EINTR-*")
