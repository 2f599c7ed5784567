"""Children of ended sessions that will not exit on their own, told apart early.

A check that ends sessions waits, up to SETTLE_TIMEOUT, for their children to exit: the next
session then meets the server in the same state every run, and counts taken after it are
not the sessions' leftovers. A child that spins after its session instead of exiting
(EXIT-4's defect) never does, and every such wait ran out: a second each, ten waits a run.

A child on its way out uses little CPU after its session: a C child's exit() microseconds, a
Python child's interpreter finalization some tens of milliseconds. One still alive that has
used SPUN_CPU since it was first looked at runs code of its own, and the wait for it ends.
CPU used, not time passed: on a busy machine a spinning child gets less of a core and takes
longer to be told apart (at worst the wait runs out, as before), and a correct child kept
from a CPU uses none while it waits, so a busy machine never makes it look like a spinner.
"""

from __future__ import annotations

from collections.abc import Iterable

from conformance.harness.processes import process_cpu

#: CPU seconds a child may use after its session while it exits (ten times a Python
#: child's finalization).
SPUN_CPU = 0.2


class SpinWatch:
    """Which of the processes it is shown go on running: each one's CPU time is read when it
    is first shown, and again at every look."""

    def __init__(self) -> None:
        self._first: dict[int, float] = {}

    def spinning(self, pids: Iterable[int]) -> set[int]:
        """Those of `pids` that are alive and used SPUN_CPU since first shown."""
        found = set()
        for pid in pids:
            used = process_cpu(pid)
            if used is None:
                continue
            first = self._first.setdefault(pid, used)
            if used < first:  # a new process under a reused pid
                self._first[pid] = first = used
            if used - first >= SPUN_CPU:
                found.add(pid)
        return found

    def all_spinning(self, pids: Iterable[int]) -> bool:
        """Whether there are `pids` and every one of them spins."""
        pids = set(pids)
        return bool(pids) and self.spinning(pids) == pids
