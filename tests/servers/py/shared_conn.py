"""shared_conn.py - DEFECT: replies are sent on a module-level "current connection".

Thread per connection like ok_thread.py, but the accept loop also stores each accepted socket
in ONE module-level variable, current_conn, and the session thread, which receives on its own
socket, sends every reply on current_conn. With one client at a time that is the client's own
connection; with several connected at once it is the most recently accepted one, so replies go
to the wrong client.
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

current_conn: socket.socket  # DEFECT: one variable for every session (set by main)


def serve_ok_shared(conn: socket.socket) -> None:
    while True:
        try:
            data = conn.recv(MSG_MAX)
            if not data:
                return
            current_conn.sendall(REPLY)  # DEFECT: current_conn, not conn
        except OSError:
            return
        if is_exit(data):
            return


def session(conn: socket.socket, protocol: str) -> None:
    with conn:
        if protocol == "echo":
            serve_echo(conn)
        else:
            serve_ok_shared(conn)


def main() -> None:
    global current_conn
    args = parse_args(__doc__)
    listener = make_listener(args.port)
    while True:
        current_conn = accept(listener)
        start_thread(session, current_conn, args.protocol)


if __name__ == "__main__":
    main()
