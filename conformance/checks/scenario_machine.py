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

from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from conformance import protocols
from conformance.checks.hypothesis_profiles import Unsatisfiable, run_machine
from conformance.harness import Server, Violation
from conformance.harness import scenario_steps as step
from conformance.harness.client import Client
from conformance.harness.server import THREADED, Target
from conformance.harness.sessions import dies_of_it, quiesce
from conformance.harness.waiting import shared_reads
from conformance.marks import Blocked
from conformance.settings import Settings

MAX_CLIENTS = 4
PICK = st.integers(min_value=0, max_value=MAX_CLIENTS - 1)
JUDGES = ("answers", "zombies", "descriptors")


def _names() -> Iterator[str]:
    yield from string.ascii_uppercase
    for i in itertools.count(26):
        yield f"C{i}"


#: Why a scenario was rejected, and the requirement that owns that behaviour.
DIED_ON_SIGNAL = "EINTR-2"
DROPPED_ON_SIGNAL = "EINTR-2"
DIED = "EXIT-3"
SHARED_DESCRIPTOR = "CONC-5"


def _shared_descriptor(server: Server) -> bool:
    """Several threads read one connection while another is read by none (waiting.py)."""
    proc = server.process
    return proc is not None and shared_reads(proc.tree_pids(), server.port) is not None


def machine_for(
    target: Target,
    protocol: str,
    judge: str = "answers",
    cause: str | None = None,
    rejected: list[str] | None = None,
    failures: list[Violation] | None = None,
    one_reply: bool = False,
    model: str = "unknown",
) -> type[RuleBasedStateMachine]:
    """The scenario machine for one judge (see the module docstring); `cause` for failures.

    `rejected` collects, per rejected scenario, the requirement whose rule the server broke
    there (it died on a reset, or dropped a session on a signal), for the blocked verdict.
    With `one_reply` (the server closes after each reply, as its protocol lets it), a
    client's first answered message is its session's last: the `answers` judge ends the
    client there, as the server does, and draws nothing more for it (a run-wide fact, so
    still the model's).
    """
    if judge not in JUDGES:
        raise ValueError(f"unknown judge {judge!r}; one of {JUDGES}")
    reasons = rejected if rejected is not None else []
    seen = failures if failures is not None else []
    #: Requests come from the protocol's adapter, and shrink as its strategy does.
    adapter = protocols.get(protocol)
    messages = adapter.requests()

    class ClientScenarios(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self._context = step.scenario_server(target, protocol, model)
            self.server: Server = self._context.__enter__()  # ended in teardown()
            self.clients: dict[str, Client] = {}
            self.ended: dict[str, Client] = {}
            self.names = _names()
            self.program: list[str] = []
            self.baseline = 0
            self.signalled = False
            self.resets = False
            #: Threads were seen reading one connection while another had none (see below).
            self.shared = False
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

        def _do(self, line: str, action, record: bool = True) -> None:
            if record:
                self.program.append(line)
            try:
                action()
            except Violation as exc:
                # A server that dies of what this step did dies a moment after it: wait for
                # that, so whether the scenario counts does not depend on the scheduler.
                if dies_of_it(self.server):
                    # Its death is the evidence of EXIT-3 (reset) or EINTR-2 (signals).
                    reasons.append(DIED_ON_SIGNAL if self.signalled and not self.resets else DIED)
                    reject()
                if judge != "answers" and (self.shared or _shared_descriptor(self.server)):
                    # What is left behind is the work of threads that serve the wrong
                    # connection (CONC-5's failure), whether the race struck this time.
                    reasons.append(SHARED_DESCRIPTOR)
                    reject()
                if record and judge != "answers":
                    # Not this judge's evidence (a session the server dropped, a connect it
                    # refused): the scenario goes on, and the invariant still judges what
                    # the server keeps. The client stays in the model, so what is drawn next
                    # never depends on what the server did.
                    self.program[-1] += f"   # failed: {exc.actual}"
                    return
                if isinstance(exc, step.SessionClosed) and self.signalled:
                    reasons.append(DROPPED_ON_SIGNAL)
                    reject()  # a session a signal ended: EINTR-2's rule (recv EINTR as EOF)
                if not record:
                    self.program.append(line)
                exc.cause = exc.cause or cause
                exc.did = [*self.program[:-1], f"{line}   <- here"]
                exc.evidence.append(
                    "Replay:\n" + step.replay_snippet(target, protocol, self.program, model)
                )
                # A launched example's server is stopped in teardown(), before the verdict's
                # stacks are read: its threads have none to show (see scenario_server).
                threads = exc.threads if self.server.launched is None else []
                failure = Violation(
                    exc.expected, exc.actual, exc.did, exc.cause, exc.evidence, threads
                )
                seen.append(failure)
                raise failure from None

        @initialize()
        def two_clients(self) -> None:
            # Every scenario starts with two sessions open and a message on the newer one
            # while the older waits: what a server gets wrong about concurrency needs that,
            # and a scenario that reaches it only by chance would make a serial server's
            # verdict depend on the examples drawn. Here every scenario forces it.
            # The two connect together (Server.connect_together), so a thread server that
            # hands the connection to its thread through a shared variable gives both
            # threads the newer one every run; the older client's message then finds it.
            names = [next(self.names), next(self.names)]
            for name in names:
                self.clients[name] = step.unconnected(self.server, name)

            def together() -> None:
                for name, client in zip(names, step.connect_together(self.server, *names)):
                    self.clients[name] = client

            args = ", ".join(repr(n) for n in names)
            self._do(
                f"{', '.join(n.lower() for n in names)} = connect_together(server, {args})",
                together,
            )
            self._look_for_shared_descriptor()
            self.send(0, adapter.wrap(b"second client first"))
            self.send(1, adapter.wrap(b"then the first"))

        def _look_for_shared_descriptor(self) -> None:
            """Judges of what is left behind: note threads that serve another thread's
            connection (the race happens at connect; its leftovers show much later, after
            the threads have gone, and are CONC-5's evidence, not these judges')."""
            if judge != "answers" and not self.shared and model in THREADED:
                quiesce(self.server)
                self.shared = _shared_descriptor(self.server)

        @precondition(lambda self: len(self.clients) < MAX_CLIENTS)
        @rule()
        def connect(self) -> None:
            name = next(self.names)
            line = f"{name.lower()} = connect(server, {name!r})"
            # A client whose connect failed is still in the model (see `_do`), as one that
            # never connected: what is drawn next must not depend on what the server did.
            self.clients[name] = step.unconnected(self.server, name)
            self._do(line, lambda: self.clients.__setitem__(name, step.connect(self.server, name)))
            self._look_for_shared_descriptor()

        @precondition(lambda self: self.clients)
        @rule(i=PICK, data=messages)
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
            if one_reply and judge == "answers":
                # Its reply ends the session: the server closes, and so does the client, as
                # RFC 9112 section 9.6 asks (a server may linger until it does: gunicorn).
                # The other judges do not wait for replies, so for them the client stays
                # open until the model ends it: a session is not over before its answer.
                self._end(i)
                self._do(f"close({name.lower()})", lambda: step.close(client))

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
            self.resets = True
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


#: What a blocked scenario check says, by the requirement that blocked it.
BLOCKED_REASON = {
    "EXIT-3": "the server died in every generated scenario (it did not survive the clients' "
    "resets and closes), so no scenario ran to the end",
    "CONC-5": "in every generated scenario threads of the server read the same connection "
    "while another was read by none (see CONC-5), so what they left open says nothing of "
    "this rule",
    "EINTR-2": "in every generated scenario the server died or dropped a session when it got "
    "signals, so no scenario ran to the end",
}


def run_scenarios(
    settings: Settings,
    profile: str,
    run_seed: int,
    judge: str,
    cause: str | None = None,
    one_reply: str | None = None,
    model: str = "unknown",
) -> None:
    """Run the machine for one judge; blocked (by the rule the server broke) when no
    scenario could run to the end. `one_reply`: the server closes after each reply, as its
    protocol lets it (Server.one_reply), so a client's session is its one request. `model`:
    the server's, as detected (a thread server's scenarios look for a shared descriptor)."""
    rejected: list[str] = []
    failures: list[Violation] = []
    machine = machine_for(
        settings.target,
        settings.protocol,
        judge=judge,
        cause=cause,
        rejected=rejected,
        failures=failures,
        model=model,
        one_reply=one_reply is not None,
    )
    try:
        run_machine(machine, profile, run_seed, failures)
    except Unsatisfiable:
        by = max(set(rejected), key=rejected.count) if rejected else DIED
        raise Blocked(by, BLOCKED_REASON[by]) from None
    except Flaky:
        # A server that dies a moment after a step (a child's exit interrupts its accept())
        # dies at another step when hypothesis replays the scenario, which rejects it
        # earlier or later: hypothesis calls that flaky data generation. The scenarios were
        # rejected for the death, whichever step it met: blocked by the death's rule, as
        # when none could run. Without a death it is the kit's own error.
        deaths = [r for r in rejected if r in (DIED, DIED_ON_SIGNAL)]
        if failures or not deaths:
            raise
        by = max(set(deaths), key=deaths.count)
        raise Blocked(by, BLOCKED_REASON[by]) from None
