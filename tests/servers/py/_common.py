"""Correct building blocks shared by the Python zoo servers (not a server itself).

Each zoo server is one file that imports this module and differs from a correct server in
exactly one place, stated in its docstring. Everything here is therefore correct: a session does
one recv() of up to 1024 bytes per message, replies exactly ``OK!!!``, ends on ``exit``, EOF or
a reset, and the SIGCHLD handler reaps in a loop.

Every server is run as ``python NAME.py --port PORT [--protocol ok|echo]`` (stdlib only).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

BACKLOG = 128
MSG_MAX = 1024  # ok profile: one recv() of up to 1024 bytes per message
ECHO_CHUNK = 65536  # echo profile: recv() size
REPLY = b"OK!!!"
EXIT_MESSAGES = frozenset({b"exit", b"exit\n", b"exit\r\n"})
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def parse_args(description: str | None) -> argparse.Namespace:
    """Parses ``--port PORT [--protocol ok|echo]``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--protocol", choices=("ok", "echo"), default="ok")
    return parser.parse_args()


def make_listener(port: int, backlog: int = BACKLOG) -> socket.socket:
    """socket + SO_REUSEADDR + bind(0.0.0.0:port) + listen(backlog), then the banner."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(backlog)
    print(f"listening on 0.0.0.0:{listener.getsockname()[1]}", file=sys.stderr, flush=True)
    return listener


def accept(listener: socket.socket) -> socket.socket:
    """accept() that reports and survives errors such as ECONNABORTED or EMFILE.

    EINTR needs no handling: Python retries it (PEP 475).
    """
    while True:
        try:
            conn, _ = listener.accept()
        except OSError as exc:
            print(f"accept: {exc}", file=sys.stderr, flush=True)
            continue
        return conn


def is_exit(data: bytes) -> bool:
    """``exit``, tolerating a trailing ``\\n`` or ``\\r\\n`` from line-oriented clients."""
    return bytes(data) in EXIT_MESSAGES


def serve_ok(conn: socket.socket) -> None:
    """ok profile: one recv() per message, reply OK!!!, end on exit, EOF or error."""
    while True:
        try:
            data = conn.recv(MSG_MAX)
            if not data:
                return
            conn.sendall(REPLY)
        except OSError:
            return
        if is_exit(data):
            return


def serve_echo(conn: socket.socket) -> None:
    """echo profile: send back every byte in order until EOF or error."""
    while True:
        try:
            data = conn.recv(ECHO_CHUNK)
            if not data:
                return
            conn.sendall(data)
        except OSError:
            return


def serve(conn: socket.socket, protocol: str) -> None:
    """One whole session on a connected socket (the caller closes it)."""
    if protocol == "echo":
        serve_echo(conn)
    else:
        serve_ok(conn)


def reap_children(signum: int, frame: FrameType | None) -> None:
    """SIGCHLD handler: one signal may stand for many exited children, so loop."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def fork_child() -> int:
    """os.fork() for a session child; returns like os.fork().

    The child also asks the kernel for SIGTERM when its parent dies (prctl(PR_SET_PDEATHSIG),
    through ctypes: the stdlib has no wrapper). The parent keeps SIGTERM's default action, and
    this way stopping the server with SIGTERM also ends the sessions in progress.
    """
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGTERM))
        if os.getppid() != parent:  # the parent died before prctl()
            os._exit(0)
    return pid


def fork_session(listener: socket.socket, conn: socket.socket, protocol: str) -> int:
    """Correct fork-per-connection step; returns the child's pid (in the parent).

    The child closes the listening socket, serves, and leaves with os._exit() so it never
    runs the parent's code after fork() (no atexit handlers, no return into the accept loop).
    """
    pid = fork_child()
    if pid == 0:
        try:
            listener.close()
            serve(conn, protocol)
            conn.close()
        finally:
            os._exit(0)
    conn.close()
    return pid


def start_thread(target: Callable[..., Any], *args: Any) -> threading.Thread:
    """Starts a daemon thread, so a blocked session never keeps the process alive."""
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def session(conn: socket.socket, protocol: str) -> None:
    """Correct body of a session thread: serve, then close the connection."""
    with conn:
        serve(conn, protocol)


def install_sigchld_reaper() -> None:
    signal.signal(signal.SIGCHLD, reap_children)
