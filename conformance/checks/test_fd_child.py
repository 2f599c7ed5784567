"""fd-child: what a forked child must not keep (FDC-*). Fork-per-connection servers only."""

from __future__ import annotations

from conformance.harness import Server, fail, wait_until
from conformance.harness.processes import holders_of_connection, listeners_of
from conformance.harness.sessions import open_session, require_process
from conformance.harness.timeouts import SETTLE_TIMEOUT
from conformance.marks import requirement


@requirement("FDC-1")
def test_child_closes_listening_socket(server: Server) -> None:
    """Find the child serving our connection; it must hold no LISTEN socket on the port."""
    proc = require_process(server, "FDC-1")
    client = server.connect()
    open_session(server, client, server.adapter.request(0))

    def serving_children() -> list[int]:
        pids = proc.tree_pids()[1:]
        return [s.pid for s in holders_of_connection(pids, client.local_address, server.port)]

    found, children = wait_until(serving_children, SETTLE_TIMEOUT)
    if not found:
        fail(
            "a child process holding the connection (this server forks per connection)",
            "no child holds it",
            did=server.transcript.tail(),
        )
    for pid in children:
        held = listeners_of(pid, server.port)
        if held:
            fail(
                "the child serving the connection holds no listening socket",
                f"child pid {pid} holds the listening socket on port {server.port} "
                f"(fd {held[0].fd}, inode {held[0].inode})",
                did=server.transcript.tail(),
                cause="after fork(), the child inherits every descriptor of the parent: close "
                "the listening socket first thing in the child (close(listenfd))",
            )
