"""ok_prefork.py - correct server, a fixed pool of pre-forked workers.

Design: the parent opens the listening socket and forks WORKERS workers that all block in
accept() on that shared socket (the kernel hands each new connection to one of them), so
workers hold the listener on purpose. A worker serves each accepted connection in a thread,
so a slow client never blocks the others. The parent only waits for its workers, replaces one
that dies, and forwards SIGTERM to them before exiting.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from types import FrameType

from _common import accept, make_listener, parse_args, session, start_thread

WORKERS = 4

workers: dict[int, int] = {}  # pid -> slot
stopping = False


def forward_sigterm(signum: int, frame: FrameType | None) -> None:
    global stopping
    stopping = True
    for pid in list(workers):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def worker(listener: socket.socket, protocol: str) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    while True:
        start_thread(session, accept(listener), protocol)


def spawn(slot: int, listener: socket.socket, protocol: str) -> None:
    # SIGTERM stays blocked from fork() until workers records the new pid.
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    pid = os.fork()
    if pid == 0:
        try:
            worker(listener, protocol)
        finally:
            os._exit(0)
    workers[pid] = slot
    signal.pthread_sigmask(signal.SIG_SETMASK, old)


def main() -> None:
    args = parse_args(__doc__)
    signal.signal(signal.SIGTERM, forward_sigterm)
    listener = make_listener(args.port)
    for slot in range(WORKERS):
        spawn(slot, listener, args.protocol)
    while True:
        try:
            pid, _ = os.wait()
        except ChildProcessError:
            sys.exit(0)
        slot = workers.pop(pid, None)
        if slot is not None and not stopping:
            spawn(slot, listener, args.protocol)


if __name__ == "__main__":
    main()
