"""Finding and killing everything one submission started, and watching what it uses.

A submission's processes are found three ways, because each alone can be escaped: its process
group (gone after setsid), a token in its environment (gone after clearenv), and, when the
grader is root, the slot's own uid (which a process cannot leave without privileges). Every
process found is one the grader started; nothing else runs under a slot's uid or token.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from conformance.harness.processes import descendant_pids, processes_of

TOKEN_VAR = "CONFORMANCE_GRADE_TOKEN"
#: How long kill_all keeps looking for processes that forked while it was killing.
KILL_DEADLINE = 10.0


def slot_processes(uid: int | None, token: str) -> list[psutil.Process]:
    me = os.getpid()
    found = []
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if (uid is not None and proc.uids().real == uid) or proc.environ().get(
                TOKEN_VAR
            ) == token:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def kill_all(pgid: int | None, uid: int | None, token: str) -> list[int]:
    """SIGKILL the group and every process of the uid or token until none is left.

    A fork bomb forks while we kill, so this loops; SIGSTOP first keeps the survivors from
    forking between two scans. Returns the pids it had to kill besides the group.
    """
    if pgid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    killed: set[int] = set()
    deadline = time.monotonic() + KILL_DEADLINE
    while time.monotonic() < deadline:
        procs = slot_processes(uid, token)
        if not procs:
            break
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    proc.send_signal(sig)
        killed.update(p.pid for p in procs)
        time.sleep(0.05)
    return sorted(killed)


def tasks_in_tree(pid: int) -> int:
    """Processes and threads of pid's tree (for a grader that cannot give each slot a uid)."""
    total = 0
    for proc in processes_of([pid, *descendant_pids(pid)]):
        with contextlib.suppress(psutil.Error):
            total += proc.num_threads()
    return total


def disk_usage(paths: list[Path]) -> tuple[int, int]:
    """(bytes under `paths`, size of the largest file): allocated blocks for the total, so a
    sparse file counts as what it holds on disk; apparent size for the largest file, which is
    what RLIMIT_FSIZE limits."""
    total = largest = 0
    for root in paths:
        for entry in _walk(root):
            with contextlib.suppress(OSError):
                st = entry.stat(follow_symlinks=False)
                total += st.st_blocks * 512
                largest = max(largest, st.st_size)
    return total, largest


def _walk(root: Path) -> Iterator[os.DirEntry[str]]:
    stack = [root]
    while stack:
        with contextlib.suppress(OSError), os.scandir(stack.pop()) as it:
            for entry in it:
                yield entry
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
