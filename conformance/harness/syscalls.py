"""What a thread is doing in the kernel right now: its system call, by name, from /proc.

`/proc/PID/task/TID/syscall` holds the number of the call a blocked thread is in and its
arguments; the numbers differ by machine, so the table of the calls a server waits in is
here, once, for the machines the kit knows. EINTR-2 uses it to signal a thread blocked
waiting for a client; a missing reply's evidence, to say where the server waits.
"""

from __future__ import annotations

import os

#: System call names by number, for the calls a server waits in, by machine.
NAMES: dict[str, dict[int, str]] = {
    "x86_64": {
        0: "read", 1: "write", 7: "poll", 19: "readv", 20: "writev", 23: "select",
        34: "pause", 35: "nanosleep", 42: "connect", 43: "accept", 44: "sendto",
        45: "recvfrom", 46: "sendmsg", 47: "recvmsg", 61: "wait4", 73: "flock",
        130: "rt_sigsuspend", 202: "futex", 230: "clock_nanosleep", 232: "epoll_wait",
        234: "tgkill", 247: "waitid", 270: "pselect6", 271: "ppoll", 281: "epoll_pwait",
        288: "accept4", 441: "epoll_pwait2",
    },
    "aarch64": {
        22: "epoll_pwait", 32: "flock", 63: "read", 64: "write", 65: "readv", 66: "writev",
        72: "pselect6", 73: "ppoll", 95: "waitid", 98: "futex", 101: "nanosleep",
        115: "clock_nanosleep", 131: "tgkill", 133: "rt_sigsuspend", 202: "accept",
        203: "connect", 206: "sendto", 207: "recvfrom", 211: "sendmsg", 212: "recvmsg",
        242: "accept4", 260: "wait4", 441: "epoll_pwait2",
    },
}  # fmt: skip
#: The calls in which a server waits for a client: a read, an accept, a multiplexer.
WAIT_FOR_CLIENT = frozenset(
    {"read", "readv", "recvfrom", "recvmsg", "accept", "accept4", "poll", "select",
     "pselect6", "ppoll", "epoll_wait", "epoll_pwait", "epoll_pwait2"}
)  # fmt: skip


def number(name: str) -> int | None:
    """The number of system call `name` on this machine; None if the table lacks it."""
    table = NAMES.get(os.uname().machine, {})
    return next((n for n, call in table.items() if call == name), None)


def thread_ids(pid: int) -> list[int]:
    """The threads of process `pid`; empty once it is gone."""
    try:
        return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return []


def current_call(pid: int, tid: int) -> tuple[str, list[str]] | None:
    """(call, its arguments as hex strings) for a thread blocked in a system call:
    `running` for one on a CPU, `#N` for a call not in the table, None where /proc cannot
    say (the thread is gone, stopped outside a call, or another user's)."""
    try:
        with open(f"/proc/{pid}/task/{tid}/syscall") as f:
            fields = f.read().split()
    except OSError:
        return None
    if not fields:
        return None
    if fields[0] == "running":
        return "running", []
    if not fields[0].isdigit():
        return None  # -1: stopped outside a system call (a signal, a page fault)
    name = NAMES.get(os.uname().machine, {}).get(int(fields[0]), f"#{fields[0]}")
    return name, fields[1:]


def known_machine() -> bool:
    return os.uname().machine in NAMES
