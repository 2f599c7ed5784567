"""The server under test as the checks see it: connect, inspect, tell whether it is alive.

A `Target` says where the server comes from: a launch command (a fresh server for every
check, so a defect shows in its own category instead of cascading) or an address (a server
somebody else runs; one instance shared by all checks). A `Server` is one check's view of
it, with its own transcript and its clients, closed when the check ends.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import shlex
import socket
import string
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from conformance.errors import UsageError
from conformance.harness.address import family_of
from conformance.harness.client import Client, Transcript, end_session_on, peer_closed
from conformance.harness.launch_ahead import LaunchAhead
from conformance.harness.launcher import LaunchedServer
from conformance.harness.polling import wait_until
from conformance.harness.processes import (
    ServerProcess,
    describe_exit,
    holders_of_connection,
    listener_owner,
)
from conformance.harness.timeouts import LOOPBACK_TIMEOUT
from conformance.harness.waiting import Silence, StuckWatch, cannot_close, explain

if TYPE_CHECKING:
    from conformance.protocols.base import ProtocolAdapter

#: How long the exit status of a server seen dead may take to become available.
DEATH_STATUS_WAIT = 0.5


def _references_dir() -> Path:
    """Where the reference servers' files are: the package conformance.reference_servers when
    the kit is installed (its source is the repository's top-level reference_servers/, which
    is also where a source checkout without an install finds them)."""
    import importlib.util

    spec = importlib.util.find_spec("conformance.reference_servers")
    if spec is None or spec.origin is None:
        return Path(__file__).resolve().parents[2] / "reference_servers"
    return Path(spec.origin).resolve().parent


_REFERENCES = _references_dir()


def _reference(name: str) -> str:
    """The launch command of a reference server, run by file with `python -S`.

    They use only the standard library, so skipping `site` (and the .pth files it runs) is
    safe, and saves about 25 ms per launch: the kit starts a fresh server for every check and
    every generated scenario, dozens per run.

    `--log-level WARNING`: their INFO lines (one per connect and disconnect) go to a file
    nobody reads, and in a forked Python child they cost about 1.4 ms a session, as logging
    touches objects on many pages and each first touch copies a page (copy-on-write). The
    fd-leak workload alone runs 200 sessions. Warnings and errors, what a failure message
    quotes from the stderr tail, are still written.
    """
    path = shlex.quote(str(_REFERENCES / f"{name}_server.py"))
    return (
        f"{{python}} -S {path} --host 127.0.0.1 --port {{port}} --protocol {{protocol}} "
        "--log-level WARNING"
    )


#: The built-in reference servers (`--server NAME`). {python} is this interpreter.
BUILTIN_SERVERS: dict[str, str] = {
    name: _reference(name) for name in ("fork", "thread", "select", "pool")
}


class TargetError(UsageError):
    """A server to check that cannot work (nothing listens at its address), with the reason."""


@dataclass(frozen=True, slots=True)
class Target:
    mode: str  # "launch" | "address"
    host: str
    port: int | None
    command: str | None = None

    @property
    def fixed_port(self) -> bool:
        """Launch mode with a port the server must use (given, or hard-coded in it)."""
        return self.mode == "launch" and self.port is not None

    def describe(self) -> dict[str, object]:
        if self.mode == "launch":
            return {"mode": "launch", "command": self.command, "port": self.port}
        return {"mode": "address", "address": f"{self.host}:{self.port}", "port": self.port}


def is_loopback(host: str) -> bool:
    """127.0.0.0/8 and ::1, written as addresses (a name could resolve anywhere)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def fill_command(command: str, protocol: str) -> str:
    return command.replace("{python}", sys.executable).replace("{protocol}", protocol)


def check_reachable(host: str, port: int, protocol: str = "ok") -> None:
    """Address mode: raise TargetError if nothing accepts connections there.

    The probe is a session, so it ends like one (`exit`, or EOF in echo), not with a bare
    close that a server ignoring EOF would choke on before any check began.
    """
    family = family_of(host)
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(LOOPBACK_TIMEOUT)
        try:
            s.connect((host, port))
        except OSError as exc:
            raise TargetError(
                f"nothing accepts connections at {host}:{port} ({exc.strerror or exc})"
            ) from exc
        from conformance import protocols

        with contextlib.suppress(OSError):
            end_session_on(s, protocols.get(protocol))
            s.recv(64)


_NAMES = string.ascii_uppercase


#: Samples kept per server (`Server.sample`): one per session for the short runs, every
#: SAMPLE_EVERY sessions for the long ones.
SAMPLES_KEPT = 120


@dataclass
class SeenThisCheck:
    """How the server ends sessions, as seen so far in the current check (`Server.ended`).

    Kept for the whole check, not per Server: a check that launches a fresh server for each
    generated example (PROTO-1, the scenario checks) would otherwise wait out the same
    deadlines once per example on a server that never replies to `exit` or never closes
    after it. Forgotten before each check (`forget`), so what one check saw never changes
    how another drives the server.
    """

    #: The server let an exit request go unanswered.
    exit_unanswered: bool = False
    #: Whether the server closed a session after its `exit`; None until the first one.
    closes_after_exit: bool | None = None

    def forget(self) -> None:
        self.exit_unanswered = False
        self.closes_after_exit = None


SEEN_THIS_CHECK = SeenThisCheck()


#: Models whose accept loop hands connections to threads of the same process.
THREADED = frozenset({"thread", "pool"})
#: Clients `connect_many` connects together (see `Server.connect_together`).
TOGETHER = 2


@dataclass
class Server:
    """One check's handle on the server under test."""

    host: str
    port: int
    protocol: str
    model: str
    launched: LaunchedServer | None = None
    process: ServerProcess | None = None
    transcript: Transcript = field(default_factory=Transcript)
    clients: list[Client] = field(default_factory=list)
    #: Set when children of ended sessions were seen to outlive them (see sessions.py).
    lingering: bool = False
    #: Children of ended sessions seen to spin instead of exiting (lingering.py).
    spinners: set[int] = field(default_factory=set)
    #: Clients whose sessions the kit ended, kept open until the server closes its end
    #: (see `ended`), at the latest until the check is over.
    ending: list[Client] = field(default_factory=list)
    #: Set when `retire` found the server dead already (see deaths.py).
    died_before_retired: bool = False
    #: What else closes connections when the check is over (`close_later`).
    closers: list[Callable[[], object]] = field(default_factory=list)
    #: What the kit saw before the checks when the server closes the connection after each
    #: reply, as the protocol lets it (liveness.closes_after_reply): sessions of one request,
    #: held open with `Client.hold` where a check needs one open. None: sessions of many.
    one_reply: str | None = None
    #: The server's processes, zombies, descriptors and threads after each of the sessions
    #: a check ran (`sample`): the HTML report draws them (a leak climbs, a pool levels off).
    samples: list[dict[str, int]] = field(default_factory=list)
    #: Whole sessions run so far by `run_sessions` and `churn_sessions` (sessions.py).
    sessions_done: int = 0
    _counter: Iterator[int] = field(default_factory=itertools.count)

    def sample(self) -> None:
        """Count the server's live children, zombies, descriptors and threads now, after
        `sessions_done` sessions (nothing without a visible process; at most SAMPLES_KEPT)."""
        proc = self.process
        if proc is None or len(self.samples) >= SAMPLES_KEPT:
            return
        try:
            counts = {
                "session": self.sessions_done,
                "children": len(proc.live_descendants()),
                "zombies": len(proc.zombie_descendants()),
                "fds": proc.fd_count(),
                "threads": proc.thread_count(),
            }
        except (psutil.Error, OSError):
            return  # it died: the check says so, the picture just ends
        self.samples.append(counts)

    def connect(self, name: str | None = None, timeout: float = LOOPBACK_TIMEOUT) -> Client:
        """Open a client (named A, B, ... in the transcript); it is closed after the check."""
        n = next(self._counter)
        if name is None:
            name = _NAMES[n] if n < len(_NAMES) else f"C{n}"
        client = Client.connect(self.host, self.port, name, self.transcript, timeout)
        self._speak(client)
        self.clients.append(client)
        return client

    @property
    def adapter(self) -> ProtocolAdapter:
        """The protocol adapter this server is checked with (see conformance/protocols)."""
        from conformance import protocols

        return protocols.get(self.protocol)

    def _speak(self, client: Client) -> None:
        adapter = self.adapter
        client.adapter = adapter
        client.on_silence = lambda: self.where_it_waits(client.name)
        client.on_end = self.ended

    def where_it_waits(self, waiting: str = "", others: Mapping[int, str] | None = None) -> Silence:
        """What each of the server's threads is blocked in while client `waiting` gets no
        reply: evidence lines, and a cause when they show one (waiting.py). Nothing
        without a visible process. `others`: connections that are not Clients (a Driver's),
        by local port."""
        if self.process is None or not self.process.alive():
            return Silence()
        clients = {**(others or {}), **{c.local_address[1]: c.name for c in self.clients}}
        return explain(self.process.tree_pids(recent=True), self.port, clients, waiting)

    def connect_many(
        self, count: int, prefix: str = "C", timeout: float = LOOPBACK_TIMEOUT
    ) -> list[Client]:
        """`count` clients connected in parallel (see burst.connect_all), the first two of
        them together (see `connect_together`)."""
        head = self.connect_together([f"{prefix}{i}" for i in range(min(count, TOGETHER))])
        if count <= TOGETHER:
            return head
        rest = self._connect_all([f"{prefix}{i}" for i in range(TOGETHER, count)], timeout)
        self.transcript.add(f"opened {count} clients {prefix}0..{prefix}{count - 1} at once")
        return head + rest

    def connect_together(self, names: list[str], timeout: float = LOOPBACK_TIMEOUT) -> list[Client]:
        """Clients whose connections reach the server's accept queue before it accepts any.

        A thread server that hands the accepted descriptor to its thread through a variable
        the next accept() overwrites (a global, or &cfd) serves two connections right only
        when its first thread happens to read the variable before the second accept: a
        race the scheduler decides. Where the kit launched a server whose connections go to
        threads (model thread or pool), it stops the server (SIGSTOP) while these connect,
        and resumes it (SIGCONT) once they wait in its accept queue: its accept loop then
        takes them back to back, and the race is lost every run, not some runs. Other
        servers are not stopped (an event loop's epoll_wait() returns EINTR on SIGCONT).
        """
        pause = self.stoppable()
        clients = self._connect_all(names, timeout, pause)
        self.transcript.add(
            f"opened {', '.join(names)} while the server was stopped (SIGSTOP), then resumed "
            "it (SIGCONT): it accepted them back to back"
            if pause
            else f"opened {', '.join(names)} at once"
        )
        return clients

    def stoppable(self) -> list[int] | None:
        """The process to SIGSTOP so that what clients send meanwhile reaches the server's
        threads all at once (see connect_together): a thread or pool server the kit
        launched; None for the others."""
        if self.model in THREADED and self.launched is not None and self.process is not None:
            return [self.process.pid]
        return None

    def _connect_all(
        self, names: list[str], timeout: float, pause: list[int] | None = None
    ) -> list[Client]:
        from conformance.harness.burst import connect_all
        from conformance.harness.failure import fail

        try:
            socks = connect_all(self.host, self.port, len(names), timeout, pause)
        except OSError as exc:
            self.transcript.add(f"tried to open {len(names)} clients at once")
            fail(
                f"the server accepts {len(names)} connections within {timeout:.0f} s",
                f"it did not: {exc}",
                did=self.transcript.tail(),
            )
        clients = []
        for name, sock in zip(names, socks):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = Client(sock, name, self.transcript)
            self._speak(client)
            clients.append(client)
        self.clients += clients
        return clients

    def retire(self) -> None:
        """Done with it: close the clients and stop a server the kit launched (address mode:
        only the clients). A check that shares a server across checks (fd-leak's workload)
        calls this once it has what it needs, so that a server with a fixed port frees the
        port for the next check at once. A server found dead here died by itself: that is
        remembered (`died_before_retired`), as its stop would hide it."""
        if self.launched is not None and not self.launched.ended_by_kit and not self.alive():
            self.died_before_retired = True
        self.close_clients()
        if self.launched is not None:
            LAUNCH_AHEAD.retire(self.launched)

    def close_clients(self) -> None:
        for client in self.clients:
            with contextlib.suppress(OSError):
                client.close()
        for client in self.ending:
            with contextlib.suppress(OSError):
                client.close(record=False)
        for closer in self.closers:
            with contextlib.suppress(OSError):
                closer()
        self.clients.clear()
        self.ending.clear()
        self.closers.clear()

    def close_later(self, closer: Callable[[], object]) -> None:
        """Run `closer` (it closes connections) when the check is over, not in the middle.

        A connection the kit closes is a client that leaves; a server that writes to it
        afterwards may die of SIGPIPE, a moment later. Closed after the verdict, that death
        cannot land inside a check that is not about how sessions end (deaths.py).
        """
        self.closers.append(closer)

    def ended(self, client: Client, sent_exit: bool) -> None:
        """`client` ended its session (`Client.end`): wait (bounded) for the server's end
        of it, then close, or keep the socket until the server closes or the check is over.

        - The reply to the exit request first: the session is then over for the server
          before the check's next step. A server whose sessions share state (one receive
          buffer for every thread) reads the next client's message after this one's `exit`,
          not at the same moment, and whether one session's `exit` ends another's is not
          left to the scheduler. A server that lets the wait pass once (it may never reply:
          PROTO-3) is not waited for again.
        - Then the server's close. Closed: the kit resets its end (close_socket), and
          nothing stays in TIME_WAIT on the server's port (a fixed-port server without
          SO_REUSEADDR must be able to start again on it). Not closed, by a server seen to
          keep sessions open after `exit` (EXIT-1's defect): the kit sends its EOF, which
          ends the session as any server must accept. Never a FIN while the server may be
          closing: two FINs that cross leave the server's end in TIME_WAIT too.
        - Not closed yet: the socket stays open (`defer_close`), so a server that writes
          after the session (it missed the `exit`, or loops on recv() returning 0) writes
          into a live socket and is not killed by SIGPIPE inside another requirement's
          check (deaths.py); the clients that leave on purpose are EXIT-2's and EXIT-3's.
        """
        what = "`exit`" if sent_exit else "EOF"
        client.transcript.add(f"ended {client.name} (sent {what})")
        if sent_exit:
            seen = SEEN_THIS_CHECK
            if not seen.exit_unanswered:
                seen.exit_unanswered = not _exit_answered(self, client)
            if seen.closes_after_exit is not False:
                # Not waited out when the server cannot close it now (a parent that keeps
                # its copy, back in accept()), looked at once a correct server had time.
                stuck = close_watch(self, client)
                began = time.monotonic()
                wait_until(
                    lambda: (
                        peer_closed(client.sock)
                        or (time.monotonic() - began >= LOOK_AFTER and stuck())
                    ),
                    CLOSE_AFTER_EXIT_WAIT,
                )
                closed = peer_closed(client.sock)
                if seen.closes_after_exit is None:
                    seen.closes_after_exit = closed
                if closed:
                    with contextlib.suppress(OSError):
                        client.close(record=False)
                    return
            with contextlib.suppress(OSError):
                client.sock.shutdown(socket.SHUT_WR)
        self.defer_close(client)

    def defer_close(self, client: Client) -> None:
        """Keep `client`, whose session the kit ended, open until the server closes its end.

        Closed at once are the clients of earlier ended sessions whose server end is
        closed: nothing can be written to them any more, so closing them cannot make the
        server fail a write. The others stay open until the check is over.
        """
        with contextlib.suppress(ValueError):
            self.clients.remove(client)
        self.ending.append(client)
        still = []
        for ended in self.ending:
            if peer_closed(ended.sock):
                with contextlib.suppress(OSError):
                    ended.close(record=False)
            else:
                still.append(ended)
        self.ending = still

    # -- liveness ---------------------------------------------------------------------------
    def alive(self) -> bool:
        if self.launched is not None and self.launched.returncode() is not None:
            return False
        if self.process is not None:
            return self.process.alive()
        return _accepts(self.host, self.port)

    def death(self) -> str:
        """How the server died, for a failure message: exit status or signal, and stderr."""
        if self.launched is None:
            return "the server stopped accepting connections"
        code = self.launched.returncode()
        if code is None and self.process is not None and not self.process.alive():
            # A zombie leader whose other threads are still exiting cannot be waited for
            # yet; its status (the signal that killed it) comes a moment later.
            launched = self.launched
            wait_until(lambda: launched.returncode() is not None, DEATH_STATUS_WAIT)
            code = launched.returncode()
        if code is None and self.process is not None and not self.process.alive():
            text = f"the server process (pid {self.process.pid}) is gone"
        else:
            text = f"the server {describe_exit(code)}"
        tail = self.launched.stderr_tail()
        if tail:
            text += "; last lines of its stderr:\n" + "\n".join(
                "    " + x for x in tail.splitlines()
            )
        return text


#: How long `Server.ended` waits for the reply to the exit request before it goes on.
EXIT_REPLY_WAIT = 0.5
#: How long it waits for the server's close after that reply (EXIT-1 gives it 1 s; a
#: server that takes longer is judged there, here it is only not waited for again).
CLOSE_AFTER_EXIT_WAIT = 0.5
#: ...and when it starts to look whether the server can close it at all (close_watch).
LOOK_AFTER = 0.05


def close_watch(server: Server, client: Client, only: Iterable[int] | None = None) -> StuckWatch:
    """Watches whether the server can still close `client`'s connection (held by the pids in
    `only`, or by any of its processes): a wait for that close ends once it cannot
    (waiting.cannot_close). Never stuck without a visible process."""
    proc = server.process

    def look() -> str | None:
        if proc is None:
            return None
        pids = proc.tree_pids(recent=True)
        held = holders_of_connection(
            pids if only is None else list(only), client.local_address, server.port
        )
        return cannot_close(pids, [(h.pid, h.fd) for h in held], server.port)

    return StuckWatch(look)


def _exit_answered(server: Server, client: Client) -> bool:
    """Whether the reply to the exit request (or the server's close) came within
    EXIT_REPLY_WAIT."""
    adapter = server.adapter
    reply = adapter.expected_reply(adapter.exit_request or b"") or b""
    deadline = time.monotonic() + EXIT_REPLY_WAIT
    got = 0
    with contextlib.suppress(OSError):
        while time.monotonic() < deadline:
            client.sock.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = client.sock.recv(65536)
            got += len(chunk)
            if not chunk or got >= max(1, len(reply)):
                return True
    return False


def _accepts(host: str, port: int) -> bool:
    family = family_of(host)
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(LOOPBACK_TIMEOUT)
        try:
            s.connect((host, port))
        except OSError:
            return False
    return True


#: Starts each check's server while the check before it runs (see LaunchAhead).
LAUNCH_AHEAD = LaunchAhead()


def start_server(target: Target, protocol: str, model: str = "unknown") -> Server:
    """Launch mode: a fresh server and its handle (the caller stops `server.launched`)."""
    assert target.command is not None
    launched = LAUNCH_AHEAD.take(target.command, port=target.port)
    process = (
        ServerProcess(launched.listener_pid, launched.token) if launched.listener_pid else None
    )
    return Server(target.host, launched.port, protocol, model, launched, process)


def attach_server(target: Target, protocol: str, model: str = "unknown") -> Server:
    """Address mode: a handle on a running server, with its process when it is visible here."""
    assert target.port is not None
    pid = listener_owner(target.port)
    process = None
    if pid is not None:
        with contextlib.suppress(Exception):
            process = ServerProcess(pid)
    return Server(target.host, target.port, protocol, model, None, process)
