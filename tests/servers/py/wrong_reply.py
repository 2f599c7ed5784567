"""wrong_reply.py - DEFECT: replies "OK!!!\\n" (6 bytes) instead of "OK!!!".

Thread per connection like ok_thread.py; the session loop is the correct one except that every
reply, the one to exit included, has a newline.
"""

from __future__ import annotations

import socket

from _common import MSG_MAX, accept, is_exit, make_listener, parse_args, serve_echo, start_thread


def serve_ok_newline(conn: socket.socket) -> None:
    while True:
        try:
            data = conn.recv(MSG_MAX)
            if not data:
                return
            conn.sendall(b"OK!!!\n")  # DEFECT: one byte too many
        except OSError:
            return
        if is_exit(data):
            return


def session(conn: socket.socket, protocol: str) -> None:
    with conn:
        if protocol == "echo":
            serve_echo(conn)
        else:
            serve_ok_newline(conn)


def main() -> None:
    args = parse_args(__doc__)
    listener = make_listener(args.port)
    while True:
        start_thread(session, accept(listener), args.protocol)


if __name__ == "__main__":
    main()
