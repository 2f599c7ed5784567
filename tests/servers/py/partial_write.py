"""partial_write.py - DEFECT: one send() per chunk; what it did not take is lost.

One thread, non-blocking sockets and one selector like ok_selectors.py, but with no output
buffer: each chunk received (the echoed bytes, or the OK!!! reply) is passed to ONE send()
call, and whatever that send() did not accept - the tail of a short send, or everything on
EAGAIN (BlockingIOError) - is dropped instead of being kept until EVENT_WRITE. Small exchanges
work; a large echo stream sent while the client reads loses data once the socket's send buffer
fills. Meant to be run with the echo profile.

Not a defect: each connection gets a fixed 64 KiB SO_SNDBUF (ok_selectors.py copes with any
size). Without it Linux grows a loopback send buffer past 1 MiB, and the loss would not show
with a 1 MiB stream.
"""

from __future__ import annotations

import selectors
import socket
import sys

from _common import ECHO_CHUNK, MSG_MAX, REPLY, is_exit, make_listener, parse_args

SNDBUF = 65536


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
                else:
                    self.on_readable(key.fileobj)  # type: ignore[arg-type]

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
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
            self.selector.register(sock, selectors.EVENT_READ, True)

    def drop(self, sock: socket.socket) -> None:
        self.selector.unregister(sock)
        sock.close()

    def send_once(self, sock: socket.socket, data: bytes) -> bool:
        """One send() attempt (Python retries EINTR); False when the connection was dropped."""
        try:
            sock.send(data)  # DEFECT: a short send is not finished; the rest is lost
        except BlockingIOError:
            pass  # DEFECT: the whole chunk is lost, no EVENT_WRITE wait
        except OSError:
            self.drop(sock)
            return False
        return True

    def on_readable(self, sock: socket.socket) -> None:
        echo = self.protocol == "echo"
        try:
            data = sock.recv(ECHO_CHUNK if echo else MSG_MAX)
        except BlockingIOError:
            return
        except OSError:
            self.drop(sock)
            return
        if not data:
            self.drop(sock)
        elif echo:
            self.send_once(sock, data)
        elif self.send_once(sock, REPLY) and is_exit(data):
            self.drop(sock)


def main() -> None:
    args = parse_args(__doc__)
    Server(make_listener(args.port), args.protocol).run()


if __name__ == "__main__":
    main()
