"""A scenario step's reply deadline counts the server's own time, not the machine's.

The scenario steps (CONC-5's, and ZOMB-1's and FDL-1's scenarios) give every open client
1 s to be answered. On a busy machine a correct server can
spend that second waiting on the run queue; the wait is extended by the time it was kept
from running, and by nothing else: a server asleep elsewhere (a serial server blocked in
another client's recv()) waits for no CPU and gets no more time. These run the judgement on
a stand-in client and server process, so the figures are exact.

FDL-1's step judges who holds an ended session's connection; one still in the accept queue
is held by no process until the server takes it, and is judged once it is.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import cast

import pytest

from conformance.harness import scenario_steps
from conformance.harness.client import Client
from conformance.harness.failure import Violation
from conformance.harness.polling import wait_until
from conformance.harness.processes import RunDelays, ServerProcess
from conformance.harness.scenario_steps import (
    MAX_STARVED,
    STARVED,
    _wait_out_starvation,
    descriptors,
    descriptors_bounded,
)
from conformance.harness.server import Server
from conformance.harness.waiting import at_rest
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


#: Takes each connection DELAY s after it arrives (as a server kept from the CPU by a busy
#: machine does), then serves it to EOF and closes it, or (KEEP) keeps it open for good; or
#: (SERIAL) serves only its first client, reading it for good. Port argv[1]. (A connection
#: gone from the queue meanwhile, as the launch's probe is, is not waited for in accept().)
LATE_ACCEPTOR = """
import select, socket, sys, time
s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
s.setblocking(False)
kept = []
while True:
    select.select([s], [], [])
    time.sleep(DELAY)
    try:
        conn, _ = s.accept()
    except BlockingIOError:
        continue
    conn.setblocking(True)
    if SERIAL:
        while True:
            conn.recv(1024)
    if KEEP:
        kept.append(conn)
        continue
    while conn.recv(1024):
        pass
    conn.close()
"""


def _acceptor(delay: float, keep: bool = False, serial: bool = False) -> str:
    source = LATE_ACCEPTOR.replace("DELAY", str(delay)).replace("SERIAL", str(serial))
    return source.replace("KEEP", str(keep))


def _connect_at_rest(server: Server, name: str) -> Client:
    """Connect once the server waits in select() (not in a delay an earlier connection, the
    launch's probe, began): it then takes this one DELAY s after it arrives. (The protocol
    adapter, imported on a client's first connect, is imported before: that may take longer
    than DELAY.)"""
    assert server.process is not None
    assert server.adapter is not None
    assert wait_until(lambda: at_rest(server.process.tree_pids(), server.port), 10)[0]
    return scenario_steps.connect(server, name)


def test_a_connection_not_yet_accepted_is_judged_once_taken(tmp_path: Path) -> None:
    """A connection the server takes late is no process's while it waits in the accept
    queue: judged then, a server that keeps every connection it takes passed."""
    with script_server(tmp_path, _acceptor(0.3, keep=True)) as server:
        baseline = descriptors(server)
        client = _connect_at_rest(server, "G")
        client.close()
        with pytest.raises(
            Violation, match=r"1 connection\(s\) of ended sessions still open"
        ) as err:
            descriptors_bounded(server, baseline, 0, [client.local_address])
        # Where the holder is, for the student: back in its select(), not closing it.
        assert "Holder:   pid " in str(err.value), str(err.value)
        assert "select" in str(err.value), str(err.value)


def test_a_connection_taken_late_and_closed_passes(tmp_path: Path) -> None:
    with script_server(tmp_path, _acceptor(0.3)) as server:
        baseline = descriptors(server)
        client = _connect_at_rest(server, "G")
        client.close()
        descriptors_bounded(server, baseline, 0, [client.local_address])


def test_a_queued_connection_is_not_waited_for_while_the_server_takes_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A serial server reading another client takes no connection while that session lasts:
    the ended one in its queue is nothing of it to judge, and is not waited for (with a grace
    of a minute, on any machine)."""
    monkeypatch.setattr(scenario_steps, "SETTLE_TIMEOUT", 60.0)
    with script_server(tmp_path, _acceptor(0.0, serial=True)) as server:
        baseline = descriptors(server)
        scenario_steps.connect(server, "A")
        client = scenario_steps.connect(server, "G")
        client.close()
        started = time.monotonic()
        descriptors_bounded(server, baseline, 1, [client.local_address])
        assert time.monotonic() - started < 30
