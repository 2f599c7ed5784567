"""Reference IO-multiplexing TCP server (one thread, `selectors`), to read beside your C server.

Design
------
One thread serves every connection. Every socket is non-blocking and registered with one
selector (`selectors.DefaultSelector` is epoll on Linux, kqueue on BSD/macOS, else poll or
select: the same loop you write in C around epoll_wait()). The loop asks the selector which
sockets are ready and does, for each, only the work that cannot block:

* the listening socket is readable: accept() every queued connection (until EAGAIN);
* a connection is readable: one recv(), then queue the reply in that connection's output
  buffer and try to send it;
* a connection is writable: send more of its output buffer.

Nothing ever waits for one client, so a silent client costs a descriptor and a few hundred
bytes, not a thread or a process: this design holds 10,000 connections in one process.
What it costs instead is that *nothing* may block. One blocking call (a recv() on a socket
that is not ready, a sendall() to a client that does not read, a slow computation) stops
every client at once.

* Partial writes. send() on a non-blocking socket takes what fits in the kernel's socket
  buffer and returns how much that was; the rest stays in the connection's own output buffer
  and the connection waits for EVENT_WRITE. (sendall() would block, or on a non-blocking
  socket raise halfway with no way to know how much went out.)
* Back-pressure. A connection is read only while its output buffer is empty: a client that
  sends without reading its echo cannot make the server buffer without bound. While output
  is pending the connection is watched for EVENT_WRITE *instead of* EVENT_READ.
* Closing. `exit` or the client's EOF marks the connection closing; it is closed once its
  output buffer has drained, so the last reply is never lost.
* Descriptors. One per connection. The usual soft RLIMIT_NOFILE is 1024, so the server
  raises it to the hard limit at start; when accept() still fails with EMFILE it stops
  watching the listener until a connection closes (watching it would make the loop spin:
  the listener stays readable while the queue is full).
* SIGTERM and SIGINT end the server: close the listener and every connection, exit 0.

Protocols (``--protocol``)
--------------------------
ok    Each message (1..1023 bytes, one send by the client) gets the 5 bytes ``OK!!!``.
      The message ``exit`` (optionally followed by "\\n" or "\\r\\n") gets ``OK!!!``,
      then the server closes the connection.
echo  Every byte received is sent back, in order; when the client half-closes, the server
      finishes sending what it holds, then closes.

Usage::

    python -m reference_servers.select_server [--host H] [--port P] [--protocol ok|echo]
                                              [--log-level LEVEL]
"""

from __future__ import annotations

import argparse
import errno
import logging
import resource
import selectors
import signal
import socket
import sys
from dataclasses import dataclass, field
from types import FrameType
from typing import NoReturn

log = logging.getLogger("select_server")

# Pending connections the kernel queues for us. With thousands of clients connecting at
# once a larger queue avoids dropped SYNs (each costs the client a 1 s retransmission);
# the kernel silently caps it at net.core.somaxconn.
BACKLOG = 1024
OK_RECV_SIZE = 1024  # one recv() per message: messages are at most 1023 bytes
ECHO_RECV_SIZE = 64 * 1024
OK_REPLY = b"OK!!!"
# Hand-typed clients (nc, telnet) send a line ending; accept it.
EXIT_MESSAGES = frozenset({b"exit", b"exit\n", b"exit\r\n"})


@dataclass(eq=False, slots=True)
class Connection:
    """Everything the server knows about one client: in a C server, a struct per descriptor."""

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
    # Python runs the handler in the main thread between two bytecodes; the exception
    # surfaces wherever the loop is, normally inside select(), which the signal interrupted.
    # A C server sets a flag here; epoll_wait() fails with EINTR and the loop tests the
    # flag. (Or it reads signals as events: signalfd(), or the self-pipe trick.)
    global _shutdown_requested
    if _shutdown_requested:
        return
    _shutdown_requested = True
    raise _Shutdown(signum)


# --- The server ----------------------------------------------------------------------------


class SelectServer:
    """The listening socket, the selector and the live connections."""

    def __init__(self, listener: socket.socket, protocol: str) -> None:
        self._listener = listener
        self._echo = protocol == "echo"
        self._selector = selectors.DefaultSelector()
        self._connections: set[Connection] = set()
        self._listening = False
        listener.setblocking(False)  # accept() returns EAGAIN instead of waiting
        self._watch_listener(True)

    def serve_forever(self) -> NoReturn:
        """Run the event loop; only the shutdown signal's exception ends it."""
        while True:
            # Block until something is ready; no timeout is needed since nothing here is
            # time-driven. (PEP 475: a signal whose handler returns restarts the wait.)
            for key, events in self._selector.select():
                if key.data is None:
                    self._accept_all()
                elif events & selectors.EVENT_WRITE:
                    self._flush(key.data)
                else:
                    self._on_readable(key.data)

    # -- accepting --------------------------------------------------------------------------
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
                    # Out of descriptors: the listener stays readable, so watching it
                    # would spin the loop at 100% CPU. Pause until a connection closes.
                    log.warning("accept: %s; pausing accepts until a connection closes", exc)
                    self._watch_listener(False)
                    return
                raise
            sock.setblocking(False)
            # Replies are small and sent at once: do not let Nagle hold them back waiting
            # for the previous segment's ACK (a 40 ms stall per round trip on some stacks).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(sock, f"{addr[0]}:{addr[1]}")
            self._connections.add(conn)
            self._selector.register(sock, selectors.EVENT_READ, conn)
            log.debug("connect %s", conn.peer)

    # -- one connection ---------------------------------------------------------------------
    def _on_readable(self, conn: Connection) -> None:
        """One recv(): queue what it asks for and try to send it right away."""
        try:
            data = conn.sock.recv(ECHO_RECV_SIZE if self._echo else OK_RECV_SIZE)
        except (BlockingIOError, InterruptedError):  # not ready after all: wait again
            return
        except OSError as exc:  # ECONNRESET: the client is gone
            log.debug("%s: %s", conn.peer, exc)
            self._close(conn)
            return
        if not data:  # recv() == 0: the client closed (or half-closed) its side
            conn.closing = True
        elif self._echo:
            conn.out += data
        else:
            conn.out += OK_REPLY
            conn.closing = data in EXIT_MESSAGES
        self._flush(conn)

    def _flush(self, conn: Connection) -> None:
        """Send what the socket takes; watch for writability if something is left."""
        try:
            while conn.out:
                sent = conn.sock.send(conn.out)  # may be fewer bytes than asked
                del conn.out[:sent]
        except (BlockingIOError, InterruptedError):
            # The socket buffer is full: the client is not reading fast enough. Keep the
            # rest, stop reading from this client, and come back when it can take more.
            self._selector.modify(conn.sock, selectors.EVENT_WRITE, conn)
            return
        except OSError as exc:  # EPIPE/ECONNRESET (SIGPIPE is ignored by Python; in C, do)
            log.debug("%s: %s", conn.peer, exc)
            self._close(conn)
            return
        if conn.closing:
            self._close(conn)
        else:
            self._selector.modify(conn.sock, selectors.EVENT_READ, conn)

    def _close(self, conn: Connection) -> None:
        # Unregister before close(): the selector must not keep a descriptor number that
        # the next accept() may reuse. (In C, close() removes it from an epoll set by itself,
        # but not from a select() fd_set or a poll() array you maintain.)
        self._selector.unregister(conn.sock)
        conn.sock.close()
        self._connections.discard(conn)
        self._watch_listener(True)  # a descriptor is free again
        log.debug("disconnect %s", conn.peer)

    def shutdown(self) -> None:
        """Close the listener and every connection (pending output is dropped)."""
        self._listener.close()
        for conn in list(self._connections):
            conn.sock.close()
        self._connections.clear()
        self._selector.close()


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


def raise_descriptor_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit."""
    # One descriptor per connection. The soft limit (often 1024) is what accept() hits with
    # EMFILE; any process may raise it up to the hard limit, only root beyond. (C:
    # getrlimit()/setrlimit(), or `ulimit -n` in the shell that starts the server.)
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
        format="%(asctime)s select_server %(levelname)s %(message)s",
    )
    limit = raise_descriptor_limit()
    listener = open_listener(args.host, args.port)
    server = SelectServer(listener, args.protocol)
    try:
        signal.signal(signal.SIGTERM, on_shutdown_signal)
        signal.signal(signal.SIGINT, on_shutdown_signal)
        host, port = listener.getsockname()[:2]
        print(f"listening on {host}:{port} (fd limit {limit})", file=sys.stderr, flush=True)
        server.serve_forever()
    except _Shutdown as stop:
        log.info("%s: shutting down", signal.Signals(stop.signum).name)
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
