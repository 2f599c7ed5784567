"""sock_diag: who holds a connection, and a listener's accept queue."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import ROOT

PY_SERVERS = ROOT / "tests" / "servers" / "py"


@pytest.mark.parametrize("family, host", [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def test_sock_diag_and_psutil_agree_on_who_holds_a_connection(
    monkeypatch: pytest.MonkeyPatch, family: socket.AddressFamily, host: str
) -> None:
    """The netlink lookup (harness/sockdiag.py) and psutil's /proc/net parse, its fallback
    where netlink is not allowed, must find the same holders and listeners."""
    import os

    from conformance.harness import processes

    with socket.create_server((host, 0), family=family) as listener:
        port = listener.getsockname()[1]
        with socket.create_connection((host, port), timeout=5) as client:
            served, _ = listener.accept()
            with served:
                pid, addr, served_fd = os.getpid(), client.getsockname()[:2], served.fileno()
                fast = processes.holders_of_connection([pid], addr, port)
                owner = processes.listener_owner(port, [pid])
                monkeypatch.setattr(processes, "tcp_sockets", lambda *a, **k: None)
                monkeypatch.setattr(processes, "listening_inodes", lambda *a, **k: None)
                slow = processes.holders_of_connection([pid], addr, port)
                assert processes.listener_owner(port, [pid]) == owner == pid
    assert [(h.pid, h.fd, h.inode, h.status) for h in fast] == [
        (h.pid, h.fd, h.inode, h.status) for h in slow
    ]
    assert [(h.fd, h.raddr) for h in fast] == [(served_fd, addr)]


def test_accept_queue_counts_connections_not_yet_accepted() -> None:
    """EXIT-3 waits until the server has accepted every reset connection; sock_diag's count
    of a listener's queue must see them there, and see them go."""
    from conformance.harness.polling import wait_until
    from conformance.harness.sockdiag import accept_queue

    with socket.create_server(("127.0.0.1", 0), backlog=8) as listener:
        port = listener.getsockname()[1]
        assert accept_queue(port) == 0
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
        try:
            assert wait_until(lambda: accept_queue(port) == 3, 5)[0]
            listener.accept()[0].close()
            assert accept_queue(port) == 2
        finally:
            for c in clients:
                c.close()


@pytest.mark.parametrize("backlog", [5, 128])
def test_listen_backlog_is_what_the_server_asked_for(backlog: int) -> None:
    """CONC-2 and CONC-3 name a small backlog as the cause only when it is measured."""
    from conformance.harness.sockdiag import listen_backlog

    with socket.create_server(("127.0.0.1", 0), backlog=backlog) as listener:
        assert listen_backlog(listener.getsockname()[1]) == backlog
