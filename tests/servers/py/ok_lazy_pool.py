"""ok_lazy_pool.py - correct server, a pool of worker threads started on demand, up to 32.

Design: one thread multiplexes, a pool of workers does the work, and the pool grows the way
Java's ThreadPoolExecutor does below its core size: for every ready connection the main
thread starts a new worker, even if others are idle, until there are POOL_SIZE; after that it
puts ready connections on a queue the workers take them from. Workers never end. So the
thread count grows over the first sessions and then stays put: a pool, not a leak.

The main thread waits in epoll for the listener and for idle connections, each registered
with EPOLLONESHOT: once a connection is reported ready it is disarmed, so exactly one worker
serves it (one recv() and its reply), then re-arms it, or closes it when the session is over.
The epoll set is the kernel's and may be changed from any thread. Connections are blocking:
a worker is handed one only when it has data (or EOF) to read.
"""

from __future__ import annotations

import queue
import select
import socket
import sys
import threading

from _common import (
    ECHO_CHUNK,
    MSG_MAX,
    REPLY,
    is_exit,
    make_listener,
    parse_args,
    start_thread,
)

POOL_SIZE = 32
ARM = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLONESHOT


class Pool:
    """The epoll set, the open connections by descriptor, the work queue and its workers."""

    def __init__(self, protocol: str) -> None:
        self.echo = protocol == "echo"
        self.epoll = select.epoll()
        self.lock = threading.Lock()  # guards conns (the main thread adds, workers remove)
        self.conns: dict[int, socket.socket] = {}
        self.ready: queue.SimpleQueue[socket.socket] = queue.SimpleQueue()
        self.workers = 0  # only the main thread starts workers

    def add(self, conn: socket.socket) -> None:
        with self.lock:
            self.conns[conn.fileno()] = conn
        self.epoll.register(conn.fileno(), ARM)

    def dispatch(self, fd: int) -> None:
        """A connection is ready: a new worker while the pool is below its size, else queue."""
        with self.lock:
            conn = self.conns[fd]
        if self.workers < POOL_SIZE:
            self.workers += 1
            start_thread(self.worker, conn)
        else:
            self.ready.put(conn)

    def worker(self, conn: socket.socket) -> None:
        while True:
            if self.serve_ready(conn):
                self.epoll.modify(conn.fileno(), ARM)  # wait for its next message
            else:
                self.close(conn)
            conn = self.ready.get()

    def serve_ready(self, conn: socket.socket) -> bool:
        """One recv() and its answer; False once the session is over."""
        try:
            data = conn.recv(ECHO_CHUNK if self.echo else MSG_MAX)
            if not data:
                return False
            conn.sendall(data if self.echo else REPLY)
        except OSError:
            return False
        return self.echo or not is_exit(data)

    def close(self, conn: socket.socket) -> None:
        # Out of the table and the epoll set before close(): once closed, its descriptor
        # number may come back at once for a new connection.
        with self.lock:
            del self.conns[conn.fileno()]
        self.epoll.unregister(conn.fileno())
        conn.close()


def accept_ready(listener: socket.socket) -> socket.socket | None:
    """accept() on the non-blocking listener epoll reported ready; None if nothing is
    there after all (a client that reset while queued) or on an error such as EMFILE."""
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return None
    except OSError as exc:
        print(f"accept: {exc}", file=sys.stderr, flush=True)
        return None
    conn.setblocking(True)
    return conn


def main() -> None:
    args = parse_args(__doc__)
    listener = make_listener(args.port)
    listener.setblocking(False)  # never wait in accept(): the main thread also dispatches
    pool = Pool(args.protocol)
    pool.epoll.register(listener.fileno(), select.EPOLLIN)
    while True:
        for fd, _ in pool.epoll.poll():
            if fd != listener.fileno():
                pool.dispatch(fd)
            elif conn := accept_ready(listener):
                pool.add(conn)


if __name__ == "__main__":
    main()
