"""fd_leak.py - DEFECT: every session leaks one file descriptor.

Thread per connection like ok_thread.py, but each session opens /dev/null (say, a log it meant
to write) with os.open() and never closes it, so the server's descriptor count grows by one
per connection. The connection itself is closed correctly.
"""

from __future__ import annotations

import os
import socket

from _common import accept, make_listener, parse_args, serve, start_thread


def session(conn: socket.socket, protocol: str) -> None:
    os.open(os.devnull, os.O_WRONLY)  # DEFECT: the descriptor is never closed
    with conn:
        serve(conn, protocol)


def main() -> None:
    args = parse_args(__doc__)
    listener = make_listener(args.port)
    while True:
        start_thread(session, accept(listener), args.protocol)


if __name__ == "__main__":
    main()
