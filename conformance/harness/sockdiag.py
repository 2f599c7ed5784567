"""Which TCP sockets use a port, asked of the kernel's sock_diag netlink interface.

psutil finds sockets by reading /proc/net/tcp and /proc/net/tcp6, where the kernel writes
out every TCP socket on the machine. The kit's own clients leave thousands of them in
TIME_WAIT, and one look then costs 15 to 25 ms; a launch looks once per check and per
generated example, and the checks that ask who holds a connection look every few
milliseconds while they wait. sock_diag (what `ss` uses) hands back only the sockets in the
states asked for (LISTEN, or the connected ones): one round trip, well under a millisecond.
Where netlink is not available the callers fall back to psutil.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from dataclasses import dataclass

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
TCP_LISTEN = 10
TCP_TIME_WAIT = 6
#: Every state a socket with a descriptor can be in, less LISTEN. TIME_WAIT (and SYN_RECV's
#: request sockets) have no descriptor: asking for them would return the thousands the kit's
#: own clients leave behind.
CONNECTED = ((1 << 12) - 1) & ~(1 << TCP_LISTEN) & ~(1 << TCP_TIME_WAIT) & ~1
#: psutil's names for the kernel's TCP states (include/net/tcp_states.h).
STATE_NAMES = {
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
    6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
}  # fmt: skip

_HEADER = struct.Struct("=IHHII")  # struct nlmsghdr
# struct inet_diag_req_v2: family, protocol, ext, pad, states; then struct inet_diag_sockid
# (ports and addresses big-endian, interface, cookie), which a dump ignores.
_REQUEST = struct.Struct("=BBBBI48s")
# struct inet_diag_msg: family, state, timer, retrans; sockid (sport, dport, src, dst,
# interface, cookie); expires, rqueue, wqueue, uid, inode.
_MESSAGE = struct.Struct("=BBBB2s2s16s16sI8sIIIII")


@dataclass(frozen=True)
class DiagSocket:
    inode: int
    state: str
    local: tuple[str, int]
    remote: tuple[str, int]
    #: A listener's accept queue: connections the kernel completed that accept() has not
    #: yet taken. (For a connected socket, the bytes received and not yet read.)
    rqueue: int = 0
    #: A listener's backlog: the most connections its accept queue holds (listen()'s
    #: argument, capped at net.core.somaxconn); `ss -ltn` shows it as Send-Q.
    wqueue: int = 0


def listening_inodes(port: int) -> set[int] | None:
    """Inodes of the TCP sockets (IPv4 and IPv6) listening on `port`; None if we cannot ask."""
    found = tcp_sockets(port, 1 << TCP_LISTEN)
    return None if found is None else {s.inode for s in found}


def accept_queue(port: int) -> int | None:
    """How many connections wait for accept() on `port`'s listeners; None if we cannot ask."""
    found = tcp_sockets(port, 1 << TCP_LISTEN)
    return None if found is None else sum(s.rqueue for s in found)


def listen_backlog(port: int) -> int | None:
    """The listen() backlog of `port`'s listeners (the smallest, if several); None if we
    cannot ask or nothing listens."""
    found = tcp_sockets(port, 1 << TCP_LISTEN)
    return min(s.wqueue for s in found) if found else None


#: The states of a connection the kernel completed and accept() has not taken yet.
UNACCEPTED = (1 << 1) | (1 << 8)  # ESTABLISHED, CLOSE_WAIT (the client already closed)


def unaccepted(port: int) -> list[DiagSocket] | None:
    """The connections to `port` that wait in a listener's accept queue; None if we cannot
    ask. A socket gets its inode when accept() takes it, and keeps it until its last
    descriptor is closed: one without, ESTABLISHED or CLOSE_WAIT, was never taken (one
    closed since is in FIN_WAIT, LAST_ACK or CLOSING, or gone)."""
    found = tcp_sockets(port, UNACCEPTED, held=False)
    return None if found is None else [s for s in found if not s.inode]


def tcp_sockets(port: int, states: int = CONNECTED, held: bool = True) -> list[DiagSocket] | None:
    """The TCP sockets (IPv4 and IPv6) whose local port is `port`, in one of `states` (a
    bit mask of TCP states), that a process may hold (inode not 0; `held` False: also those
    no process holds); None if we cannot ask."""
    found: list[DiagSocket] = []
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
            nl.settimeout(1.0)
            for seq, family in enumerate((socket.AF_INET, socket.AF_INET6), start=1):
                body = _REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, states, b"")
                flags = NLM_F_REQUEST | NLM_F_DUMP
                nl.send(
                    _HEADER.pack(_HEADER.size + len(body), SOCK_DIAG_BY_FAMILY, flags, seq, 0)
                    + body
                )
                if not _collect(nl, port, found, held):
                    return None
    except (OSError, AttributeError):  # no AF_NETLINK here, or sock_diag not permitted
        return None
    return found


def _collect(nl: socket.socket, port: int, found: list[DiagSocket], held: bool) -> bool:
    """Read one dump's replies into `found`; False if the kernel answered with an error."""
    while True:
        data = nl.recv(1 << 16)
        offset = 0
        while offset + _HEADER.size <= len(data):
            length, kind, _, _, _ = _HEADER.unpack_from(data, offset)
            if kind == NLMSG_DONE:
                return True
            if kind == NLMSG_ERROR or length < _HEADER.size:
                return False
            if kind == SOCK_DIAG_BY_FAMILY and length >= _HEADER.size + _MESSAGE.size:
                family, state, _, _, sport, dport, src, dst, *rest = _MESSAGE.unpack_from(
                    data, offset + _HEADER.size
                )
                rqueue, wqueue, inode = rest[3], rest[4], rest[-1]
                if int.from_bytes(sport, "big") == port and (inode or not held):
                    size = 4 if family == socket.AF_INET else 16
                    found.append(
                        DiagSocket(
                            inode,
                            STATE_NAMES.get(state, str(state)),
                            (socket.inet_ntop(family, src[:size]), port),
                            (socket.inet_ntop(family, dst[:size]), int.from_bytes(dport, "big")),
                            rqueue,
                            wqueue,
                        )
                    )
            offset += (length + 3) & ~3


def socket_fds(pid: int) -> dict[int, int]:
    """The sockets process `pid` has descriptors on: inode -> the first such fd."""
    fd_dir = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return {}
    held: dict[int, int] = {}
    for fd in fds:
        with contextlib.suppress(OSError):
            link = os.readlink(f"{fd_dir}/{fd}")
            if link.startswith("socket:["):
                held.setdefault(int(link[8:-1]), int(fd))
    return held


def holds_any(pid: int, inodes: set[int]) -> bool:
    """Whether process `pid` has a descriptor on one of the sockets `inodes`."""
    return not inodes.isdisjoint(socket_fds(pid))
