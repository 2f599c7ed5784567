"""Reference fork-per-connection TCP server, written to be read beside your own C server.

Design
------
The parent process owns the listening socket and does only three things: accept() a
connection, fork() a child for it, and reap children that have exited. Each child serves
exactly one connection and then exits. Every Python call used here maps one to one onto
the C call of the same name (socket, setsockopt, bind, listen, accept, fork, waitpid, kill,
sigaction via signal.signal, sigprocmask via signal.pthread_sigmask).

fork() copies *every* descriptor, so right after it both processes hold both sockets.
(Python marks its descriptors close-on-exec, PEP 446, but that only matters for exec();
a plain fork() inherits everything, exactly as in C.) Each side closes what it does not use:

* The child closes the listening socket. If it kept it, the port stays bound while any
  child lives (a restarted server cannot bind), and a confused child could accept()
  connections meant for the parent.
* The parent closes the connected socket. If it kept it, the connection is not really closed
  when the child closes its copy and exits: the kernel sends FIN only when the *last*
  descriptor goes, so the client never sees EOF after `exit`. The parent also leaks one
  descriptor per connection and dies with EMFILE after about `ulimit -n` clients.

A child that has exited stays a zombie until its parent waits for it. A SIGCHLD handler
reaps them as they exit (see reap_children for why it loops).

SIGTERM and SIGINT end the server: stop accepting, SIGTERM every live child, wait for
each one, exit with status 0.

Protocols (``--protocol``)
--------------------------
ok    Each message (1..1023 bytes, one send by the client) gets the 5 bytes ``OK!!!``.
      The message ``exit`` (optionally followed by "\\n" or "\\r\\n") gets ``OK!!!``,
      then the server closes the connection.
echo  Every byte received is sent back, in order; when the client half-closes, the server
      closes too.

Usage::

    python -m reference_servers.fork_server [--host H] [--port P] [--protocol ok|echo]
                                            [--log-level LEVEL]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import sys
from types import FrameType
from typing import NoReturn

log = logging.getLogger("fork_server")

# Pending connections the kernel queues for us. When many clients connect at once and the
# queue is full, Linux drops their SYNs, and each dropped SYN costs that client a 1 s
# retransmission timeout. The kernel silently caps this at net.core.somaxconn.
BACKLOG = 128
OK_RECV_SIZE = 1024  # one recv() per message: messages are at most 1023 bytes
ECHO_RECV_SIZE = 64 * 1024
OK_REPLY = b"OK!!!"
# Hand-typed clients (nc, telnet) send a line ending; accept it.
EXIT_MESSAGES = frozenset({b"exit", b"exit\n", b"exit\r\n"})
# The signals the parent handles. They are blocked around fork(); see fork_session().
PARENT_SIGNALS = frozenset({signal.SIGCHLD, signal.SIGTERM, signal.SIGINT})


# --- One session (runs in the child) -------------------------------------------------


def serve_ok(conn: socket.socket, peer: str) -> None:
    """Reply OK!!! to each message until EOF or `exit`."""
    while True:
        message = conn.recv(OK_RECV_SIZE)
        if not message:  # recv() == 0: the client closed its side
            return
        log.debug("%s: message %r", peer, message)
        conn.sendall(OK_REPLY)  # send() may write less than asked; sendall() loops
        if message in EXIT_MESSAGES:
            return  # the caller closes the connection and the child exits


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
        # BrokenPipeError here. In C the default SIGPIPE action *kills the process*: call
        # signal(SIGPIPE, SIG_IGN) at startup or pass MSG_NOSIGNAL to send().
        log.debug("%s: %s", peer, exc)
    except OSError as exc:
        log.warning("%s: session ended by error: %s", peer, exc)
    log.info("disconnect %s", peer)


def run_child(listener: socket.socket, conn: socket.socket, peer: str, protocol: str) -> NoReturn:
    """Body of a child process: serve one connection, then exit without returning."""
    status = 0
    try:
        # The parent's handlers were copied by fork(). Here they would be wrong: the
        # reaper has no children to reap, and the shutdown handler would raise into this
        # child's copy of the parent's accept loop. With the defaults, the parent's
        # SIGTERM simply ends us. (SIGPIPE stays ignored; see serve_session.) The signals
        # are still blocked from fork_session(), so none can arrive before this reset.
        for signum in PARENT_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, PARENT_SIGNALS)
        listener.close()  # first thing: the listening socket belongs to the parent
        with conn:
            serve_session(conn, peer, protocol)
    except BaseException:
        log.exception("%s: child failed", peer)
        status = 1
    finally:
        # os._exit(), not sys.exit() or return: sys.exit() raises SystemExit, which would
        # unwind into the parent's code that this child inherited (the accept loop, the
        # `finally` in main() that kills "its" children) and run atexit handlers meant for
        # the parent. _exit() ends the process right here, like _exit(2) in C.
        os._exit(status)


# --- Signals (parent) ----------------------------------------------------------------


class _Shutdown(Exception):
    """Raised by the SIGTERM/SIGINT handler to unwind the accept loop."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_shutdown_requested = False  # C: static volatile sig_atomic_t


def on_shutdown_signal(signum: int, frame: FrameType | None) -> None:
    """SIGTERM/SIGINT: leave the accept loop by raising (only once)."""
    # Python runs signal handlers in the main thread, between two bytecodes, so this
    # exception surfaces wherever the main thread is: normally inside accept(), which the
    # signal interrupted. It ends the loop like a `break`. (A C server sets a flag here
    # and has accept() fail with EINTR; the loop then tests the flag.)
    global _shutdown_requested
    if _shutdown_requested:
        return  # a second Ctrl-C must not interrupt the cleanup of the first
    _shutdown_requested = True
    raise _Shutdown(signum)


def reap_children(children: set[int]) -> None:
    """Wait for every child that has exited, without ever blocking."""
    # Ordinary signals are not queued: while SIGCHLD is pending, more exits add nothing.
    # If 50 children exit at once we may get ONE SIGCHLD, so one call must reap all of
    # them; reaping just one per signal leaves zombies behind. WNOHANG makes waitpid()
    # return 0 instead of blocking when children remain but none has exited.
    # C: save errno on entry and restore it on exit, since waitpid() may change it under
    # the interrupted code's feet.
    # No logging here: a handler can interrupt the main thread halfway through writing
    # to stderr, and writing to it again from the handler can fail ("reentrant call").
    # C has the same rule, stricter: only async-signal-safe functions (no printf).
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:  # ECHILD: no children at all
            return
        if pid == 0:  # children exist, none has exited yet
            return
        children.discard(pid)


def install_parent_handlers(children: set[int]) -> None:
    # CPython installs handlers without SA_RESTART, so a signal makes a blocking call
    # fail with EINTR; PEP 475 then retries the call unless the handler raised.
    signal.signal(signal.SIGCHLD, lambda signum, frame: reap_children(children))
    signal.signal(signal.SIGTERM, on_shutdown_signal)
    signal.signal(signal.SIGINT, on_shutdown_signal)


# --- The parent ------------------------------------------------------------------------


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


def fork_session(
    listener: socket.socket, conn: socket.socket, peer: str, protocol: str, children: set[int]
) -> None:
    """Fork a child to serve `conn`; in the parent, close `conn` and remember the child."""
    # Block our signals across fork(), for two reasons:
    # * the child must not run the parent's handlers before run_child() resets them;
    # * a child that exits at once must not be reaped before its pid is in `children`
    #   (its SIGCHLD stays pending until the mask is restored below), or we would keep
    #   a pid that no longer exists, then SIGTERM whatever process reuses it.
    saved_mask = signal.pthread_sigmask(signal.SIG_BLOCK, PARENT_SIGNALS)
    try:
        pid = os.fork()
        if pid == 0:
            run_child(listener, conn, peer, protocol)  # never returns: ends in os._exit()
        children.add(pid)
        log.debug("%s: served by child %d", peer, pid)
    except OSError as exc:  # EAGAIN/ENOMEM: too many processes; drop this one client
        log.error("%s: fork failed: %s", peer, exc)
    finally:
        # Only the parent gets here. The child has its own copy of the connected socket;
        # closing ours is what lets the client see EOF when the child closes it (see the
        # module docstring). Done before unblocking signals, so nothing can skip it.
        conn.close()
        signal.pthread_sigmask(signal.SIG_SETMASK, saved_mask)


def accept_loop(listener: socket.socket, protocol: str, children: set[int]) -> NoReturn:
    """Accept connections forever; only the shutdown signal's exception ends this."""
    while True:
        # Every child that exits sends SIGCHLD, which interrupts accept() (EINTR). CPython
        # runs reap_children, which returns normally, so PEP 475 restarts accept() for us.
        # In C you write that retry yourself (or install the handler with SA_RESTART):
        #     for (;;) {
        #         cfd = accept(lfd, (struct sockaddr *)&addr, &len);
        #         if (cfd >= 0) break;
        #         if (errno == EINTR) { if (stop) goto shutdown; continue; }
        #         if (errno == ECONNABORTED) continue;
        #         perror("accept"); ...
        #     }
        try:
            conn, addr = listener.accept()
        except ConnectionAbortedError:  # ECONNABORTED: the client reset while queued
            continue
        fork_session(listener, conn, f"{addr[0]}:{addr[1]}", protocol, children)


def stop_children(children: set[int]) -> None:
    """SIGTERM every live child, then wait for each one (no zombies left behind)."""
    # From here on we wait for children ourselves; keep the handler out of the way.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    for pid in list(children):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # default action: the child dies at once
    for pid in list(children):
        with contextlib.suppress(ChildProcessError):  # a pending handler reaped it already
            os.waitpid(pid, 0)
        children.discard(pid)


# --- Command line ------------------------------------------------------------------------


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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # logging flushes stderr after every record. That matters with fork(): bytes still
    # sitting in a stdio buffer are copied into the child and written twice (in C, call
    # fflush() before fork() if you printf() to a pipe or file).
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s fork_server[%(process)d] %(levelname)s %(message)s",
    )
    children: set[int] = set()
    listener = open_listener(args.host, args.port)
    try:
        install_parent_handlers(children)
        host, port = listener.getsockname()[:2]
        print(f"listening on {host}:{port}", file=sys.stderr, flush=True)
        accept_loop(listener, args.protocol, children)
    except _Shutdown as stop:
        log.info("%s: shutting down", signal.Signals(stop.signum).name)
    finally:
        listener.close()  # stop accepting: new clients are refused from now on
        stop_children(children)
    return 0


if __name__ == "__main__":
    sys.exit(main())
