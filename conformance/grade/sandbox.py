"""Run an untrusted command under limits: `python -m conformance.grade.sandbox [OPTIONS] -- CMD`.

A wrapper rather than a hook in the launcher: it sets the limits, drops privileges and then
exec()s the command, so the pid the launcher (or the grader) started is the submission's
process (or, isolated, its parent that exits as it does), its process group and output files
are the launcher's as before, and the very same wrapper confines a build. In order:

0. `--cgroup`: join the submission's cgroup (cgroups.py: the memory and task count of all its
   processes together), before anything else, as root, so nothing of it runs outside.
1. `--netns`: a private network namespace with only loopback, up (root only). The grader puts
   the kit itself in one, so the kit and the server share a loopback no other submission sees:
   hard-coded ports can then run side by side.
2. Resource limits (setrlimit): processes/threads, open files, address space, CPU seconds,
   file size. They are inherited by every descendant and cannot be raised once dropped.
3. `--uid`: become that user (and group), with no supplementary groups. RLIMIT_NPROC does not
   bind root, so without this a fork bomb run by a root grader is not contained. The uid need
   not exist in /etc/passwd; the grader gives each parallel slot its own, so one submission's
   processes never count against another's limit, and it can kill a slot's leftovers by uid.
4. `--isolate DIR`: the submission sees nothing but itself (see isolation.py): a file system
   of the system's read-only directories, DIR (writable) and a private /tmp and /dev/shm of
   `--tmp-mb`, and a PID namespace of its own. As root with plain namespaces; not root, in an
   unprivileged user namespace.
5. `--bwrap DIR`: the same view through bubblewrap instead (where it is installed).
6. The environment: only `ENV_KEEP` and the kit's own `CONFORMANCE_*` tokens (by which the
   kit finds the submission's processes) reach the command, so nothing secret that the
   grader's environment holds does; HOME is DIR when isolated.

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
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NoReturn

import psutil

from conformance.grade import cgroups, isolation
from conformance.grade.config import Limits

_CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS, _SIOCSIFFLAGS = 0x8913, 0x8914
_IFF_UP, _IFF_RUNNING = 0x1, 0x40
_PR_SET_PDEATHSIG = 1
MIB = 1024 * 1024
#: The variables of its environment a submission gets (and `ENV_KEEP_PREFIXES`): what a
#: compiler, a shell and a server need; whatever else the grader's environment holds (keys,
#: tokens, paths of the class) stays out.
ENV_KEEP = (
    "PATH", "HOME", "LANG", "LANGUAGE", "TERM", "TZ", "PORT",
    "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE",
)  # fmt: skip
#: The locale, and the kit's own tokens (CONFORMANCE_LAUNCH_TOKEN, CONFORMANCE_GRADE_TOKEN):
#: the launcher and the grader find a submission's stray processes by them.
ENV_KEEP_PREFIXES = ("LC_", "CONFORMANCE_")
#: Size of the private /tmp (and /dev/shm) when no --tmp-mb is given.
DEFAULT_TMP_MB = 64


class SandboxError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Sandbox:
    """How to confine one submission's processes; `argv()` wraps a command in it."""

    limits: Limits
    uid: int | None = None
    bwrap_dir: str | None = None
    #: The work directory, the only one of the machine's the submission sees (isolation.py).
    isolate_dir: str | None = None
    #: The `cgroup.procs` files of the submission's cgroup (cgroups.py), joined first.
    cgroup_procs: tuple[str, ...] = ()

    def argv(self, command: Sequence[str], netns: bool = False) -> list[str]:
        args = [sys.executable, "-m", "conformance.grade.sandbox", *limit_args(self.limits)]
        if self.uid is not None:
            args += ["--uid", str(self.uid)]
        for procs in self.cgroup_procs:
            args += ["--cgroup", procs]
        if self.bwrap_dir is not None:
            args += ["--bwrap", self.bwrap_dir]
        if self.isolate_dir is not None:
            args += ["--isolate", self.isolate_dir]
        if self.isolate_dir is not None or self.bwrap_dir is not None:
            # The private /tmp is RAM the disk watch does not see: it gets the disk limit.
            args.append(f"--tmp-mb={self.limits.disk_mb}")
        if netns:
            args.append("--netns")
        return [*args, "--", *command]


@dataclass(frozen=True, slots=True)
class RLimit:
    """One per-process limit: the `Limits` field (the grading config's [limits] key), the
    rlimit it sets, the field's unit, and the sandbox's flag (`--` + the field's name)."""

    field: str
    resource: int
    #: The field's unit, for help texts.
    unit_name: str
    #: Bytes per unit of the field (MIB for the `_mb` fields), or 1.
    unit: int = 1

    @property
    def flag(self) -> str:
        return "--" + self.field.replace("_", "-")


#: Every per-process limit of the sandbox, declared once: the config field, the flag passed to
#: `python -m conformance.grade.sandbox`, and the rlimit it sets are generated from here.
#: (`disk_mb` is not an rlimit: the grader watches it.)
RLIMITS = (
    RLimit("nproc", resource.RLIMIT_NPROC, "processes and threads"),
    RLimit("nofile", resource.RLIMIT_NOFILE, "descriptors"),
    RLimit("address_space_mb", resource.RLIMIT_AS, "MiB", MIB),
    RLimit("cpu_s", resource.RLIMIT_CPU, "CPU seconds"),
    RLimit("file_size_mb", resource.RLIMIT_FSIZE, "MiB", MIB),
)


def limit_args(limits: Limits) -> list[str]:
    return [f"{r.flag}={getattr(limits, r.field)}" for r in RLIMITS]


def netns_argv(command: Sequence[str]) -> list[str]:
    """`command` in a fresh network namespace, with no limits (for the kit itself)."""
    return [
        sys.executable, "-m", "conformance.grade.sandbox", "--netns", "--keep-env", "--", *command
    ]  # fmt: skip


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


#: How long the start-up probe of isolation may take (a Python start on a busy machine).
PROBE_TIMEOUT = 30.0


def isolation_problem() -> str | None:
    """Why `--isolate` cannot work here (None if it does): tried once, on a throwaway
    directory, the way a submission would be run."""
    with tempfile.TemporaryDirectory(prefix="conformance-probe-") as work:
        argv = [
            sys.executable,
            "-m",
            "conformance.grade.sandbox",
            "--isolate",
            work,
            "--",
            "/bin/true",
        ]
        try:
            done = subprocess.run(
                argv, cwd=work, capture_output=True, text=True, timeout=PROBE_TIMEOUT
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
    if done.returncode == 0:
        return None
    lines = done.stderr.strip().splitlines()
    return (
        lines[-1].removeprefix("conformance.grade.sandbox: ")
        if lines
        else f"status {done.returncode}"
    )


def tasks_of(uid: int) -> int:
    """Processes and threads of `uid` (what RLIMIT_NPROC counts)."""
    total = 0
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.uids().real == uid:
                total += proc.num_threads()
    return total


def apply_limits(ns: argparse.Namespace) -> None:
    for r in RLIMITS:
        value = getattr(ns, r.field)
        if value is None:
            continue
        if r.resource == resource.RLIMIT_NPROC and ns.uid is None and os.getuid() != 0:
            # Without a uid of its own, the submission shares the count with this user's tasks.
            value += tasks_of(os.getuid())
        value *= r.unit
        res = r.resource
        _soft, hard = resource.getrlimit(res)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        # CPU: the soft limit sends SIGXCPU (kills by default), the hard one SIGKILL a
        # second later, for a process that catches SIGXCPU.
        hard_value = value + 1 if res == resource.RLIMIT_CPU else value
        resource.setrlimit(res, (value, hard_value))


def drop_privileges(uid: int) -> None:
    isolation.become(uid)
    # Changing credentials clears the parent-death signal the launcher asked for: ask again.
    _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def submission_env(environ: Mapping[str, str], home: str | None = None) -> dict[str, str]:
    """The environment a submission gets: `ENV_KEEP` and `ENV_KEEP_PREFIXES` only."""
    env = {k: v for k, v in environ.items() if k in ENV_KEEP or k.startswith(ENV_KEEP_PREFIXES)}
    if home is not None:
        env["HOME"] = home
    return env


def bwrap_argv(directory: str, command: list[str], tmp_mb: int = DEFAULT_TMP_MB) -> list[str]:
    """bubblewrap with the view isolation.py builds: the system directories read-only,
    `directory` writable, a private /tmp, /dev and /proc, a PID namespace of its own."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxError("--sandbox bwrap: bubblewrap (bwrap) is not installed")
    view: list[str] = []
    for name in isolation.SYSTEM_DIRS:
        path = f"/{name}"
        if os.path.islink(path):
            view += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            view += ["--ro-bind", path, path]
    return [
        bwrap,
        *view,
        "--dev", "/dev",
        "--proc", "/proc",
        "--size", str(tmp_mb * MIB), "--tmpfs", "/tmp",
        "--bind", directory, directory,
        "--chdir", os.getcwd(),
        "--unshare-pid",
        "--unshare-ipc",
        "--die-with-parent",
        "--",
        *command,
    ]  # fmt: skip


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m conformance.grade.sandbox", description=__doc__)
    for r in RLIMITS:
        name = {v: k for k, v in vars(resource).items() if k.startswith("RLIMIT_")}[r.resource]
        p.add_argument(
            r.flag,
            dest=r.field,
            type=int,
            metavar="N",
            help=f"{name}, in {r.unit_name} (grading config [limits] {r.field})",
        )
    p.add_argument("--uid", type=int)
    p.add_argument(
        "--cgroup",
        action="append",
        default=[],
        metavar="PROCS_FILE",
        help="join this cgroup (its cgroup.procs file) first; repeatable (cgroup v1)",
    )
    p.add_argument("--bwrap", metavar="DIR")
    p.add_argument("--isolate", metavar="DIR")
    p.add_argument("--tmp-mb", type=int, default=DEFAULT_TMP_MB)
    p.add_argument("--netns", action="store_true")
    # The kit's own run keeps the grader's environment (e.g. PYTHONPATH for a config's adapter).
    p.add_argument("--keep-env", action="store_true")
    p.add_argument("command", nargs=argparse.REMAINDER)
    return p


def main(argv: list[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    command = ns.command[1:] if ns.command[:1] == ["--"] else ns.command
    if not command:
        print("conformance.grade.sandbox: no command given (put it after --)", file=sys.stderr)
        return 2
    if ns.isolate and ns.bwrap:
        print(
            "conformance.grade.sandbox: --isolate and --bwrap exclude each other", file=sys.stderr
        )
        return 2
    env = dict(os.environ) if ns.keep_env else submission_env(os.environ, ns.isolate)
    try:
        # First: everything after this, the isolation's init included, is in the cgroup.
        cgroups.join(ns.cgroup)
        if ns.netns:
            enter_netns()
        apply_limits(ns)
        if ns.isolate:
            isolation.enter(user_namespace=os.geteuid() != 0)
            isolation.run(ns.isolate, ns.tmp_mb, ns.uid, lambda: _submission(command, env, ns.uid))
        if ns.uid is not None:
            drop_privileges(ns.uid)
        if ns.bwrap:
            command = bwrap_argv(ns.bwrap, command, ns.tmp_mb)
    except (SandboxError, isolation.IsolationError, OSError) as exc:
        print(f"conformance.grade.sandbox: {exc}", file=sys.stderr)
        return 126
    _exec(command, env)


def _submission(command: list[str], env: dict[str, str], uid: int | None) -> NoReturn:
    """In the isolated view (the init's child): become the slot's user and run the command."""
    try:
        if uid is not None:
            drop_privileges(uid)
    except OSError as exc:
        print(f"conformance.grade.sandbox: {exc}", file=sys.stderr)
        os._exit(126)
    _exec(command, env)


#: Python starts with SIGPIPE ignored, and an ignored signal stays ignored across exec(): a
#: server would get EPIPE where, started from a shell, it dies of SIGPIPE (EXIT-3). The
#: submission gets the default, so a grade says what `conformance run` says. (SIGXFSZ stays
#: ignored: a log flood past the file-size limit gets write errors and goes on serving, and
#: the grader notes the limit; see submission.Grader._note_limits.)
_DEFAULT_BEFORE_EXEC = (signal.SIGPIPE,)


def _exec(command: list[str], env: dict[str, str]) -> NoReturn:
    for sig in _DEFAULT_BEFORE_EXEC:
        signal.signal(sig, signal.SIG_DFL)
    try:
        os.execvpe(command[0], command, env)
    except OSError as exc:
        print(
            f"conformance.grade.sandbox: cannot run {command[0]!r}: {exc.strerror}", file=sys.stderr
        )
    os._exit(127)


if __name__ == "__main__":
    sys.exit(main())
