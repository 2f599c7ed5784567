"""recv_eintr_disconnect.py - DEFECT: a recv() interrupted by a signal ends the session.

Fork per connection like ok_fork.py; the parent is correct. The child treats any error from
recv(), EINTR included, as a disconnect. Python retries EINTR by itself (PEP 475), so to behave
like a C child that inherited a handler without SA_RESTART, the child installs a SIGCHLD
handler that raises InterruptedError: any SIGCHLD delivered to a child in the middle of a
session hangs up on the client.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
from types import FrameType

from _common import (
    ECHO_CHUNK,
    MSG_MAX,
    REPLY,
    accept,
    fork_child,
    install_sigchld_reaper,
    is_exit,
    make_listener,
    parse_args,
)


def interrupt(signum: int, frame: FrameType | None) -> None:
    raise InterruptedError(errno.EINTR, "recv interrupted")  # what C's recv() returns


def serve_no_retry(conn: socket.socket, protocol: str) -> None:
    while True:
        try:
            data = conn.recv(ECHO_CHUNK if protocol == "echo" else MSG_MAX)
        except OSError:  # DEFECT: EINTR is not a disconnect
            return
        if not data:
            return
        try:
            conn.sendall(data if protocol == "echo" else REPLY)
        except OSError:
            return
        if protocol == "ok" and is_exit(data):
            return


def main() -> None:
    args = parse_args(__doc__)
    install_sigchld_reaper()
    listener = make_listener(args.port)
    while True:
        conn = accept(listener)
        if fork_child() == 0:
            try:
                signal.signal(signal.SIGCHLD, interrupt)
                listener.close()
                serve_no_retry(conn, args.protocol)
                conn.close()
            finally:
                os._exit(0)
        conn.close()


if __name__ == "__main__":
    main()
