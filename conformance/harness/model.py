"""Model detection: how does this server serve its connections?

We open a few sessions and look at who holds the server end of each connection:
- a child process that did not exist before the connection: `fork` (fork per connection);
- a child that existed before: `prefork` (workers that legitimately hold the listener). A
  prefork server may still be starting workers when we first look, so a second round of
  sessions decides: only a fork server serves it with children that are new again;
- the server process itself, with one more thread per connection: `thread`;
- the server process itself, without new threads: `event-loop` (multiplexing, or a pool). A
  pool may also be started after the server listens; its threads, unlike a thread per
  connection, outlive the sessions, and a second round of sessions adds none.
Without a visible process (address mode, another user's server) the model is `unknown`, and
so it is when the server dies while we look (the checks then report the death, with its cause).
"""

from __future__ import annotations

import contextlib

from conformance.harness.client import Client
from conformance.harness.polling import wait_until
from conformance.harness.processes import GONE, holders_of_connection
from conformance.harness.target import Server
from conformance.harness.timeouts import REPLY_TIMEOUT, SETTLE_TIMEOUT

PROBE_CLIENTS = 4


def detect_model(server: Server) -> str:
    try:
        return _detect(server)
    except GONE:
        return "unknown"


def _detect(server: Server) -> str:
    if server.process is None:
        return "unknown"
    proc = server.process
    threads_before = proc.thread_count()
    pids, threads_during = _probe(server)
    # Children that serve the probes and did not exist before them mean fork per connection,
    # unless they are prefork workers the server was still starting when we looked. So look
    # again: a fork server makes new children for the second round too, while a prefork
    # server, whose workers all exist by now, serves it with children seen already.
    if any(pid != proc.pid for pid in pids):
        before = set(proc.tree_pids()[1:])
        try:
            pids, _ = _probe(server)
        except Exception:
            pids = []
        others = [pid for pid in pids if pid != proc.pid]
        if not others:  # it died after the first round: decide on that round alone
            return "fork"
        return "prefork" if all(pid in before for pid in others) else "fork"
    if threads_during < threads_before + PROBE_CLIENTS - 1:
        return "event-loop"
    # One more thread per probe: thread per connection, unless it is a pool the server was
    # still starting when we looked (the K=20 run and CI each saw the pool reference do so).
    # A thread per connection ends with its session; a pool stays.
    ended, _ = wait_until(
        lambda: proc.thread_count() <= threads_during - (PROBE_CLIENTS - 1), SETTLE_TIMEOUT
    )
    if ended:
        return "thread"
    # The threads stayed: a late pool, or a thread server that leaks them. A second round
    # tells: only a thread per connection grows again.
    settled = proc.thread_count()
    try:
        _, threads_during = _probe(server)
    except GONE:
        raise
    except Exception:
        return "thread"
    return "thread" if threads_during >= settled + PROBE_CLIENTS - 1 else "event-loop"


def _probe(server: Server) -> tuple[list[int], int]:
    """PROBE_CLIENTS sessions at once: the pids holding their server ends, and the thread
    count while they were open."""
    assert server.process is not None
    proc = server.process
    clients: list[Client] = []
    try:
        for _ in range(PROBE_CLIENTS):
            client = server.connect()
            clients.append(client)
            client.sock.sendall(b"model probe" if server.protocol == "ok" else b"m")
        for client in clients:
            client.recv_some(REPLY_TIMEOUT)

        def holders() -> list[int]:
            pids = proc.tree_pids()
            found = []
            for client in clients:
                found += [
                    s.pid for s in holders_of_connection(pids, client.local_address, server.port)
                ]
            return found

        _, pids = wait_until(holders, SETTLE_TIMEOUT)
        threads_during = proc.thread_count()
    finally:
        for client in clients:
            with contextlib.suppress(OSError):
                if server.protocol == "ok":
                    client.sock.sendall(b"exit")
                client.close()
        server.clients.clear()
    return pids, threads_during
