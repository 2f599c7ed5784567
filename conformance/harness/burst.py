"""Connection bursts: many non-blocking connects at once, timed one by one.

Issued back to back, 64 SYNs reach the listener faster than any accept loop drains them, so
the kernel's accept queue (the listen backlog) must hold them. When it cannot, Linux drops the
SYN and the client retransmits after 1 s: the delay this measures.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import time
from dataclasses import dataclass, field


@dataclass
class Burst:
    connect_times: list[float] = field(default_factory=list)
    failed: int = 0


def connect_burst(host: str, port: int, count: int, timeout: float) -> Burst:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sel = selectors.DefaultSelector()
    socks: list[socket.socket] = []
    burst = Burst()
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
        while sel.get_map() and time.monotonic() < deadline:
            for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
                sock = key.fileobj
                sel.unregister(sock)
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:  # type: ignore[union-attr]
                    burst.connect_times.append(time.monotonic() - t0)
                else:
                    burst.failed += 1
        burst.failed += len(sel.get_map())
    finally:
        sel.close()
        for s in socks:
            with contextlib.suppress(OSError):
                s.close()
    return burst
