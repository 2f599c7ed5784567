"""thread_leak.py - DEFECT: a session thread never ends.

Thread per connection like ok_thread.py, but when its session is over the thread closes the
connection and then waits forever on an event that nobody sets, so the server gains one stuck
thread per connection.
"""

from __future__ import annotations

import socket
import threading

from _common import accept, make_listener, parse_args, serve, start_thread

never = threading.Event()


def session(conn: socket.socket, protocol: str) -> None:
    with conn:
        serve(conn, protocol)
    never.wait()  # DEFECT: instead of returning


def main() -> None:
    args = parse_args(__doc__)
    listener = make_listener(args.port)
    while True:
        start_thread(session, accept(listener), args.protocol)


if __name__ == "__main__":
    main()
