"""parent_keeps_conn.py - DEFECT: the parent does not close the connected socket.

Fork per connection like ok_fork.py, but after fork() the parent keeps its copy of the
connected socket. When the child closes its copy the connection is still open in the parent,
so the client never sees EOF (not even after exit), and the parent leaks one descriptor per
connection. (The list only stands in for C's forgotten int: without it Python's garbage
collector would close the socket and hide the defect.)
"""

from __future__ import annotations

import os
import socket

from _common import accept, fork_child, install_sigchld_reaper, make_listener, parse_args, serve

kept: list[socket.socket] = []


def main() -> None:
    args = parse_args(__doc__)
    install_sigchld_reaper()
    listener = make_listener(args.port)
    while True:
        conn = accept(listener)
        if fork_child() == 0:
            try:
                listener.close()
                serve(conn, args.protocol)
                conn.close()
            finally:
                os._exit(0)
        kept.append(conn)  # DEFECT: instead of conn.close()


if __name__ == "__main__":
    main()
