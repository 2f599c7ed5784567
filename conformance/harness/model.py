"""Model detection: how does this server serve its connections?

We open a few sessions and look at who holds the server end of each connection:
- a child process that did not exist before the connection: `fork` (fork per connection);
- a child that existed before: `prefork` (workers that legitimately hold the listener);
- the server process itself, with one more thread per connection: `thread`;
- the server process itself, without new threads: `event-loop` (multiplexing, or a pool).
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
    before = {p.pid for p in proc.descendants()}
    threads_before = proc.thread_count()
    clients: list[Client] = []
    try:
        for _ in range(PROBE_CLIENTS):
            client = server.connect()
            clients.append(client)
            client.sock.sendall(b"model probe" if server.protocol == "ok" else b"m")
        for client in clients:
            client.recv_some(REPLY_TIMEOUT)

        def holders() -> list[int]:
            pids = [proc.pid, *(p.pid for p in proc.descendants())]
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
    others = [pid for pid in pids if pid != proc.pid]
    if others:
        return "prefork" if all(pid in before for pid in others) else "fork"
    if threads_during >= threads_before + PROBE_CLIENTS - 1:
        return "thread"
    return "event-loop"
