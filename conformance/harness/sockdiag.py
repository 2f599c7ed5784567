"""Which sockets listen on a port, asked of the kernel's sock_diag netlink interface.

psutil finds sockets by reading /proc/net/tcp and /proc/net/tcp6, where the kernel writes
out every TCP socket on the machine. The kit's own clients leave thousands of them in
TIME_WAIT, and one look then costs 15 to 25 ms; a launch looks once per check and per
generated example. sock_diag (what `ss` uses) hands back only the sockets in the states
asked for, here LISTEN: one round trip, well under a millisecond. Where netlink is not
available the callers fall back to psutil.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
TCP_LISTEN = 10

_HEADER = struct.Struct("=IHHII")  # struct nlmsghdr
# struct inet_diag_req_v2: family, protocol, ext, pad, states; then struct inet_diag_sockid
# (ports and addresses big-endian, interface, cookie), which a dump ignores.
_REQUEST = struct.Struct("=BBBBI48s")
# struct inet_diag_msg: family, state, timer, retrans; sockid (sport first); expires,
# rqueue, wqueue, uid, inode.
_MESSAGE = struct.Struct("=BBBB2s46sIIIII")


def listening_inodes(port: int) -> set[int] | None:
    """Inodes of the TCP sockets (IPv4 and IPv6) listening on `port`; None if we cannot ask."""
    inodes: set[int] = set()
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
            nl.settimeout(1.0)
            for seq, family in enumerate((socket.AF_INET, socket.AF_INET6), start=1):
                body = _REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, 1 << TCP_LISTEN, b"")
                flags = NLM_F_REQUEST | NLM_F_DUMP
                nl.send(
                    _HEADER.pack(_HEADER.size + len(body), SOCK_DIAG_BY_FAMILY, flags, seq, 0)
                    + body
                )
                if not _collect(nl, port, inodes):
                    return None
    except (OSError, AttributeError):  # no AF_NETLINK here, or sock_diag not permitted
        return None
    return inodes


def _collect(nl: socket.socket, port: int, inodes: set[int]) -> bool:
    """Read one dump's replies into `inodes`; False if the kernel answered with an error."""
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
                fields = _MESSAGE.unpack_from(data, offset + _HEADER.size)
                if int.from_bytes(fields[4], "big") == port:
                    inodes.add(fields[-1])
            offset += (length + 3) & ~3


def holds_any(pid: int, inodes: set[int]) -> bool:
    """Whether process `pid` has a descriptor on one of the sockets `inodes`."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    fd_dir = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(f"{fd_dir}/{fd}") in wanted:
                return True
    return False
