"""A scenario step's reply deadline counts the server's own time, not the machine's.

The scenario steps (CONC-5's, and ZOMB-1's and FDL-1's scenarios) give every open client
1 s to be answered. On a busy machine a correct server can
spend that second waiting on the run queue; the wait is extended by the time it was kept
from running, and by nothing else: a server asleep elsewhere (a serial server blocked in
another client's recv()) waits for no CPU and gets no more time. These run the judgement on
a stand-in client and server process, so the figures are exact.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest

from conformance.harness.client import Client
from conformance.harness.processes import RunDelays, ServerProcess
from conformance.harness.scenario_steps import (
    MAX_STARVED,
    STARVED,
    _wait_out_starvation,
    descriptors,
)
from tests.servers.scripts import script_server


class SilentClient:
    """Never answered; records how long each wait for a reply was."""

    def __init__(self, answer_after: int | None = None) -> None:
        self.waits: list[float] = []
        self.answer_after = answer_after

    def read_reply(self, request: bytes, timeout: float) -> tuple[bytes, str]:
        self.waits.append(timeout)
        if self.answer_after is not None and len(self.waits) > self.answer_after:
            return b"OK!!!", "ok"
        return b"", "timeout"


class Starved:
    """A server process that has waited `per_look` s more for a CPU at each look."""

    def __init__(self, per_look: float) -> None:
        self.per_look = per_look
        self.looks = 0

    def starved_since(self, before: RunDelays) -> float:
        self.looks += 1
        return self.per_look * self.looks


def _wait(client: SilentClient, proc: Starved) -> tuple[bytes, str, float]:
    return _wait_out_starvation(
        cast(Client, client), b"msg", cast(ServerProcess, proc), RunDelays(0.0)
    )


def test_a_sleeping_server_gets_no_more_time() -> None:
    client = SilentClient()
    assert _wait(client, Starved(0.0)) == (b"", "timeout", 0.0)
    assert client.waits == []


def test_a_starved_server_is_waited_for_as_long_as_it_was_kept_from_running() -> None:
    client = SilentClient(answer_after=1)
    received, status, starved = _wait(client, Starved(0.6))
    assert (received, status) == (b"OK!!!", "ok")
    # 0.6 s owed at the first look; 1.2 - 0.6 at the second, when it answered.
    assert client.waits == pytest.approx([0.6, 0.6])
    assert starved == pytest.approx(1.2)


def test_starvation_below_the_threshold_is_not_waited_out() -> None:
    client = SilentClient()
    assert _wait(client, Starved(STARVED / 2))[2] == 0.0


def test_a_server_starved_for_ever_still_fails_in_bounded_time() -> None:
    client = SilentClient()
    received, status, starved = _wait(client, Starved(10.0))
    assert (received, status) == (b"", "timeout")
    assert sum(client.waits) == pytest.approx(MAX_STARVED)
    assert starved == pytest.approx(MAX_STARVED)


#: Opens two files after it listens, 0.1 s apart (gunicorn's arbiter opens one per worker
#: as each boots), then waits for clients; or waits for them at once. Port argv[1].
LATE_OPENER = """
import socket, sys, time
s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
kept = []
for _ in range(OPENS):
    time.sleep(0.1)
    kept.append(open(sys.executable, "rb"))
s.accept()
"""


@pytest.mark.parametrize("opens", [0, 2])
def test_the_descriptor_baseline_counts_what_a_starting_server_opens(
    tmp_path: Path, opens: int
) -> None:
    """descriptors(): a server that goes on opening files after it listens is counted once
    it has opened them, and one already waiting for clients is counted as it is."""
    with script_server(tmp_path, LATE_OPENER.replace("OPENS", str(opens))) as server:
        assert server.process is not None
        at_start = server.process.fd_count()
        baseline = descriptors(server)
        assert baseline == at_start + opens
