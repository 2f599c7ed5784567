"""The CONC-5 state machine: several clients doing anything, in any order.

Rules draw their inputs (which client, what bytes) before doing any I/O, and preconditions
depend only on the model (which clients are open), never on what the server said, so the
same seed gives the same scenarios. Each scenario starts from a fresh server in launch mode.
A scenario in which the server dies is rejected as invalid here: a server that dies on a
reset or a signal fails EXIT-3 or EINTR-*, where that rule lives; CONC-5 judges answers.
"""

from __future__ import annotations

import contextlib
import itertools
import string
from collections.abc import Iterator

from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from conformance.harness import Server, Violation
from conformance.harness import scenario as step
from conformance.harness.client import Client
from conformance.harness.target import Target

MAX_CLIENTS = 4
MESSAGES = st.binary(min_size=1, max_size=64).filter(lambda m: not m.startswith(b"exit"))
PICK = st.integers(min_value=0, max_value=MAX_CLIENTS - 1)


def _names() -> Iterator[str]:
    yield from string.ascii_uppercase
    for i in itertools.count(26):
        yield f"C{i}"


def machine_for(target: Target, protocol: str) -> type[RuleBasedStateMachine]:
    class ClientScenarios(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self._context = step.scenario_server(target, protocol)
            self.server: Server = self._context.__enter__()  # ended in teardown()
            self.clients: dict[str, Client] = {}
            self.names = _names()
            self.program: list[str] = []

        def _pick(self, i: int) -> tuple[str, Client]:
            # 0 is the newest client, so the shrinker (which prefers 0) ends on the client
            # just opened and can drop the connects before it.
            order = list(self.clients)
            name = order[-1 - i % len(order)]
            return name, self.clients[name]

        def _do(self, line: str, action) -> None:  # type: ignore[no-untyped-def]
            self.program.append(line)
            try:
                action()
            except Violation as exc:
                if not self.server.alive():
                    reject()
                exc.did = [*self.program[:-1], f"{line}   <- here"]
                exc.evidence.append(
                    "Replay:\n" + step.replay_snippet(target, protocol, self.program)
                )
                raise Violation(
                    exc.expected, exc.actual, exc.did, exc.cause, exc.evidence
                ) from None

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
            self._do(
                f"send(server, {name.lower()}, {data!r})",
                lambda: step.send(self.server, client, data),
            )

        @precondition(lambda self: self.clients)
        @rule(i=PICK)
        def finish(self, i: int) -> None:
            name, client = self._pick(i)
            del self.clients[name]
            self._do(f"finish(server, {name.lower()})", lambda: step.finish(self.server, client))

        @precondition(lambda self: self.clients)
        @rule(i=PICK)
        def close(self, i: int) -> None:
            name, client = self._pick(i)
            del self.clients[name]
            self._do(f"close({name.lower()})", lambda: step.close(client))

        @precondition(lambda self: self.clients)
        @rule(i=PICK)
        def reset(self, i: int) -> None:
            name, client = self._pick(i)
            del self.clients[name]
            self._do(f"reset({name.lower()})", lambda: step.reset(client))

        @rule()
        def signal_burst(self) -> None:
            self._do("signal_burst(server)", lambda: step.signal_burst(self.server))

        def teardown(self) -> None:
            with contextlib.suppress(Exception):
                self._context.__exit__(None, None, None)

    return ClientScenarios
