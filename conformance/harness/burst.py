"""Connection bursts: many non-blocking connects at once, timed one by one.

The kernel completes TCP handshakes by itself and parks the connections in the accept queue,
whose length is the listen() backlog, until the server calls accept(). When the queue is full,
Linux drops the SYN and the client retransmits it after 1 s: the delay this measures. A fast
accept loop on another core can hide a small backlog some of the time, so, when the kit may
(a server it launched), the server is paused with SIGSTOP while the SYNs arrive: the verdict
then depends on the backlog alone, the same every run.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

from conformance.harness.address import family_of
from conformance.harness.client import close_socket


@dataclass
class Burst:
    connect_times: list[float] = field(default_factory=list)
    failed: int = 0
    #: The connections, left open: the check closes them once it is over (`close`).
    sockets: list[socket.socket] = field(default_factory=list)

    def close(self) -> None:
        for sock in self.sockets:
            close_socket(sock)
        self.sockets.clear()


@contextlib.contextmanager
def paused(pids: list[int]) -> Iterator[None]:
    """SIGSTOP the processes for the duration of the block; SIGCONT them whatever happens."""
    stopped = []
    try:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
        yield
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGCONT)


def connect_burst(
    host: str,
    port: int,
    count: int,
    timeout: float,
    pause: list[int] | None = None,
    pause_for: float = 0.2,
) -> Burst:
    """`count` connects back to back; with `pause`, those pids are stopped for `pause_for` s
    from before the first SYN (long enough for every handshake that fits the queue)."""
    family = family_of(host)
    sel = selectors.DefaultSelector()
    socks: list[socket.socket] = []
    burst = Burst()
    stack = contextlib.ExitStack()
    if pause:
        stack.enter_context(paused(pause))
    t0 = time.monotonic()
    try:
        for _ in range(count):
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setblocking(False)
            socks.append(s)
            code = s.connect_ex((host, port))
            if code == 0:
                burst.connect_times.append(time.monotonic() - t0)
            elif code == errno.EINPROGRESS:
                sel.register(s, selectors.EVENT_WRITE)
            else:
                burst.failed += 1
        deadline = t0 + timeout
        resume_at = t0 + pause_for
        while sel.get_map() and time.monotonic() < deadline:
            if pause and time.monotonic() >= resume_at:
                stack.close()
            wake = resume_at if pause and time.monotonic() < resume_at else deadline
            for key, _ in sel.select(max(0.0, wake - time.monotonic())):
                sock = key.fileobj
                sel.unregister(sock)
                if cast(socket.socket, sock).getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    burst.connect_times.append(time.monotonic() - t0)
                else:
                    burst.failed += 1
        burst.failed += len(sel.get_map())
    finally:
        stack.close()
        sel.close()
        burst.sockets = socks
    return burst


def connect_all(
    host: str,
    port: int,
    count: int,
    timeout: float,
    pause: list[int] | None = None,
    pause_for: float = 0.2,
) -> list[socket.socket]:
    """`count` connected sockets, connecting in parallel (a dropped SYN costs 1 s once, not
    once per client); raises TimeoutError if they are not all connected within `timeout`.
    With `pause`, those pids are stopped from before the first SYN until every connection is
    in the accept queue (at most `pause_for` s), so the server accepts them back to back."""
    family = family_of(host)
    sel = selectors.DefaultSelector()
    socks: list[socket.socket] = []
    stack = contextlib.ExitStack()
    if pause:
        stack.enter_context(paused(pause))
    t0 = time.monotonic()
    try:
        for _ in range(count):
            s = socket.socket(family, socket.SOCK_STREAM)
            socks.append(s)
            s.setblocking(False)
            if s.connect_ex((host, port)) == errno.EINPROGRESS:
                sel.register(s, selectors.EVENT_WRITE)
        deadline = t0 + timeout
        while sel.get_map() and time.monotonic() < deadline:
            if pause and time.monotonic() >= t0 + pause_for:
                stack.close()
            wake = t0 + pause_for if pause and time.monotonic() < t0 + pause_for else deadline
            for key, _ in sel.select(max(0.0, wake - time.monotonic())):
                sel.unregister(key.fileobj)
                err = cast(socket.socket, key.fileobj).getsockopt(
                    socket.SOL_SOCKET, socket.SO_ERROR
                )
                if err:
                    raise ConnectionRefusedError(err, os.strerror(err))
        if sel.get_map():
            raise TimeoutError(f"{len(sel.get_map())} of {count} connections still pending")
    except BaseException:
        for s in socks:
            s.close()
        raise
    finally:
        stack.close()
        sel.close()
    for s in socks:
        s.setblocking(True)
    return socks
