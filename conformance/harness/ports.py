"""Ports for launched servers: a free one, and who holds a given one.

Servers get ports below the kernel's ephemeral range, drawn from the operating system's
randomness (see `_PORTS`), and a port counts as free only when nothing is bound to it in any
state, TIME_WAIT included, because a student's server binds 0.0.0.0 without SO_REUSEADDR.
"""

from __future__ import annotations

import contextlib
import random
import socket

import psutil

from conformance.harness.address import family_of
from conformance.harness.processes import GONE

#: Where launched servers get their ports: below the kernel's ephemeral range (see
#: `_ephemeral_low`), so that no outgoing connection takes the port between our choice and
#: the server's bind(). The kit's own clients open thousands of connections while the next
#: server starts (LaunchAhead), and each takes an ephemeral port.
SERVER_PORTS_FROM = 10000


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


#: Ports are drawn from the operating system's randomness, never from the `random` module:
#: hypothesis seeds that module afresh for every generated example, so the ports drawn inside
#: examples came out the same every time, and the same in every kit run with the same
#: --seed. Concurrent runs then chose one another's ports in lockstep, retries included.
_PORTS = random.SystemRandom()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing uses (no listener, no connection in any state), outside the ephemeral
    range when there is room below it; else one the kernel picks."""
    family = family_of(host)
    top = _ephemeral_low() - 1
    for _ in range(100 if top > SERVER_PORTS_FROM else 0):
        port = _PORTS.randint(SERVER_PORTS_FROM, top)
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                # The wildcard address, without SO_REUSEADDR: a listener on any address, or
                # a connection in TIME_WAIT, makes it fail (a student server binds 0.0.0.0).
                s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
            except OSError:
                continue
            return port
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_bindable(port: int) -> bool:
    """True if a server without SO_REUSEADDR could bind `port` on every address now: nothing
    listens there and no connection on it is left in any state (TIME_WAIT included)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def port_taken(port: int) -> bool:
    """True if binding the port fails (a listener holds it); TIME_WAIT does not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


def port_holder(port: int) -> str | None:
    """Who listens on `port` already, as 'pid 123 (name)' or 'another process'; None if free."""
    with contextlib.suppress(psutil.AccessDenied):
        for c in psutil.net_connections(kind="tcp"):
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr[1] == port:
                if c.pid:
                    try:
                        return f"pid {c.pid} ({psutil.Process(c.pid).name()})"
                    except GONE:
                        return f"pid {c.pid}"
                return "another process"
    return None
