"""one_message.py - DEFECT: only the first message of a connection is answered.

Thread per connection like ok_thread.py; the first message is handled like the correct loop
does (OK!!!, and the session ends if it was exit), but after it the thread never replies
again: it receives and discards everything until the client's EOF (or an error), then closes.
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


def serve_ok_once(conn: socket.socket) -> None:
    try:
        data = conn.recv(MSG_MAX)
        if not data:
            return
        conn.sendall(REPLY)
        if is_exit(data):
            return
        # DEFECT: no loop back to the reply; the rest is received and ignored
        while conn.recv(MSG_MAX):
            pass
    except OSError:
        return


def session(conn: socket.socket, protocol: str) -> None:
    with conn:
        if protocol == "echo":
            serve_echo(conn)
        else:
            serve_ok_once(conn)


def main() -> None:
    args = parse_args(__doc__)
    listener = make_listener(args.port)
    while True:
        start_thread(session, accept(listener), args.protocol)


if __name__ == "__main__":
    main()
