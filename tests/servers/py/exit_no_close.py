"""exit_no_close.py - DEFECT: exit is answered but the connection stays open.

Thread per connection like ok_thread.py, but the exit message gets its OK!!! and the session
simply goes on, ending only at the client's EOF.
"""

from __future__ import annotations

import socket

from _common import MSG_MAX, REPLY, accept, make_listener, parse_args, serve_echo, start_thread


def serve_ok_ignoring_exit(conn: socket.socket) -> None:
    while True:
        try:
            data = conn.recv(MSG_MAX)
            if not data:
                return
            conn.sendall(REPLY)
        except OSError:
            return
        # DEFECT: no "if is_exit(data): return"


def session(conn: socket.socket, protocol: str) -> None:
    with conn:
        if protocol == "echo":
            serve_echo(conn)
        else:
            serve_ok_ignoring_exit(conn)


def main() -> None:
    args = parse_args(__doc__)
    listener = make_listener(args.port)
    while True:
        start_thread(session, accept(listener), args.protocol)


if __name__ == "__main__":
    main()
