"""Fresh servers without the wait: the next ones start while the current check runs."""

from __future__ import annotations

import contextlib
import math
import time

from conformance.harness.launcher import (
    LaunchedServer,
    LaunchError,
    launch,
    on_free_port,
)
from conformance.harness.ports import free_port
from conformance.harness.timeouts import READY_TIMEOUT, STOP_GRACE

#: A take() that waited longer than this for its server to listen means starts are slower
#: than the checks that use them (a fast server waits a few milliseconds, 60 ms under load):
#: more servers are kept starting ahead (see LaunchAhead).
SLOW_TAKE = 0.5
#: The most servers kept starting ahead of the checks, per process of the kit. Servers that
#: sleep or wait on I/O before they listen start side by side for free; ones that burn CPU
#: (a JVM) compete, so more would only slow each start and disturb the running check.
MAX_DEPTH = 8
#: The most retired servers left to exit by themselves while the checks go on (see retire).
MAX_RETIRING = 8


class LaunchAhead:
    """Fresh servers without the wait: the next ones start while the current check runs.

    Every check gets a server nobody has talked to, and starting one (an interpreter, a
    bind, a listen) costs some 60 ms for a Python server; over a suite of checks and
    hypothesis examples that is seconds of waiting. So when a server is taken, `depth`
    more are kept starting, and they are usually listening by the time they are wanted.
    Two, not one: many checks and examples take only a few milliseconds, less than one
    start-up, so a run of them would still wait for each server in turn. A fixed port
    allows one server at a time, so then each is started when needed.

    A server that takes seconds to start (a JVM, an application that loads data) would make
    the checks wait for each start in turn. When a take() waits W > SLOW_TAKE seconds, a
    start spans some W / SLOW_TAKE checks, so that many are kept starting (at least one more
    than before, at most MAX_DEPTH): starts overlap, and the checks wait about the start
    time once per MAX_DEPTH servers (docs/measurements.md). `waited` adds up what take()
    waited, for the report.
    """

    def __init__(self, depth: int = 2, ready_timeout: float = READY_TIMEOUT) -> None:
        self.depth = depth
        #: How long a server may take to listen (--start-timeout).
        self.ready_timeout = ready_timeout
        #: Seconds take() spent waiting for servers to listen, and not yet reported.
        self.waited = 0.0
        self._next: dict[str, list[LaunchedServer]] = {}
        self._retiring: list[LaunchedServer] = []

    def take(self, command: str, port: int | None = None) -> LaunchedServer:
        t0 = time.monotonic()
        try:
            return self._take(command, port)
        finally:
            wait = time.monotonic() - t0
            self.waited += wait
            if wait > SLOW_TAKE:
                # A start spans about wait / SLOW_TAKE checks: keep that many starting.
                self.depth = min(MAX_DEPTH, max(self.depth + 1, math.ceil(wait / SLOW_TAKE)))

    def report_waited(self) -> float:
        """The seconds waited for starts since the last call (each wait reported once)."""
        waited, self.waited = self.waited, 0.0
        return waited

    def _take(self, command: str, port: int | None) -> LaunchedServer:
        if port is not None or "{port}" not in command:
            # One port holds one server: the previous instance's whole tree is gone first.
            self.finish()
            return launch(command, port=port, ready_timeout=self.ready_timeout)
        ahead = self._next.setdefault(command, [])
        ahead[:] = [s for s in ahead if not s.stopped]
        server = ahead.pop(0) if ahead else spawnon_free_port(command)
        with contextlib.suppress(LaunchError):
            # A command that cannot start fails when its server is taken, with its own error.
            while len(ahead) < self.depth:
                ahead.append(spawnon_free_port(command))
        return on_free_port(lambda: spawnon_free_port(command), server, self.ready_timeout)

    def retire(self, server: LaunchedServer) -> None:
        """Stop a used server without waiting for it to exit.

        SIGTERM goes now; the rest of stop() (the wait, SIGKILL, stragglers) happens at a
        later retire() once the server has exited or had its STOP_GRACE, or at close().
        Stopping then costs no waiting, where waiting for each server's exit cost about a
        second per run. A hypothesis example may take a few milliseconds, less than a JVM
        takes to shut down (some 0.3 s): its servers go on exiting side by side meanwhile.
        """
        server.terminate()
        self._retiring.append(server)
        if server.fixed_port:
            # Its port is the next server's: nobody else may start before it is gone.
            self.finish()
        else:
            self._finish_exited()

    def _finish_exited(self) -> None:
        """Complete the stops of retired servers that have exited or had their grace (the
        stop then SIGKILLs them); at most MAX_RETIRING others are left exiting, the oldest
        of the rest waited for."""
        now = time.monotonic()
        exiting = []
        for server in self._retiring:
            began = server.terminated_at if server.terminated_at is not None else now
            if server.returncode() is not None or now - began >= STOP_GRACE:
                server.stop()
            else:
                exiting.append(server)
        while len(exiting) > MAX_RETIRING:
            exiting.pop(0).stop()
        self._retiring = exiting

    def finish(self) -> None:
        """Complete the stops that retire() began."""
        while self._retiring:
            self._retiring.pop().stop()

    def close(self) -> None:
        """Stop the servers started ahead and never taken, and finish the retired ones."""
        self.finish()
        while self._next:
            _, servers = self._next.popitem()
            for server in servers:
                server.terminate()
            for server in servers:
                server.stop(grace=0.2)


def spawnon_free_port(command: str) -> LaunchedServer:
    """Spawn `command` on a free port; `wait_ready()` on the result before using it."""
    return LaunchedServer(command, free_port()).spawn()
