"""Reference multiplexing-plus-thread-pool TCP server, to read beside your own C server.

Design
------
The fourth classic design: one thread multiplexes, a fixed pool of worker threads does the
work. It is the shape of memcached, nginx's thread pools and Java NIO servers: the event
loop alone never blocks on a client, and the work of a ready client can run on another core.

* The main thread owns the selector (epoll on Linux). It accepts connections and watches
  the idle ones. When a connection becomes ready it *unregisters* it and puts it on a queue.
* A worker takes a connection off the queue and does what is due: one recv() and the reply,
  or more of a pending send. Then it hands the connection back to the main thread through a
  second list and wakes the selector with one byte on a socketpair (the self-pipe trick: a
  thread blocked in epoll_wait() wakes only for a descriptor).
* The main thread registers the returned connection again, for reading, or for writing if
  output is still pending.

Ownership is the rule that keeps this correct: at every moment a connection belongs to
exactly one of the selector, the queue (and then one worker), or the hand-back list. So two
workers never serve one connection at once and two replies can never interleave on it.
(In C with epoll you get the same guarantee from EPOLLONESHOT, re-armed by the worker with
EPOLL_CTL_MOD; Python's `selectors` has no one-shot mode, hence the hand-back.) Only the main
thread touches the selector: Python's `selectors` objects are not thread-safe.

Each connection carries its own output buffer. Workers share nothing else, so there is no
shared buffer for two sessions to overwrite, the classic bug of a worker pool.

Like the select server: sockets are non-blocking, send() may take only part of the output
and the rest waits for writability; a connection is read only while its output buffer is
empty (back-pressure); `exit` or EOF closes it once its output has drained; the soft
RLIMIT_NOFILE is raised to the hard limit. The pool has a fixed size, so the thread count
does not grow with clients: with N workers, N clients can be *processed* at once and any
number can be *connected*. SIGTERM and SIGINT end the server: close the listener, stop the
workers (bounded join), close every connection, exit 0.

Protocols (``--protocol``)
--------------------------
ok    Each message (1..1023 bytes, one send by the client) gets the 5 bytes ``OK!!!``.
      The message ``exit`` (optionally followed by "\\n" or "\\r\\n") gets ``OK!!!``,
      then the server closes the connection.
echo  Every byte received is sent back, in order; when the client half-closes, the server
      finishes sending what it holds, then closes.

Usage::

    python -m reference_servers.pool_server [--host H] [--port P] [--protocol ok|echo]
                                            [--workers N] [--log-level LEVEL]
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import queue
import resource
import selectors
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import NoReturn

log = logging.getLogger("pool_server")

# Pending connections the kernel queues for us (capped at net.core.somaxconn).
BACKLOG = 1024
WORKERS = 4
JOIN_TIMEOUT = 1.0  # seconds, shared by all workers, at shutdown
OK_RECV_SIZE = 1024  # one recv() per message: messages are at most 1023 bytes
ECHO_RECV_SIZE = 64 * 1024
OK_REPLY = b"OK!!!"
# Hand-typed clients (nc, telnet) send a line ending; accept it.
EXIT_MESSAGES = frozenset({b"exit", b"exit\n", b"exit\r\n"})
SHUTDOWN_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
_WAKE = object()  # selector key data of the wake-up socket


@dataclass(eq=False, slots=True)
class Connection:
    """One client. Owned by exactly one of: the selector, the queue/a worker, the hand-back."""

    sock: socket.socket
    peer: str
    out: bytearray = field(default_factory=bytearray)  # accepted for sending, not yet sent
    closing: bool = False  # close as soon as `out` is empty


# --- Signals -------------------------------------------------------------------------------


class _Shutdown(Exception):
    """Raised by the SIGTERM/SIGINT handler to unwind the event loop."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_shutdown_requested = False  # C: static volatile sig_atomic_t


def on_shutdown_signal(signum: int, frame: FrameType | None) -> None:
    """SIGTERM/SIGINT: leave the event loop by raising (only once)."""
    # Python runs signal handlers in the main thread only, so this lands in the event loop.
    # The workers are started with these signals blocked (see _start_workers) so that the
    # kernel delivers them to the main thread in C too.
    global _shutdown_requested
    if _shutdown_requested:
        return
    _shutdown_requested = True
    raise _Shutdown(signum)


# --- The work a worker does for one ready connection ---------------------------------------


def serve_ready(conn: Connection, echo: bool) -> bool:
    """Do what is due on a ready connection; False once it is finished (to be closed).

    Runs in a worker thread, on a connection no other thread holds.
    """
    if not conn.out:
        try:
            data = conn.sock.recv(ECHO_RECV_SIZE if echo else OK_RECV_SIZE)
        except (BlockingIOError, InterruptedError):  # not ready after all: wait again
            return True
        except OSError as exc:  # ECONNRESET: the client is gone
            log.debug("%s: %s", conn.peer, exc)
            return False
        if not data:  # recv() == 0: the client closed (or half-closed) its side
            conn.closing = True
        elif echo:
            conn.out += data
        else:
            conn.out += OK_REPLY
            conn.closing = data in EXIT_MESSAGES
    try:
        while conn.out:
            del conn.out[: conn.sock.send(conn.out)]  # send() may take fewer bytes
    except (BlockingIOError, InterruptedError):
        # The socket buffer is full: keep the rest; the main thread will watch for
        # writability and hand the connection to a worker again when it can take more.
        # Never wait here: a worker blocked on one slow client is a worker lost to all.
        return True
    except OSError as exc:  # EPIPE/ECONNRESET (SIGPIPE is ignored by Python; in C, do)
        log.debug("%s: %s", conn.peer, exc)
        return False
    return not conn.closing


# --- The server ----------------------------------------------------------------------------


class PoolServer:
    """The event loop (main thread), the work queue, the workers and the hand-back list."""

    def __init__(self, listener: socket.socket, protocol: str, workers: int) -> None:
        self._listener = listener
        self._echo = protocol == "echo"
        self._selector = selectors.DefaultSelector()
        self._work: queue.SimpleQueue[Connection | None] = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards _returned and _connections
        self._returned: list[Connection] = []
        self._connections: set[Connection] = set()
        self._listening = False
        # The self-pipe: a worker writes one byte to _wake_w to wake the main thread.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, _WAKE)
        listener.setblocking(False)
        self._watch_listener(True)
        self._workers = self._start_workers(workers)

    def _start_workers(self, count: int) -> list[threading.Thread]:
        # A new thread inherits the creator's signal mask: blocking the shutdown signals
        # around start() keeps every worker deaf to them, so the kernel delivers them to
        # the main thread. (C: pthread_sigmask() around pthread_create().)
        saved_mask = signal.pthread_sigmask(signal.SIG_BLOCK, SHUTDOWN_SIGNALS)
        try:
            threads = [
                threading.Thread(target=self._worker, name=f"worker {i}", daemon=True)
                for i in range(count)
            ]
            for thread in threads:
                thread.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, saved_mask)
        return threads

    # -- main thread ------------------------------------------------------------------------
    def serve_forever(self) -> NoReturn:
        """Run the event loop; only the shutdown signal's exception ends it."""
        while True:
            for key, _events in self._selector.select():
                if key.data is None:
                    self._accept_all()
                elif key.data is _WAKE:
                    self._take_back()
                else:
                    # Hand over: out of the selector first, so no second event for this
                    # connection can reach another worker while this one serves it.
                    self._selector.unregister(key.fileobj)
                    self._work.put(key.data)

    def _watch_listener(self, on: bool) -> None:
        if on and not self._listening:
            self._selector.register(self._listener, selectors.EVENT_READ, None)
        elif not on and self._listening:
            self._selector.unregister(self._listener)
        self._listening = on

    def _accept_all(self) -> None:
        """Accept every connection waiting in the queue, then go back to the loop."""
        while True:
            try:
                sock, addr = self._listener.accept()
            except BlockingIOError:  # EAGAIN: the queue is empty
                return
            except ConnectionAbortedError:  # ECONNABORTED: the client reset while queued
                continue
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of descriptors: pause accepting until a connection closes
                    # (watching a readable listener we cannot accept from would spin).
                    log.warning("accept: %s; pausing accepts until a connection closes", exc)
                    self._watch_listener(False)
                    return
                raise
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(sock, f"{addr[0]}:{addr[1]}")
            with _holding(self._lock):
                self._connections.add(conn)
            self._selector.register(sock, selectors.EVENT_READ, conn)
            log.debug("connect %s", conn.peer)

    def _take_back(self) -> None:
        """Register again the connections workers have finished with."""
        with contextlib.suppress(BlockingIOError):
            while self._wake_r.recv(4096):  # drain: one wake-up covers every returned one
                pass
        with _holding(self._lock):
            returned, self._returned = self._returned, []
            open_count = len(self._connections)
        for conn in returned:
            events = selectors.EVENT_WRITE if conn.out else selectors.EVENT_READ
            self._selector.register(conn.sock, events, conn)
        if not self._listening and open_count < _soft_limit() - 16:
            self._watch_listener(True)  # descriptors were freed: accept again

    # -- worker threads ---------------------------------------------------------------------
    def _worker(self) -> None:
        while (conn := self._work.get()) is not None:  # None: the shutdown sentinel
            try:
                keep = serve_ready(conn, self._echo)
            except Exception:  # a bug must cost one connection, not the worker
                log.exception("%s: worker failed", conn.peer)
                keep = False
            if keep:
                self._hand_back(conn)
            else:
                self._close(conn)

    def _hand_back(self, conn: Connection) -> None:
        with self._lock:
            self._returned.append(conn)
        self._wake()

    def _close(self, conn: Connection) -> None:
        # The connection is in no selector (this worker owns it), so close() is enough.
        with self._lock:
            self._connections.discard(conn)
        conn.sock.close()
        log.debug("disconnect %s", conn.peer)
        self._wake()  # a descriptor is free: if accepting was paused, it can resume

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # full: the main thread is waking anyway
            self._wake_w.send(b"\0")

    def shutdown(self, timeout: float) -> None:
        """Stop accepting, stop the workers (bounded wait), close every connection."""
        self._listener.close()
        for _ in self._workers:
            self._work.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._workers:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = sum(thread.is_alive() for thread in self._workers)
        if stuck:
            log.warning("%d workers did not end within %.1f s", stuck, timeout)
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(OSError):
                    conn.sock.close()
            self._connections.clear()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()


@contextlib.contextmanager
def _holding(lock: threading.Lock) -> Iterator[None]:
    """The main thread takes `lock` with the shutdown signals blocked.

    The shutdown handler raises in the main thread. Raised while the main thread holds the
    lock (CPython can run a handler between a `with` statement's acquire and its body), the
    lock would stay taken and shutdown() would wait for it forever. (C has no such trap:
    its handler only sets a flag.)
    """
    saved_mask = signal.pthread_sigmask(signal.SIG_BLOCK, SHUTDOWN_SIGNALS)
    try:
        with lock:
            yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, saved_mask)


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


def _soft_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def raise_descriptor_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (one descriptor per connection)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: kernel chooses)")
    parser.add_argument("--protocol", choices=("ok", "echo"), default="ok")
    parser.add_argument(
        "--workers", type=int, default=WORKERS, help=f"worker threads (default {WORKERS})"
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        default="INFO",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s pool_server [%(threadName)s] %(levelname)s %(message)s",
    )
    limit = raise_descriptor_limit()
    listener = open_listener(args.host, args.port)
    server = PoolServer(listener, args.protocol, max(1, args.workers))
    try:
        signal.signal(signal.SIGTERM, on_shutdown_signal)
        signal.signal(signal.SIGINT, on_shutdown_signal)
        host, port = listener.getsockname()[:2]
        print(f"listening on {host}:{port} (fd limit {limit})", file=sys.stderr, flush=True)
        server.serve_forever()
    except _Shutdown as stop:
        log.info("%s: shutting down", signal.Signals(stop.signum).name)
    finally:
        server.shutdown(JOIN_TIMEOUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
