"""no_exit_reply.py - DEFECT: exit closes the connection without replying.

Thread per connection like ok_thread.py; the session loop is the correct one except that it
checks for exit before replying, so the exit message ends the session (the connection is
closed) with no OK!!! sent first.
"""

from __future__ import annotations

import socket

from _common import (
    MSG_MAX,
    REPLY,
    accept,
    is_exit,
    make_listener,
    parse_args,
    serve_echo,
    start_thread,
)


def serve_ok_silent_exit(conn: socket.socket) -> None:
    while True:
        try:
            data = conn.recv(MSG_MAX)
            if not data:
                return
            if is_exit(data):  # DEFECT: returns before the reply is sent
                return
            conn.sendall(REPLY)
        except OSError:
            return


def session(conn: socket.socket, protocol: str) -> None:
    with conn:
        if protocol == "echo":
            serve_echo(conn)
        else:
            serve_ok_silent_exit(conn)


def main() -> None:
    args = parse_args(__doc__)
    listener = make_listener(args.port)
    while True:
        start_thread(session, accept(listener), args.protocol)


if __name__ == "__main__":
    main()
