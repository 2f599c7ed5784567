"""Reference thread-per-connection TCP server, written to be read beside your own C server.

Design
------
The main thread owns the listening socket. For each connection it accepts, it starts one
session thread, which serves that connection and then ends. Python threads are real
POSIX threads (pthread_create), so the structure is the one you write in C.

* No shared mutable buffers. Every session keeps its data in local variables of its own
  thread. (The classic C bug: one global `char buf[1024]` used by every thread, so two
  clients overwrite each other's messages.) The only shared state is the table of live
  sessions, always touched under one lock.
* The session owns its connection and closes it when it ends (``with conn:``). Unlike
  fork(), threads share one descriptor table: there is no second copy for the main
  thread to close, and a session that forgets to close leaks the descriptor for the life
  of the server.
* At most MAX_SESSIONS (1024) sessions at once, enforced by a BoundedSemaphore that the
  main thread acquires *before* accept(): when every slot is taken the server simply stops
  accepting (new clients wait in the listen backlog) until a session ends and releases
  its slot. No polling, no sleep(): acquire() blocks until release().
* SIGTERM and SIGINT end the server: close the listener, shutdown(SHUT_RDWR) every live
  connection (which wakes its thread), join the threads with a bounded timeout, exit 0.

Protocols (``--protocol``)
--------------------------
ok    Each message (1..1023 bytes, one send by the client) gets the 5 bytes ``OK!!!``.
      The message ``exit`` (optionally followed by "\\n" or "\\r\\n") gets ``OK!!!``,
      then the server closes the connection.
echo  Every byte received is sent back, in order; when the client half-closes, the server
      closes too.

Usage::

    python -m reference_servers.thread_server [--host H] [--port P] [--protocol ok|echo]
                                              [--log-level LEVEL] [--max-sessions N]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import resource
import signal
import socket
import sys
import threading
import time
from types import FrameType
from typing import NoReturn

log = logging.getLogger("thread_server")

# Pending connections the kernel queues for us. When many clients connect at once and the
# queue is full, Linux drops their SYNs, and each dropped SYN costs that client a 1 s
# retransmission timeout. The kernel silently caps this at net.core.somaxconn.
BACKLOG = 128
MAX_SESSIONS = 1024
JOIN_TIMEOUT = 1.0  # seconds, shared by all session threads, at shutdown
OK_RECV_SIZE = 1024  # one recv() per message: messages are at most 1023 bytes
ECHO_RECV_SIZE = 64 * 1024
OK_REPLY = b"OK!!!"
# Hand-typed clients (nc, telnet) send a line ending; accept it.
EXIT_MESSAGES = frozenset({b"exit", b"exit\n", b"exit\r\n"})
SHUTDOWN_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


# --- One session (runs in its own thread) ----------------------------------------------


def serve_ok(conn: socket.socket, peer: str) -> None:
    """Reply OK!!! to each message until EOF or `exit`."""
    while True:
        message = conn.recv(OK_RECV_SIZE)  # a fresh, thread-local buffer every time
        if not message:  # recv() == 0: the client closed its side (or we shut it down)
            return
        log.debug("%s: message %r", peer, message)
        conn.sendall(OK_REPLY)  # send() may write less than asked; sendall() loops
        if message in EXIT_MESSAGES:
            return  # the caller closes the connection and the thread ends


def serve_echo(conn: socket.socket, peer: str) -> None:
    """Send back every byte until the client half-closes."""
    while True:
        data = conn.recv(ECHO_RECV_SIZE)
        if not data:
            # Each chunk was sent back in full before the next recv(), so by the time we
            # see EOF everything has been echoed: closing now loses nothing.
            return
        log.debug("%s: echoing %d bytes", peer, len(data))
        conn.sendall(data)


SESSIONS = {"ok": serve_ok, "echo": serve_echo}


def serve_session(conn: socket.socket, peer: str, protocol: str) -> None:
    """Run one session; a client that vanishes ends it quietly."""
    log.info("connect %s", peer)
    try:
        SESSIONS[protocol](conn, peer)
    except ConnectionError as exc:
        # ECONNRESET from recv(), EPIPE/ECONNRESET from send(): the client is gone.
        # Python starts with SIGPIPE ignored, so a write to a reset connection raises
        # BrokenPipeError here. In C the default SIGPIPE action kills the *whole process*,
        # every session with it: call signal(SIGPIPE, SIG_IGN) at startup or pass
        # MSG_NOSIGNAL to send().
        log.debug("%s: %s", peer, exc)
    except OSError as exc:
        log.warning("%s: session ended by error: %s", peer, exc)
    log.info("disconnect %s", peer)


# --- Signals -------------------------------------------------------------------------------


class _Shutdown(Exception):
    """Raised by the SIGTERM/SIGINT handler to unwind the accept loop."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_shutdown_requested = False  # C: static volatile sig_atomic_t


def on_shutdown_signal(signum: int, frame: FrameType | None) -> None:
    """SIGTERM/SIGINT: leave the accept loop by raising (only once)."""
    # Python runs signal handlers in the main thread, between two bytecodes, so this
    # exception surfaces wherever the main thread is: inside accept() or inside the
    # semaphore's acquire(), both of which the signal interrupted. It ends the loop like
    # a `break`. We prefer this to closing the listener from the handler: that makes
    # accept() fail with EBADF, which looks exactly like a real bug.
    global _shutdown_requested
    if _shutdown_requested:
        return  # a second Ctrl-C must not interrupt the cleanup of the first
    _shutdown_requested = True
    raise _Shutdown(signum)


# --- The server ----------------------------------------------------------------------------


class ThreadServer:
    """The listening socket, the session slots and the table of live sessions."""

    def __init__(self, listener: socket.socket, protocol: str, max_sessions: int) -> None:
        self._listener = listener
        self._protocol = protocol
        self._slots = threading.BoundedSemaphore(max_sessions)
        self._lock = threading.Lock()  # guards _sessions, nothing else
        self._sessions: dict[socket.socket, threading.Thread] = {}

    def serve_forever(self) -> NoReturn:
        """Accept connections forever; only the shutdown signal's exception ends this."""
        while True:
            # Back-pressure: take a slot *before* accept(). With every slot taken we block
            # here and leave new clients in the listen backlog, instead of accepting a
            # connection we cannot serve.
            self._slots.acquire()
            try:
                conn, addr = self._accept()
            except BaseException:
                self._slots.release()  # no session was started: give the slot back
                raise
            self._start_session(conn, f"{addr[0]}:{addr[1]}")

    def _accept(self) -> tuple[socket.socket, tuple[str, int]]:
        while True:
            # A signal makes accept() fail with EINTR. CPython runs the Python handler;
            # if it returns normally, PEP 475 restarts accept() for us. In C you loop:
            #     do cfd = accept(lfd, ...); while (cfd == -1 && errno == EINTR && !stop);
            try:
                return self._listener.accept()
            except ConnectionAbortedError:  # ECONNABORTED: the client reset while queued
                continue

    def _start_session(self, conn: socket.socket, peer: str) -> None:
        # Daemon: a session that ignores shutdown cannot keep the process alive past the
        # bounded join in shutdown(). We still track every thread and join it.
        thread = threading.Thread(
            target=self._run_session, args=(conn, peer), name=f"session {peer}", daemon=True
        )
        # A process-directed signal goes to any thread that does not block it. If it
        # landed in a session thread, that thread's recv() would be retried and the main
        # thread, asleep in accept(), would never notice. A new thread inherits the
        # creator's signal mask, so blocking the signals around start() keeps every
        # session thread deaf to them and delivery goes to the main thread.
        # (C: pthread_sigmask() around pthread_create(), the same idea.)
        # The registration is inside the blocked stretch too: the shutdown handler raises
        # in the main thread, and raised while it holds _lock (CPython can run a handler
        # between a `with` statement's acquire and its body), the lock would stay taken and
        # shutdown() would wait for it forever.
        saved_mask = signal.pthread_sigmask(signal.SIG_BLOCK, SHUTDOWN_SIGNALS)
        try:
            with self._lock:
                # Registered before start(), so shutdown() finds it however early it comes.
                self._sessions[conn] = thread
            thread.start()
        except RuntimeError as exc:  # "can't start new thread": out of memory or limits
            log.error("%s: %s", peer, exc)
            self._forget(conn)
            conn.close()
            self._slots.release()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, saved_mask)

    def _run_session(self, conn: socket.socket, peer: str) -> None:
        """Body of a session thread: serve, unregister, close, release the slot."""
        try:
            with conn:  # closes the connection however the session ends
                try:
                    serve_session(conn, peer, self._protocol)
                finally:
                    # Unregister *before* `with` closes the descriptor. Otherwise shutdown()
                    # could call shutdown() on a descriptor number we already closed, that
                    # a new socket has reused, and cut off the wrong connection.
                    self._forget(conn)
        finally:
            self._slots.release()  # wakes the main thread if it waits for a slot

    def _forget(self, conn: socket.socket) -> None:
        with self._lock:
            self._sessions.pop(conn, None)

    def shutdown(self, timeout: float) -> None:
        """Stop accepting, end every live session, join the threads (at most `timeout`)."""
        self._listener.close()  # new clients are refused from now on
        with self._lock:
            sessions = list(self._sessions.items())
            for conn, _thread in sessions:
                # shutdown(), not close(): closing a socket does not wake a thread blocked
                # in recv() on it (on Linux that recv() keeps waiting), and the number
                # could be reused at once. SHUT_RDWR makes the blocked recv() return 0,
                # so the session ends along its normal EOF path and closes the socket.
                with contextlib.suppress(OSError):  # ENOTCONN: the client reset already
                    conn.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for _conn, thread in sessions:
            if thread.is_alive():  # False for a thread that never started, too
                thread.join(max(0.0, deadline - time.monotonic()))
        stuck = sum(thread.is_alive() for _conn, thread in sessions)
        if stuck:
            log.warning("%d session threads did not end within %.1f s", stuck, timeout)


# --- Setup ---------------------------------------------------------------------------------


def open_listener(host: str, port: int) -> socket.socket:
    """socket(), setsockopt(SO_REUSEADDR), bind(), listen()."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        # Without SO_REUSEADDR a restarted server cannot bind its port while connections
        # from the previous run sit in TIME_WAIT (up to a minute on Linux).
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))  # port 0: the kernel picks a free port
        listener.listen(BACKLOG)
    except BaseException:
        listener.close()
        raise
    return listener


def ensure_descriptor_limit(max_sessions: int) -> None:
    """Raise the soft RLIMIT_NOFILE so that max_sessions connections fit."""
    # One descriptor per session, plus the listener, stdio and some slack. The usual soft
    # limit is 1024, so 1024 sessions do NOT fit: accept() would fail with EMFILE just
    # before the semaphore's bound is reached. (C: getrlimit()/setrlimit(), or `ulimit -n`.)
    needed = max_sessions + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    new_soft = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: kernel chooses)")
    parser.add_argument("--protocol", choices=sorted(SESSIONS), default="ok")
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        default="INFO",
    )
    parser.add_argument(
        "--max-sessions",
        type=int,
        default=MAX_SESSIONS,
        help=f"live sessions before accept() pauses (default {MAX_SESSIONS})",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s thread_server [%(threadName)s] %(levelname)s %(message)s",
    )
    ensure_descriptor_limit(args.max_sessions)
    listener = open_listener(args.host, args.port)
    server = ThreadServer(listener, args.protocol, args.max_sessions)
    try:
        signal.signal(signal.SIGTERM, on_shutdown_signal)
        signal.signal(signal.SIGINT, on_shutdown_signal)
        host, port = listener.getsockname()[:2]
        print(f"listening on {host}:{port}", file=sys.stderr, flush=True)
        server.serve_forever()
    except _Shutdown as stop:
        log.info("%s: shutting down", signal.Signals(stop.signum).name)
    finally:
        server.shutdown(JOIN_TIMEOUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
