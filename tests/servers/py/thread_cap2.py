"""thread_cap2.py - DEFECT: at most two sessions at a time.

Thread per connection like ok_thread.py, but the accept loop takes a slot of a two-slot
semaphore before each accept() and a session gives it back when it ends, so a third client
waits until one of the first two leaves.
"""

from __future__ import annotations

import socket
import threading

from _common import accept, make_listener, parse_args, serve, start_thread

slots = threading.Semaphore(2)  # DEFECT: an arbitrary cap on concurrent sessions


def session(conn: socket.socket, protocol: str) -> None:
    try:
        with conn:
            serve(conn, protocol)
    finally:
        slots.release()


def main() -> None:
    args = parse_args(__doc__)
    listener = make_listener(args.port)
    while True:
        slots.acquire()  # WAITS here for a free slot
        start_thread(session, accept(listener), args.protocol)


if __name__ == "__main__":
    main()
