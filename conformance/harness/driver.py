"""The load driver: thousands of concurrent connections from one process, on one epoll loop.

A thread or a blocking socket per client cannot reach 10,000 clients, and would measure the
kit instead of the server. Here every socket is non-blocking and watched by one poller
(epoll on Linux), and the work per event is one recv() and one send(), so one process holds
as many connections as the descriptor limit allows (see limits.py).

Load is closed-loop: each connection has at most one message in flight and sends the next
one only when the whole reply has arrived. That is also what the protocol requires in the
`ok` profile (one message per send, no pipelining), and it makes latency well defined: from
the send() of a message to the recv() that completed its reply.

Three phases, each bounded in time:

* `connect`: open the connections with non-blocking connect(), at most WINDOW of them not
  yet served at any moment (more would overflow a 128-deep listen queue and turn dropped SYNs
  into 1 s retransmissions: the driver would be measuring its own impatience). A connection
  counts as served when the reply to its first message has arrived, so this phase measures
  how fast the server takes on new clients (accept, and fork or thread creation).
* `round` (lockstep, for checks) or `run_for` (closed loop for a duration, for benchmarks).
* `close`: end every session the way the protocol says (`exit`, or a half-close in echo),
  and optionally wait for the server to close each connection.

Nothing is hidden: every connection that fails is counted under a named kind of error, and
the driver never retries.
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from conformance import protocols
from conformance.harness.address import family_of
from conformance.harness.client import close_socket, end_session_on
from conformance.harness.limits import ensure_descriptors

#: Connections opened but not yet served, at most (see the module docstring).
WINDOW = 128
#: A request with no complete reply after this long is an error (`timeout`); the connection
#: is dropped. Generous: this bounds a stuck server, it is not a latency requirement.
REQUEST_TIMEOUT = 5.0
#: The connect phase gives up when no connection has been served for this long.
CONNECT_STALL = 5.0
#: How often the loops look for requests past REQUEST_TIMEOUT and report progress.
TICK = 0.25
#: How long `connect` waits for progress before it asks whether any can come (`hopeless`).
HOPELESS_AFTER = 1.0
#: One recv() per readiness event; replies are 5 bytes (ok) or the message size (echo).
RECV_SIZE = 4096


def _closed_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.close()
    return sock


#: The socket of a connection that never opened (its state is _DEAD, so nothing uses it): a
#: closed socket holds no descriptor, and keeps every column one type.
_UNOPENED = _closed_socket()

Progress = Callable[[str, int, int], None]

# Connection states.
_NEW, _CONNECTING, _WAITING, _IDLE, _CLOSING, _DEAD = range(6)

_EPOLLIN = getattr(select, "EPOLLIN", select.POLLIN)
_EPOLLOUT = getattr(select, "EPOLLOUT", select.POLLOUT)


def _poller():
    """epoll where there is one; poll() elsewhere (same calls, timeout in ms)."""
    if hasattr(select, "epoll"):
        return select.epoll()
    return _Poll()


class _Poll:
    """select.poll() with epoll's timeout unit (seconds), for systems without epoll."""

    def __init__(self) -> None:
        self._p = select.poll()
        self.register, self.modify, self.unregister = (
            self._p.register,
            self._p.modify,
            self._p.unregister,
        )

    def poll(self, timeout: float) -> list[tuple[int, int]]:
        return self._p.poll(max(0, int(timeout * 1000)))

    def close(self) -> None:
        pass


def payload(index: int, protocol: str, size: int = 16) -> bytes:
    """The message connection `index` sends: distinct per client, never starting with exit."""
    text = f"c{index:05d}-" if protocol == "echo" else f"msg-{index:06d}-"
    return (text * (size // len(text) + 1)).encode()[:size]


@dataclass
class RunStats:
    """What one `run_for` measured."""

    clients: int
    duration_s: float
    requests: int
    latencies_ns: array = field(default_factory=lambda: array("q"))
    _sorted: list[int] | None = field(default=None, repr=False)

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    def percentile_ms(self, q: float) -> float | None:
        """The q-th percentile of the latencies (nearest rank), in ms; None without any."""
        if not self.latencies_ns:
            return None
        if self._sorted is None or len(self._sorted) != len(self.latencies_ns):
            self._sorted = sorted(self.latencies_ns)  # once, not once per percentile
        k = min(len(self._sorted) - 1, max(0, round(q / 100 * (len(self._sorted) - 1))))
        return self._sorted[k] / 1e6


class Driver:
    """N client connections to one server, driven from a single poller."""

    def __init__(
        self,
        host: str,
        port: int,
        protocol: str = "ok",
        *,
        message_size: int = 16,
        progress: Progress | None = None,
        judge: bool = True,
    ) -> None:
        """`judge=False`: any reply counts, whatever its bytes (for checks outside protocol).

        Only the protocol checks judge the reply's bytes (see Client.reply); elsewhere the
        question is whether the server answered, so a server that replies `OK!!!\\n` fails
        protocol and nothing else. Unjudged, an `ok` reply is complete at its first byte and
        an echo at as many bytes as were sent; stray bytes between messages are ignored.
        """
        self.host, self.port, self.protocol = host, port, protocol
        self.adapter = protocols.get(protocol)
        self.message_size = message_size
        self.judge = judge
        self.progress = progress
        self.errors: Counter[str] = Counter()
        self.socks: list[socket.socket] = []  # _UNOPENED: never opened
        self.state: list[int] = []
        self.sent_at: list[int] = []  # perf_counter_ns of the message in flight
        self.got: list[bytes] = []  # reply bytes received so far for the message in flight
        self.want: list[bytes] = []  # the complete reply expected
        self.unsent: list[bytes] = []  # what send() did not take yet
        self.replied: list[bool] = []  # got the reply to the current round's message
        self.by_fd: dict[int, int] = {}
        #: The connections `connect` got served; rounds count any of them the server has
        #: since closed or reset as silent.
        self.members: list[int] = []
        self.poller = _poller()
        self.connect_s = 0.0
        self.stalled_s = 0.0
        self._closed_well = 0
        self._family = family_of(host)

    def local_ports(self) -> dict[int, str]:
        """Client names by local port, for waiting.py: the connections this driver opened."""
        ports = {}
        for i, sock in enumerate(self.socks):
            if sock is not _UNOPENED and self.state[i] != _DEAD:
                with contextlib.suppress(OSError):
                    ports[sock.getsockname()[1]] = f"D{i}"
        return ports

    # -- bookkeeping ------------------------------------------------------------------------
    @property
    def served(self) -> list[int]:
        """Indexes of the connections that are still open and usable."""
        return [i for i, s in enumerate(self.state) if s in (_IDLE, _WAITING)]

    def _fail(self, i: int, kind: str) -> None:
        self.errors[kind] += 1
        self._drop(i)

    def _drop(self, i: int) -> None:
        if self.state[i] == _DEAD:
            return
        sock = self.socks[i]
        self.state[i] = _DEAD
        try:
            fd = sock.fileno()
            self.by_fd.pop(fd, None)
            self.poller.unregister(fd)
        except (OSError, ValueError, KeyError):
            pass
        close_socket(sock)

    def _report(self, phase: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(phase, done, total)

    # -- sending and receiving --------------------------------------------------------------
    def _send(self, i: int, data: bytes, expect: bytes) -> None:
        self.got[i] = b""
        self.want[i] = expect
        self.state[i] = _WAITING
        self.sent_at[i] = time.perf_counter_ns()
        self._write(i, data)

    def _write(self, i: int, data: bytes) -> None:
        sock = self.socks[i]
        try:
            n = sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:
            self._fail(i, "reset")
            return
        if n < len(data):  # the socket buffer is full: finish when it is writable
            self.unsent[i] = data[n:]
            self.poller.modify(sock.fileno(), _EPOLLIN | _EPOLLOUT)
        elif self.unsent[i]:
            self.unsent[i] = b""
            self.poller.modify(sock.fileno(), _EPOLLIN)

    def _on_event(self, i: int, ev: int) -> bool:
        """Handle readiness of connection i; True when its reply has just completed."""
        st = self.state[i]
        if st == _CONNECTING:
            return self._on_connected(i)
        if ev & _EPOLLOUT and self.unsent[i]:
            self._write(i, self.unsent[i])
            if self.state[i] == _DEAD or not ev & _EPOLLIN:
                return False
        try:
            data = self.socks[i].recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            self._fail(i, "reset" if st != _CLOSING else "close-reset")
            return False
        return self._on_data(i, data)

    def _on_data(self, i: int, data: bytes) -> bool:
        """Judge bytes received on connection i; True when its reply has just completed."""
        st = self.state[i]
        if st == _CLOSING:
            return self._on_closing_data(i, data)
        if not data:
            # The server closed a session the client had not ended: while the client waited
            # for a reply (`eof`), or after replying, while it had nothing to say (`idle-closed`:
            # an idle or keep-alive timeout, e.g. Apache's KeepAliveTimeout of 5 s).
            self._fail(i, "idle-closed" if st == _IDLE else "eof")
            return False
        if st != _WAITING:
            if self.judge:
                self._fail(i, "unsolicited")  # bytes nobody asked for
            return False
        got = self.got[i] + data if self.got[i] else data
        want = self.want[i]
        if not self.judge or self.adapter.framed:
            # Framed adapters (want is the request): complete by the adapter's framing,
            # then judged by the adapter when judging.
            self.got[i] = got
            if not self.adapter.complete(want, got):
                return False
            if self.judge and self.adapter.judge(want, got) is not None:
                self._fail(i, "wrong-reply")
                return False
            self.state[i] = _IDLE
            return True
        if len(got) < len(want):
            if not want.startswith(got):
                self._fail(i, "wrong-reply")
                return False
            self.got[i] = got
            return False
        if got != want:
            self._fail(i, "wrong-reply")
            return False
        self.state[i] = _IDLE
        return True

    def _expected(self, data: bytes) -> bytes:
        """The reply expected to `data` (the teaching profiles), else `data` itself: a framed
        adapter's reply is judged by the adapter, which needs the request."""
        expected = self.adapter.expected_reply(data)
        return data if expected is None else expected

    def _message(self, i: int) -> bytes:
        if self.adapter.framed:
            return self.adapter.request(i, self.message_size)
        return payload(i, self.protocol, self.message_size)

    # -- phase 1: connect -------------------------------------------------------------------
    def connect(
        self,
        count: int,
        stall: float = CONNECT_STALL,
        limit: float | None = None,
        window: int = WINDOW,
        hopeless: Callable[[], bool] | None = None,
    ) -> int:
        """Open `count` connections, each served once (first message answered).

        Returns how many were served; the others are counted in `errors` (`connect`,
        `connect-timeout`, `unserved`, ...). Ends when all are served, when none has been for
        `stall` seconds, or after `limit` seconds (default: 60 s plus 10 ms per client);
        or when none has been for HOPELESS_AFTER seconds and `hopeless()` says none can be
        while the served ones stay connected (asked once per stall). `stalled_s` says how
        long the last stall lasted.
        """
        ensure_descriptors(count + len(self.socks))
        t0 = time.monotonic()
        give_up = t0 + (limit if limit is not None else 60.0 + count / 100)
        base = len(self.socks)
        opened = served = 0
        in_flight = 0
        errors_before = self.errors.total()
        last_progress = last_tick = t0
        asked = -1.0  # the stall `hopeless` was last asked in (its last_progress)
        while served + self.errors.total() - errors_before < count:
            while opened < count and in_flight < window:
                if self._open(base + opened):
                    in_flight += 1
                opened += 1
            now = time.monotonic()
            if now - last_progress > stall or now > give_up:
                break
            ask = hopeless is not None and asked != last_progress
            if ask and now - last_progress > HOPELESS_AFTER:
                asked = last_progress
                if hopeless is not None and hopeless():
                    break
            if now - last_tick > TICK:
                last_tick = now
                self._report("connect", served, count)
            for fd, ev in self.poller.poll(TICK):
                i = self.by_fd.get(fd)
                if i is None:
                    continue
                was = self.state[i]
                if self._on_event(i, ev):
                    served += 1
                    in_flight -= 1
                    last_progress = time.monotonic()
                elif self.state[i] == _DEAD and was in (_CONNECTING, _WAITING):
                    in_flight -= 1
        for i in range(base, base + opened):
            if self.state[i] == _CONNECTING:
                self._fail(i, "connect-timeout")
            elif self.state[i] == _WAITING:
                self._fail(i, "unserved")
        if opened < count:
            self.errors["not-attempted"] += count - opened
        ready = [i for i in range(base, base + opened) if self.state[i] == _IDLE]
        self.members += ready
        # Up to the last client served: a phase that ended by stalling does not dilute the
        # rate at which clients *were* taken on with the time spent waiting for the rest.
        self.connect_s = (last_progress if ready else time.monotonic()) - t0
        self.stalled_s = time.monotonic() - last_progress
        self._report("connect", len(ready), count)
        return len(ready)

    def _open(self, i: int) -> bool:
        """Start connecting connection i (always appended, even when it fails at once)."""
        self.state.append(_DEAD)
        self.sent_at.append(0)
        self.got.append(b"")
        self.want.append(b"")
        self.unsent.append(b"")
        self.replied.append(False)
        self.socks.append(_UNOPENED)
        try:
            sock = socket.socket(self._family, socket.SOCK_STREAM)
        except OSError as exc:  # EMFILE/ENFILE/ENOBUFS: the kit itself ran out
            self.errors[f"client-{errno.errorcode.get(exc.errno or 0, 'socket')}"] += 1
            return False
        sock.setblocking(False)
        code = sock.connect_ex((self.host, self.port))
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            self.errors["connect"] += 1
            return False
        self.socks[i] = sock
        self.state[i] = _CONNECTING
        fd = sock.fileno()
        self.by_fd[fd] = i
        self.poller.register(fd, _EPOLLOUT)
        return True

    def _on_connected(self, i: int) -> bool:
        sock = self.socks[i]
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            self._fail(i, "connect")
            return False
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.poller.modify(sock.fileno(), _EPOLLIN)
        data = self._message(i)
        self._send(i, data, self._expected(data))
        return False

    # -- phase 2a: lockstep rounds (checks) -------------------------------------------------
    def round(self, timeout: float, messages: Callable[[int], bytes] | None = None) -> list[int]:
        """One message on every open connection, all sent before any reply is read.

        Returns the indexes that got no complete reply within `timeout`, among all the
        connections `connect` got served: one the server has closed or reset since is silent
        too (`errors` says how it ended). A silent one that is still open stays open, so a
        later round can tell a slow server from a dead one.
        """
        live = self.served
        for i in live:
            if self.state[i] == _WAITING:
                self.state[i] = _IDLE  # the previous round's straggler: give up on it
            data = messages(i) if messages else self._message(i)
            self._send(i, data, self._expected(data))
            self.replied[i] = False
        deadline = time.monotonic() + timeout
        pending = sum(1 for i in live if self.state[i] == _WAITING)
        while pending and time.monotonic() < deadline:
            for fd, ev in self.poller.poll(min(TICK, max(0.0, deadline - time.monotonic()))):
                ready = self.by_fd.get(fd)
                if ready is not None and self._on_event(ready, ev):
                    self.replied[ready] = True
                    pending -= 1
            pending = sum(1 for i in live if self.state[i] == _WAITING)
        return [i for i in self.members if self.state[i] == _DEAD or not self.replied[i]]

    # -- phase 2b: closed loop for a duration (benchmarks) ----------------------------------
    def run_for(self, duration: float, request_timeout: float = REQUEST_TIMEOUT) -> RunStats:
        """Every open connection sends, waits for the reply, sends again, for `duration` s.

        Requests/s counts replies completed within the window; requests still in flight at
        its end get up to `request_timeout` to finish (their latency counts, they do not).
        """
        live = self.served
        stats = RunStats(len(live), duration, 0)
        lat = stats.latencies_ns
        msgs = {i: self._message(i) for i in live}
        expected = {i: self._expected(m) for i, m in msgs.items()}
        for i in live:
            self._send(i, msgs[i], expected[i])
        start = time.monotonic()
        end, stop_at = start + duration, start + duration + request_timeout
        next_tick = start + TICK
        done, outstanding = 0, len(live)
        # The hot loop: locals only, and a fast path for the usual case (the whole reply in
        # one recv(), the whole message in one send()); anything else takes the general path.
        perf, poll = time.perf_counter_ns, self.poller.poll
        state, sent_at, by_fd, socks, want, got = (
            self.state,
            self.sent_at,
            self.by_fd,
            self.socks,
            self.want,
            self.got,
        )
        while outstanding and (now := time.monotonic()) < stop_at:
            sending = now < end
            for fd, ev in poll(max(0.0, min(next_tick, stop_at) - now)):
                found = by_fd.get(fd)
                if found is None:
                    continue
                i = found
                was = state[i]
                if was == _WAITING and ev == _EPOLLIN and not got[i]:
                    try:
                        data = socks[i].recv(RECV_SIZE)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        self._fail(i, "reset")
                        outstanding -= 1
                        continue
                    if data == want[i]:
                        t = perf()
                        lat.append(t - sent_at[i])
                        if sending:
                            done += 1
                            m = msgs[i]
                            sent_at[i] = perf()
                            try:
                                n = socks[i].send(m)
                            except (BlockingIOError, InterruptedError):
                                n = 0
                            except OSError:
                                self._fail(i, "reset")
                                outstanding -= 1
                                continue
                            if n < len(m):  # rare: finish the message when writable
                                self.unsent[i] = m[n:]
                                self.poller.modify(fd, _EPOLLIN | _EPOLLOUT)
                        else:
                            state[i] = _IDLE
                            outstanding -= 1
                        continue
                    completed = self._on_data(i, data)
                else:
                    completed = self._on_event(i, ev)
                if not completed:
                    if was == _WAITING and state[i] == _DEAD:
                        outstanding -= 1
                    continue
                lat.append(perf() - sent_at[i])
                if sending:
                    done += 1
                    self._send(i, msgs[i], expected[i])
                    if state[i] == _DEAD:
                        outstanding -= 1
                else:
                    outstanding -= 1
            now = time.monotonic()
            if sending and now >= end:
                stats.requests, stats.duration_s = done, now - start
            if now >= next_tick:
                next_tick = now + TICK
                outstanding -= self._expire(request_timeout)
                if now < end:
                    self._report("run", round(now - start), round(duration))
        if time.monotonic() < end:  # every connection failed before the end
            stats.requests, stats.duration_s = done, time.monotonic() - start
        for i in live:
            if state[i] == _WAITING:
                self._fail(i, "timeout")
        return stats

    def _expire(self, request_timeout: float) -> int:
        """Fail the requests that have waited longer than `request_timeout`; how many."""
        limit = time.perf_counter_ns() - int(request_timeout * 1e9)
        late = [i for i, s in enumerate(self.state) if s == _WAITING and self.sent_at[i] < limit]
        for i in late:
            self._fail(i, "timeout")
        return len(late)

    # -- phase 3: close ---------------------------------------------------------------------
    def close(self, wait: float = 0.0, keep_open: bool = False) -> int:
        """End every open session (`exit`, or half-close in echo); returns how many ended well.

        With `wait` > 0, each must then get its `OK!!!` (ok) and see the server close within
        `wait` seconds, or it counts as an error (`close-timeout`, `close-reply`). With 0,
        the sockets are closed at once, as `Client.end` does (both: `end_session_on`); with
        `keep_open`, they are kept until `shutdown` (see Server.close_later).
        """
        live = self.served
        self._closed_well = 0
        for i in live:
            self.state[i] = _CLOSING
            self.got[i] = b""
            try:
                end_session_on(self.socks[i], self.adapter, strict=True)
            except OSError:
                self._fail(i, "close-reset")
        if wait > 0:
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and any(self.state[i] == _CLOSING for i in live):
                for fd, ev in self.poller.poll(min(TICK, max(0.0, deadline - time.monotonic()))):
                    ready = self.by_fd.get(fd)
                    if ready is not None:
                        self._on_event(ready, ev)
            for i in live:
                if self.state[i] == _CLOSING:
                    self._fail(i, "close-timeout")
        else:
            self._closed_well = sum(1 for i in live if self.state[i] == _CLOSING)
        if keep_open and wait <= 0:
            return self._closed_well
        self.shutdown()
        return self._closed_well

    def _on_closing_data(self, i: int, data: bytes) -> bool:
        if data:
            self.got[i] += data
            return False
        if self.adapter.exit_reply_ok(self.got[i]) is None:
            self._closed_well += 1
        else:
            self.errors["close-reply"] += 1
        self._drop(i)
        return False

    def shutdown(self) -> None:
        """Close every socket and the poller (idempotent)."""
        for i, sock in enumerate(self.socks):
            if self.state[i] != _DEAD:
                self.state[i] = _DEAD
                close_socket(sock)
        self.by_fd.clear()
        self.poller.close()

    def __enter__(self) -> Driver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
