"""A server whose per-connection processes are not its children, for the harness's tests.

    double_fork_sleeper.py --port PORT [--daemon [--linger SECONDS]]

It listens, then forks a child that forks a grandchild and exits at once (Stevens' double
fork); the grandchild, reparented, sleeps until killed, and the server waits for the child,
so nothing of it is ever a zombie. With --daemon it first daemonizes as daemon(3) does: the
launched process exits with status 0, and its child, in a session of its own, is the server;
--linger makes the parent exit only that long after its child listens (as a busy machine
may schedule it).
Not a zoo server (it serves no protocol): the kit's harness tests launch it.
"""

from __future__ import annotations

import argparse
import os
import socket
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--daemon", action="store_true")
    ap.add_argument("--linger", type=float, default=0.0)
    ns = ap.parse_args()
    if ns.daemon:
        if os.fork() > 0:
            time.sleep(ns.linger)
            os._exit(0)  # daemon(3): the parent exits, the child goes on in a new session
        os.setsid()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", ns.port))
    listener.listen(16)
    child = os.fork()
    if child == 0:
        if os.fork() == 0:
            listener.close()
            time.sleep(3600)  # the grandchild: reparented once its parent exits
        os._exit(0)
    os.waitpid(child, 0)
    time.sleep(3600)


if __name__ == "__main__":
    main()
