"""fd-parent: what the parent must not keep after fork (FDP-*). Fork-per-connection only."""

from __future__ import annotations

from conformance.harness import Server, fail, wait_until
from conformance.harness.processes import holders_of_connection
from conformance.harness.sessions import close_watch, open_session, require_process
from conformance.harness.timeouts import SETTLE_TIMEOUT
from conformance.marks import requirement


@requirement("FDP-1")
def test_parent_closes_connected_socket(server: Server) -> None:
    """The child holds the connection; the parent must not hold the same socket (by inode)."""
    proc = require_process(server, "FDP-1")
    client = server.connect()
    open_session(server, client, server.adapter.request(0))

    def parent_copies() -> list:
        children = proc.tree_pids()[1:]
        in_child = holders_of_connection(children, client.local_address, server.port)
        inodes = {s.inode for s in in_child}
        in_parent = holders_of_connection([proc.pid], client.local_address, server.port)
        return [s for s in in_parent if not inodes or s.inode in inodes]

    # The parent closes right after fork(); give it the grace period, judge the last look,
    # unless it cannot close it now (back in accept(): waiting.cannot_close).
    stuck = close_watch(server, client, only=[proc.pid])
    wait_until(lambda: not parent_copies() or stuck(), SETTLE_TIMEOUT)
    copies = parent_copies()
    if copies:
        s = copies[0]
        if stuck.evidence:
            when = "and could not close it (see below)"
        else:
            when = f"after {SETTLE_TIMEOUT:.1f} s"
        fail(
            "the parent holds no copy of the connection it handed to a child",
            f"the parent (pid {proc.pid}) still holds it {when}: fd "
            f"{s.fd}, socket inode {s.inode}, {s.laddr} <-> {s.raddr}",
            did=server.transcript.tail(),
            evidence=[stuck.evidence] if stuck.evidence else [],
            cause="close(connfd) in the parent right after fork(): while the parent holds "
            "it, the client never sees EOF and the parent leaks a descriptor per client",
        )
