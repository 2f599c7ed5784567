"""Run an untrusted command under limits: `python -m conformance.sandbox [OPTIONS] -- CMD ...`.

A wrapper rather than a hook in the launcher: it sets the limits, drops privileges and then
exec()s the command, so the pid the launcher (or the grader) started *is* the submission's
process, its process group and output files are the launcher's as before, and the very same
wrapper confines a build. In order:

1. `--netns`: a private network namespace with only loopback, up (root only). The grader puts
   the kit itself in one, so the kit and the server share a loopback no other submission sees:
   hard-coded ports can then run side by side.
2. Resource limits (setrlimit): processes/threads, open files, address space, CPU seconds,
   file size. They are inherited by every descendant and cannot be raised once dropped.
3. `--uid`: become that user (and group), with no supplementary groups. RLIMIT_NPROC does not
   bind root, so without this a fork bomb run by a root grader is not contained. The uid need
   not exist in /etc/passwd; the grader gives each parallel slot its own, so one submission's
   processes never count against another's limit, and it can kill a slot's leftovers by uid.
4. `--bwrap DIR`: exec through bubblewrap with the file system read-only except DIR and a
   private /tmp (stronger isolation, where bwrap is installed).

Without `--uid` (a grader that is not root) NPROC is counted over all of this user's
processes, so the limit is set to what the user already runs plus `--nproc`.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import os
import resource
import shutil
import signal
import socket
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import psutil

from conformance.gradeconfig import Limits

_CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS, _SIOCSIFFLAGS = 0x8913, 0x8914
_IFF_UP, _IFF_RUNNING = 0x1, 0x40
_PR_SET_PDEATHSIG = 1
MIB = 1024 * 1024


class SandboxError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Sandbox:
    """How to confine one submission's processes; `argv()` wraps a command in it."""

    limits: Limits
    uid: int | None = None
    bwrap_dir: str | None = None

    def argv(self, command: Sequence[str], netns: bool = False) -> list[str]:
        args = [sys.executable, "-m", "conformance.sandbox", *limit_args(self.limits)]
        if self.uid is not None:
            args += ["--uid", str(self.uid)]
        if self.bwrap_dir is not None:
            args += ["--bwrap", self.bwrap_dir]
        if netns:
            args.append("--netns")
        return [*args, "--", *command]


def limit_args(limits: Limits) -> list[str]:
    return [
        f"--nproc={limits.nproc}",
        f"--nofile={limits.nofile}",
        f"--as-mb={limits.address_space_mb}",
        f"--cpu-s={limits.cpu_s}",
        f"--fsize-mb={limits.file_size_mb}",
    ]


def netns_argv(command: Sequence[str]) -> list[str]:
    """`command` in a fresh network namespace, with no limits (for the kit itself)."""
    return [sys.executable, "-m", "conformance.sandbox", "--netns", "--", *command]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def enter_netns() -> None:
    """unshare(CLONE_NEWNET) and bring `lo` up; the new namespace has nothing else."""
    if _libc().unshare(_CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise SandboxError(f"cannot create a network namespace: {os.strerror(err)}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, ifreq))[1]
        up = struct.pack("16sH14s", b"lo", flags | _IFF_UP | _IFF_RUNNING, b"")
        fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, up)


def tasks_of(uid: int) -> int:
    """Processes and threads of `uid` (what RLIMIT_NPROC counts)."""
    total = 0
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.uids().real == uid:
                total += proc.num_threads()
    return total


def apply_limits(ns: argparse.Namespace) -> None:
    nproc = ns.nproc
    if nproc is not None and ns.uid is None and os.getuid() != 0:
        nproc += tasks_of(os.getuid())
    for res, value in (
        (resource.RLIMIT_NPROC, nproc),
        (resource.RLIMIT_NOFILE, ns.nofile),
        (resource.RLIMIT_AS, ns.as_mb and ns.as_mb * MIB),
        (resource.RLIMIT_CPU, ns.cpu_s),
        (resource.RLIMIT_FSIZE, ns.fsize_mb and ns.fsize_mb * MIB),
    ):
        if value is None:
            continue
        _soft, hard = resource.getrlimit(res)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        # CPU: the soft limit sends SIGXCPU (kills by default), the hard one SIGKILL a
        # second later, for a process that catches SIGXCPU.
        hard_value = value + 1 if res == resource.RLIMIT_CPU else value
        resource.setrlimit(res, (value, hard_value))


def drop_privileges(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    # Changing credentials clears the parent-death signal the launcher asked for: ask again.
    _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def bwrap_argv(directory: str, command: list[str]) -> list[str]:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxError("--sandbox bwrap: bubblewrap (bwrap) is not installed")
    return [
        bwrap,
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--tmpfs", "/tmp",
        "--bind", directory, directory,
        "--chdir", os.getcwd(),
        "--unshare-ipc",
        "--die-with-parent",
        "--",
        *command,
    ]  # fmt: skip


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m conformance.sandbox", description=__doc__)
    p.add_argument("--nproc", type=int)
    p.add_argument("--nofile", type=int)
    p.add_argument("--as-mb", type=int)
    p.add_argument("--cpu-s", type=int)
    p.add_argument("--fsize-mb", type=int)
    p.add_argument("--uid", type=int)
    p.add_argument("--bwrap", metavar="DIR")
    p.add_argument("--netns", action="store_true")
    p.add_argument("command", nargs=argparse.REMAINDER)
    return p


def main(argv: list[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    command = ns.command[1:] if ns.command[:1] == ["--"] else ns.command
    if not command:
        print("conformance.sandbox: no command given (put it after --)", file=sys.stderr)
        return 2
    try:
        if ns.netns:
            enter_netns()
        apply_limits(ns)
        if ns.uid is not None:
            drop_privileges(ns.uid)
        if ns.bwrap:
            command = bwrap_argv(ns.bwrap, command)
    except (SandboxError, OSError) as exc:
        print(f"conformance.sandbox: {exc}", file=sys.stderr)
        return 126
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"conformance.sandbox: cannot run {command[0]!r}: {exc.strerror}", file=sys.stderr)
        return 127
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
