"""ok_selectors.py - correct server, one thread, non-blocking sockets and selectors.

Design: every socket is non-blocking and registered with one selector. A connection is read
only while its output buffer is empty; what send() could not take stays in the buffer and the
connection waits for EVENT_WRITE instead of EVENT_READ (so a client that does not read cannot
make the server buffer without bound). A connection that must close (exit, EOF) is closed once
its output buffer has drained.
"""

from __future__ import annotations

import selectors
import socket
import sys
from dataclasses import dataclass, field

from _common import ECHO_CHUNK, MSG_MAX, REPLY, is_exit, make_listener, parse_args


@dataclass(slots=True)
class Connection:
    sock: socket.socket
    out: bytearray = field(default_factory=bytearray)
    closing: bool = False  # close once out is drained


class Server:
    def __init__(self, listener: socket.socket, protocol: str) -> None:
        self.listener = listener
        self.protocol = protocol
        self.selector = selectors.DefaultSelector()
        listener.setblocking(False)
        self.selector.register(listener, selectors.EVENT_READ, None)

    def run(self) -> None:
        while True:
            for key, _ in self.selector.select():
                if key.data is None:
                    self.accept_all()
                elif key.data.out:
                    self.flush(key.data)
                else:
                    self.on_readable(key.data)

    def accept_all(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:  # e.g. EMFILE: try again on the next event
                print(f"accept: {exc}", file=sys.stderr, flush=True)
                return
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ, Connection(sock))

    def drop(self, conn: Connection) -> None:
        self.selector.unregister(conn.sock)
        conn.sock.close()

    def flush(self, conn: Connection) -> None:
        try:
            while conn.out:
                del conn.out[: conn.sock.send(conn.out)]
        except BlockingIOError:
            self.selector.modify(conn.sock, selectors.EVENT_WRITE, conn)
            return
        except OSError:
            self.drop(conn)
            return
        if conn.closing:
            self.drop(conn)
        else:
            self.selector.modify(conn.sock, selectors.EVENT_READ, conn)

    def on_readable(self, conn: Connection) -> None:
        echo = self.protocol == "echo"
        try:
            data = conn.sock.recv(ECHO_CHUNK if echo else MSG_MAX)
        except BlockingIOError:
            return
        except OSError:
            self.drop(conn)
            return
        if not data:
            conn.closing = True
        elif echo:
            conn.out += data
        else:
            conn.out += REPLY
            conn.closing = is_exit(data)
        self.flush(conn)


def main() -> None:
    args = parse_args(__doc__)
    Server(make_listener(args.port), args.protocol).run()


if __name__ == "__main__":
    main()
