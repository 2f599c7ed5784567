"""echo_cstring.py - DEFECT: echoes each chunk as a C string (up to its first NUL).

Thread per connection like ok_thread.py; the echo loop is the correct one except that it sends
back ``data.split(b"\\0", 1)[0]`` instead of ``data``, as C code calling strlen() on the buffer
would, so a NUL byte in a chunk truncates what is echoed (the NUL and everything after it in
that chunk are lost). Meant to be run with the echo profile; the ok profile is served correctly.
"""

from __future__ import annotations

import socket

from _common import ECHO_CHUNK, accept, make_listener, parse_args, serve_ok, start_thread


def serve_echo_cstring(conn: socket.socket) -> None:
    while True:
        try:
            data = conn.recv(ECHO_CHUNK)
            if not data:
                return
            conn.sendall(data.split(b"\0", 1)[0])  # DEFECT: stops at the first NUL
        except OSError:
            return


def session(conn: socket.socket, protocol: str) -> None:
    with conn:
        if protocol == "echo":
            serve_echo_cstring(conn)
        else:
            serve_ok(conn)


def main() -> None:
    args = parse_args(__doc__)
    listener = make_listener(args.port)
    while True:
        start_thread(session, accept(listener), args.protocol)


if __name__ == "__main__":
    main()
