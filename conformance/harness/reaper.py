"""Orphans of the servers we launch: adopt them (a child subreaper) and reap them.

A fork server's children outlive it when it dies first; without a subreaper they go to
pid 1, which in a container may never wait for them, and the kit could not stop them. As a
subreaper this process adopts them instead, and must then reap them itself: nobody else
will, and whoever waits for us would inherit them as zombies.
"""

from __future__ import annotations

import ctypes
import os

import psutil

from conformance.harness.processes import GONE, descendant_pids, processes_of

_PR_SET_CHILD_SUBREAPER = 36


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


#: Whether become_subreaper() succeeded (see LaunchedServer._stragglers).
_subreaper = False


def is_subreaper() -> bool:
    return _subreaper


def prctl(option: int, value: int) -> bool:
    """prctl(2) with one argument; False where it is not available or fails."""
    libc = _libc()
    if libc is None or not hasattr(libc, "prctl"):
        return False
    return bool(libc.prctl(option, value, 0, 0, 0) == 0)


def become_subreaper() -> None:
    """Orphaned descendants of launched servers get reparented to us, not to pid 1."""
    global _subreaper
    _subreaper = _subreaper or prctl(_PR_SET_CHILD_SUBREAPER, 1)


def reap_adopted(owned: set[int]) -> None:
    """Wait for zombie children of ours that no Popen will wait for (`owned`: those that one
    will).

    As a subreaper this process adopts the orphans of the servers it launched (a fork server's
    children when the parent dies first). Once dead they are our zombies; nobody else will
    reap them, and they would be handed to whoever waits for us when we exit.
    """
    try:  # WNOWAIT: only look. Usually no child of ours is a zombie, and that is all.
        if os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            return
    except ChildProcessError:
        return
    for child in processes_of(descendant_pids(os.getpid(), recursive=False)):
        try:
            if child.pid in owned or child.status() != psutil.STATUS_ZOMBIE:
                continue
            # A zombie Popen child of ours (a pytest-xdist worker at exit) would only read
            # returncode 0 from its own wait(); no such child is a zombie while a check runs.
            os.waitpid(child.pid, os.WNOHANG)
        except (*GONE, ChildProcessError, OSError):
            continue
