"""zombies: every exited child is reaped (ZOMB-*). Fork-per-connection servers only."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

import pytest

from conformance.checks.scenario_machine import run_scenarios
from conformance.harness import Server, fail, wait_until
from conformance.harness.sessions import open_session, require_process, run_sessions
from conformance.harness.timeouts import ANSWER_TIMEOUT, SETTLE_TIMEOUT
from conformance.marks import requirement
from conformance.settings import Settings

BURST = 50
NO_REAP_CAUSE = (
    "the parent never waits for its exited children: install a SIGCHLD handler that calls "
    "waitpid(-1, NULL, WNOHANG) in a loop (or ignore SIGCHLD with SA_NOCLDWAIT)"
)
REAP_ONCE_CAUSE = (
    "signals coalesce: many children exiting together may deliver a single SIGCHLD, so a "
    "handler that calls waitpid() once per signal leaves the rest; loop: "
    "while (waitpid(-1, NULL, WNOHANG) > 0) ;"
)


def _expect_no_zombies(server: Server, after: str, cause: str) -> None:
    __tracebackhide__ = True
    proc = require_process(server, "zombie detection")
    settled, zombies = wait_until(lambda: not proc.zombie_descendants(), SETTLE_TIMEOUT)
    if not settled:
        zombies = proc.zombie_descendants()
        fail(
            f"no zombie children within {SETTLE_TIMEOUT:.1f} s {after}",
            f"{len(zombies)} zombie(s) still there after {SETTLE_TIMEOUT:.1f} s: pids "
            f"{zombies[:10]}{' ...' if len(zombies) > 10 else ''}",
            did=server.transcript.tail(),
            cause=cause,
        )


@requirement("ZOMB-1")
def test_no_zombies_after_sessions(server: Server) -> None:
    """Ten sessions one after another, then a 1 s grace period: no zombie may remain."""
    require_process(server, "ZOMB-1")
    run_sessions(server, 10)
    _expect_no_zombies(server, "after 10 sessions ended", NO_REAP_CAUSE)


@contextlib.contextmanager
def _parent_stopped(server: Server) -> Iterator[bool]:
    """SIGSTOP the server's main process for the block (SIGCONT after, always).

    While the parent is stopped, the SIGCHLD of every child that exits stays pending, and a
    pending standard signal is one bit: the parent wakes to a single SIGCHLD for all of them.
    That is the coalescing a busy machine produces by chance, made certain, so a handler that
    reaps once per signal fails every run instead of most. Yields False when we may not
    signal the process (another user's server in address mode).
    """
    proc = require_process(server, "ZOMB-2")
    try:
        os.kill(proc.pid, signal.SIGSTOP)
    except (PermissionError, ProcessLookupError):
        yield False
        return
    server.transcript.add(f"stopped the server's main process (SIGSTOP to pid {proc.pid})")
    try:
        yield True
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)
        server.transcript.add("let it continue (SIGCONT): one SIGCHLD for all the exits")


@requirement("ZOMB-2")
def test_burst_of_exiting_children_leaves_no_zombie(server: Server) -> None:
    """50 sessions live at once, all ended in one burst: coalesced SIGCHLD."""
    proc = require_process(server, "ZOMB-2")
    clients = server.connect_many(BURST)
    for i, client in enumerate(clients):
        try:
            open_session(server, client, server.adapter.request(i, 16), ANSWER_TIMEOUT)
        except AssertionError:
            pytest.skip(f"only {i} of {BURST} sessions could be held at once (see concurrency)")
    live = set(proc.live_descendants())
    server.transcript.add(
        f"{BURST} sessions live ({len(live)} child processes); ending all at once"
    )
    with _parent_stopped(server) as stopped:
        # All the ends first, then the closes: the children exit together.
        for client in clients:
            client.end(close=False)
        for client in clients:
            client.close()
        if stopped:
            # The children end their sessions on their own; the parent reaps nothing yet.
            wait_until(lambda: not live & set(proc.live_descendants()), SETTLE_TIMEOUT)
    _expect_no_zombies(server, f"after {BURST} children exited together", REAP_ONCE_CAUSE)


@requirement("ZOMB-1")
def test_no_zombies_in_any_scenario(
    conformance_settings: Settings,
    conformance_profile: str,
    conformance_seed: int,
    conformance_one_reply: str | None,
) -> None:
    """Hypothesis drives clients (connect, send, exit, close, reset, signal bursts); after
    every step the exited children must be reaped within the grace period."""
    run_scenarios(
        conformance_settings,
        conformance_profile,
        conformance_seed,
        "zombies",
        NO_REAP_CAUSE,
        conformance_one_reply,
    )
