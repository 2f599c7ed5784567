"""proto_server.py - tiny servers of other protocols, for the protocol adapters' kit tests.

    python proto_server.py --port PORT --protocol line|http|resp|netstring
                           [--model thread|fork|select] [--defect NAME]

Protocols: `line` answers each line with `ok <line>`; `http` answers each HTTP/1.1 request
with a 200 and a Content-Length body, keeps the connection open unless the request says
`Connection: close`; `resp` answers `PING` with `+PONG` (`PING msg` with the bulk `msg`),
`QUIT` with `+OK` and a close; `netstring` answers `N:text,` with `N:TEXT,` (the user
adapter of tests/protocols/test_adapters.py). Without `--defect` every one is correct; each
defect is one change:

* `leak`: one descriptor per connection is duplicated and never closed (FDL-1);
* `no_reap`: a fork server that never waits for its children (ZOMB-1);
* `quit_no_close`: the exit request is answered but the connection stays open (EXIT-1);
* `lowercase`: netstring replies are not upper-cased (PROTO-6, judged by the user adapter);
* `serial`: the thread model serves one connection at a time, in the accept loop (CONC-*);
* `shared_conn`: the thread model replies on the newest connection, kept in a global (ISO-2);
* HTTP responses malformed by RFC 9112, each framed so that a lenient reader finds a reply
  (PROTO-6): `negative_length` (`Content-Length: -1`), `conflicting_length` (two that
  disagree), `signed_length` (`+24`), `notchunked` (`Transfer-Encoding: notchunked` with a
  chunked body), `chunk_no_crlf` (a chunk's data without its CRLF).
"""

from __future__ import annotations

import argparse
import os
import selectors
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import accept, fork_child, make_listener, reap_children, start_thread

#: handler(buffer) -> None while a request is incomplete, else (bytes used, reply, close).
Handler = Callable[[bytes], "tuple[int, bytes, bool] | None"]
DEFECT = ""
#: The newest connection (the shared_conn defect replies on it).
NEWEST: socket.socket | None = None


def handle_line(buf: bytes) -> tuple[int, bytes, bool] | None:
    end = buf.find(b"\n")
    if end < 0:
        return None
    return end + 1, b"ok " + buf[:end].rstrip(b"\r") + b"\n", False


#: The HTTP defects: how each frames its body, all of them read as framed by a lenient reader
#: (the last Content-Length, int() of it, `chunked` found anywhere in Transfer-Encoding).
HTTP_FRAMING = {
    "negative_length": b"Content-Length: -1\r\n",  # the reply ends inside its own head
    "conflicting_length": b"Content-Length: 99\r\nContent-Length: %(n)d\r\n",
    "signed_length": b"Content-Length: +%(n)d\r\n",
    "notchunked": b"Transfer-Encoding: notchunked\r\n",
    "chunk_no_crlf": b"Transfer-Encoding: chunked\r\n",
}


def handle_http(buf: bytes) -> tuple[int, bytes, bool] | None:
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    close = b"connection: close" in buf[:end].lower()
    body = b"hello from proto_server\n"
    framing = HTTP_FRAMING.get(DEFECT, b"Content-Length: %(n)d\r\n") % {b"n": len(body)}
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + framing
    if b"chunked" in framing:
        # DEFECT (chunk_no_crlf): the chunk's data is not followed by CRLF.
        tail = b"" if DEFECT == "chunk_no_crlf" else b"\r\n"
        body = b"%x\r\n%s%s0\r\n\r\n" % (len(body), body, tail)
    if close:
        head += b"Connection: close\r\n"
    return end + 4, head + b"\r\n" + body, close and DEFECT != "quit_no_close"


def handle_resp(buf: bytes) -> tuple[int, bytes, bool] | None:
    if not buf.startswith(b"*"):
        end = buf.find(b"\r\n")  # an inline command: PING\r\n
        if end < 0:
            return None
        args, used = buf[:end].split(), end + 2
    else:
        parsed = _resp_array(buf)
        if parsed is None:
            return None
        args, used = parsed
    name = args[0].upper() if args else b""
    if name == b"PING":
        reply = b"$%d\r\n%s\r\n" % (len(args[1]), args[1]) if len(args) > 1 else b"+PONG\r\n"
        return used, reply, False
    if name == b"QUIT":
        return used, b"+OK\r\n", DEFECT != "quit_no_close"
    return used, b"-ERR unknown command\r\n", False


def _resp_array(buf: bytes) -> tuple[list[bytes], int] | None:
    end = buf.find(b"\r\n")
    if end < 0:
        return None
    count, pos, args = int(buf[1:end]), end + 2, []
    for _ in range(count):
        end = buf.find(b"\r\n", pos)
        if end < 0:
            return None
        size = int(buf[pos + 1 : end])
        if len(buf) < end + 2 + size + 2:
            return None
        args.append(buf[end + 2 : end + 2 + size])
        pos = end + 2 + size + 2
    return args, pos


def handle_netstring(buf: bytes) -> tuple[int, bytes, bool] | None:
    colon = buf.find(b":")
    if colon < 0:
        return None
    size = int(buf[:colon])
    if len(buf) < colon + 1 + size + 1:
        return None
    text = buf[colon + 1 : colon + 1 + size]
    reply = text if DEFECT == "lowercase" else text.upper()
    return colon + size + 2, b"%d:%s," % (len(reply), reply), False


HANDLERS: dict[str, Handler] = {
    "line": handle_line,
    "http": handle_http,
    "resp": handle_resp,
    "netstring": handle_netstring,
}


def serve(conn: socket.socket, handler: Handler) -> None:
    """One session: requests in, replies out, until EOF, a reset or a closing request."""
    buf = b""
    with conn:
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            while (done := handler(buf)) is not None:
                used, reply, close = done
                buf = buf[used:]
                out = NEWEST if DEFECT == "shared_conn" and NEWEST is not None else conn
                try:
                    out.sendall(reply)  # DEFECT (shared_conn): maybe another client's socket
                except OSError:
                    return
                if close:
                    return


def run_thread(listener: socket.socket, handler: Handler) -> None:
    global NEWEST
    while True:
        conn = NEWEST = accept(listener)
        if DEFECT == "leak":
            os.dup(conn.fileno())  # DEFECT: a descriptor per connection, never closed
        if DEFECT == "serial":
            serve(conn, handler)  # DEFECT: no thread, the next client waits for this one
            continue
        start_thread(serve, conn, handler)


def run_fork(listener: socket.socket, handler: Handler) -> None:
    if DEFECT != "no_reap":  # DEFECT (no_reap): no SIGCHLD handler, children stay zombies
        signal.signal(signal.SIGCHLD, reap_children)
    while True:
        conn = accept(listener)
        if fork_child() == 0:
            try:
                listener.close()
                serve(conn, handler)
            finally:
                os._exit(0)
        conn.close()


def run_select(listener: socket.socket, handler: Handler) -> None:
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)
    buffers: dict[socket.socket, bytes] = {}
    while True:
        for key, _ in sel.select():
            if key.data is None:
                conn, _ = listener.accept()
                sel.register(conn, selectors.EVENT_READ, "conn")
                buffers[conn] = b""
                continue
            conn = key.fileobj  # type: ignore[assignment]
            try:
                data = conn.recv(65536)
            except OSError:
                data = b""
            close = not data
            buffers[conn] += data
            while not close and (done := handler(buffers[conn])) is not None:
                used, reply, close = done
                buffers[conn] = buffers[conn][used:]
                try:
                    conn.sendall(reply)
                except OSError:
                    close = True
            if close:
                sel.unregister(conn)
                del buffers[conn]
                conn.close()


def main() -> None:
    global DEFECT
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--protocol", choices=sorted(HANDLERS), required=True)
    parser.add_argument("--model", choices=("thread", "fork", "select"), default="thread")
    parser.add_argument("--defect", default="")
    args = parser.parse_args()
    DEFECT = args.defect
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    listener = make_listener(args.port)
    runner = {"thread": run_thread, "fork": run_fork, "select": run_select}[args.model]
    runner(listener, HANDLERS[args.protocol])


if __name__ == "__main__":
    main()
