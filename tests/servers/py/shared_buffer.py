"""shared_buffer.py - DEFECT: all sessions share one receive buffer, unlocked.

Thread per connection like ok_thread.py, but every session thread receives into the same
module-level bytearray with recv_into() and sends straight out of it, with no lock. recv() and
send() release the GIL, so between one thread's recv_into() and the end of its sendall()
another thread may receive into the same bytes: under load a client gets back bytes another
client sent. Meant to be run with the echo profile, where the mix-up is visible in the data.
"""

from __future__ import annotations

import logging
import socket

from _common import (
    ECHO_CHUNK,
    MSG_MAX,
    REPLY,
    accept,
    is_exit,
    make_listener,
    parse_args,
    start_thread,
)

log = logging.getLogger("shared_buffer")
buf = bytearray(ECHO_CHUNK)  # DEFECT: shared by all session threads
view = memoryview(buf)


def serve_shared(conn: socket.socket, protocol: str) -> None:
    size = ECHO_CHUNK if protocol == "echo" else MSG_MAX
    while True:
        try:
            n = conn.recv_into(view[:size])
            if n == 0:
                return
            log.debug("%s: received %d bytes", protocol, n)
            conn.sendall(view[:n] if protocol == "echo" else REPLY)
        except OSError:
            return
        if protocol == "ok" and is_exit(view[:n]):
            return


def session(conn: socket.socket, protocol: str) -> None:
    with conn:
        serve_shared(conn, protocol)


def main() -> None:
    args = parse_args(__doc__)
    listener = make_listener(args.port)
    while True:
        start_thread(session, accept(listener), args.protocol)


if __name__ == "__main__":
    main()
