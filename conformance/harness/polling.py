"""Waiting done right: poll a condition until it holds or a deadline passes, never sleep(1)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from conformance.harness.timeouts import POLL_INTERVAL

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T], timeout: float, interval: float = POLL_INTERVAL
) -> tuple[bool, T]:
    """Call `probe` until it returns something truthy or `timeout` seconds pass.

    Returns (held, last value) so the caller can report what it saw last when it gives up.
    The probe runs at least once, and once more at the deadline. The first looks come quickly
    (1 ms, then doubling up to `interval`): most conditions a check waits for, such as a
    child exiting after its session, hold within a millisecond or two, and a check polls
    them hundreds of times.
    """
    deadline = time.monotonic() + timeout
    pause = min(0.001, interval)
    while True:
        value = probe()
        if value:
            return True, value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False, value
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, interval)
