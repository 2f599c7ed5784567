"""A submission sees nothing but itself: its own file system view and its own PID namespace.

Limits and a uid of its own contain what a submission *does*; they do not stop it *reading*.
Without this, a student's server could list `/proc/*/cmdline`, find the grader's command line
and with it the class directory, then read another student's sources, work copy, reports or
the grading config, and print them where its own results show them. So each build and each
server runs in

- a mount namespace whose root is a fresh read-only tmpfs holding only: the system's
  directories a compiler and a server need (`SYSTEM_DIRS`, bound read-only), a minimal `/dev`,
  a `/proc` of its own PID namespace, a private `/tmp` and `/dev/shm` (tmpfs, bounded), and its
  own work directory, writable, at the same path as outside (so build paths and the launcher's
  working directory mean the same inside);
- a PID namespace (and an IPC namespace), so no other process, command line or environment
  is visible;
- as root, plain namespaces (unshare(2)); not root, the same inside an unprivileged user
  namespace that maps this uid to itself (where the kernel allows them).

Three processes make it work, because unshare(CLONE_NEWPID) moves only the caller's *children*:

- the *outer* process is the one the launcher (or the grader) started. It unshares, forks the
  init, and then waits for the submission's exit status, which it reproduces as its own (the
  same exit code, or the same signal), so the launcher sees the submission's own exit as before;
  it forwards SIGTERM and friends to the init;
- the *init*, pid 1 of the new namespace, builds the view, pivots into it, forks the
  submission, then forwards signals to it and reaps orphans. The first process of a PID
  namespace is special (signals without a handler are ignored for it, orphans are reparented
  to it, and when it exits the kernel kills everything in the namespace), which is why it is
  the sandbox's own and not the submission: the submission's process behaves as outside. It
  lives on while the submission's leftovers do (so the kit still sees a server that left
  children behind on SIGTERM, EXIT-5), and ends when none is left, when the outer dies before
  the submission has exited, or when the kit that started the outer exits;
- the *submission*, which execs the command with the limits and the uid the sandbox was given.

The kit still inspects the server's processes from outside, through its own `/proc`: the
server is a descendant of the launched pid that owns the listening socket.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import resource
import select
import signal
import socket
import sys
from collections.abc import Callable
from typing import NoReturn

_CLONE_NEWNS = 0x00020000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000

_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x20, 0x1000, 0x4000, 0x40000
_MS_NOATIME, _MS_NODIRATIME, _MS_RELATIME = 0x400, 0x800, 0x200000
_MNT_DETACH = 2
#: statvfs flags of a mount and the mount(2) flags that keep them: in a user namespace, a
#: bind mount's nosuid/nodev/noexec/atime flags are locked and a remount must repeat them.
_LOCKED_FLAGS = (
    (os.ST_NOSUID, _MS_NOSUID),
    (os.ST_NODEV, _MS_NODEV),
    (os.ST_NOEXEC, _MS_NOEXEC),
    (os.ST_NOATIME, _MS_NOATIME),
    (os.ST_NODIRATIME, _MS_NODIRATIME),
    (os.ST_RELATIME, _MS_RELATIME),
)
_PR_SET_PDEATHSIG, _PR_SET_NAME, _PR_SET_DUMPABLE, _PR_SET_NO_NEW_PRIVS = 1, 15, 4, 38
#: pivot_root(2) has no libc wrapper; its number differs by architecture.
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}

#: The host's top-level directories a submission sees, read-only: what compilers, shells,
#: interpreters and their libraries need. Symlinks among them (merged /usr) stay symlinks.
SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc")
#: Device nodes bound into the private /dev.
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
#: Signals the outer passes to the init and the init to the submission.
FORWARDED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
#: How the init's process shows in the namespace's /proc (its real command line is hidden).
INIT_TITLE = b"conformance-sandbox-init"
#: The init looks again at least this often (seconds), whatever wakes it.
INIT_POLL = 1.0
#: Size of the tmpfs that is the new root (it holds only mount points).
ROOT_TMPFS = "mode=0755,size=1m"
#: The init's report to the outer: the submission's wait status (and whether the init now
#: exits too, nothing else being left, or stays for the leftovers), or why the view failed.
_STATUS, _LAST, _FAILED = b"S", b"L", b"E"


class IsolationError(RuntimeError):
    pass


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise IsolationError(f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    def enc(text: str | None) -> bytes | None:
        return None if text is None else os.fsencode(text)

    _check(
        _libc().mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
        f"mount {target}",
    )


# -- entering the namespaces (the outer) -------------------------------------------------------
def enter(user_namespace: bool) -> None:
    """unshare the mount, PID and IPC namespaces (and a user namespace when not root)."""
    flags = _CLONE_NEWNS | _CLONE_NEWPID | _CLONE_NEWIPC
    uid, gid = os.getuid(), os.getgid()
    if user_namespace:
        flags |= _CLONE_NEWUSER
    _check(_libc().unshare(flags), "cannot create the sandbox's namespaces (unshare)")
    if user_namespace:
        _map_ids(uid, gid)


def _map_ids(uid: int, gid: int) -> None:
    """In a new user namespace: this uid and gid are themselves, and nothing else exists."""
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{gid} {gid} 1")


def run(work: str, tmp_mb: int, uid: int | None, submission: Callable[[], NoReturn]) -> NoReturn:
    """Fork the init (pid 1 of the namespaces entered), which builds the view of `work` and
    runs `submission` in it; then wait, and exit as the submission did. Call after enter().

    With `uid` (root only), the outer becomes that user at once and the init once the view is
    built, so the grader's per-uid kill reaches them too; `submission` drops to it by itself.
    """
    watch = _parent_pidfd()
    mine, theirs = socket.socketpair()
    held = {signal.Signals(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)}
    pid = os.fork()
    if pid == 0:
        mine.close()
        _init(work, tmp_mb, uid, submission, theirs, watch, held)
    theirs.close()
    if watch is not None:
        os.close(watch)
    for sig in FORWARDED:
        signal.signal(sig, lambda signum, frame: _send(pid, signum))
    signal.pthread_sigmask(signal.SIG_SETMASK, held)
    if uid is not None:
        become(uid)
        # Changing credentials clears the parent-death signal the launcher asked for.
        _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    outer_wait(pid, mine)


def become(uid: int) -> None:
    """That user and group, with no supplementary groups."""
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def outer_wait(init_pid: int, channel: socket.socket) -> NoReturn:
    """Wait for the init's report and exit with the submission's status."""
    report = _read_report(channel)
    if report.startswith(_FAILED):
        sys.stderr.write(f"conformance.grade.sandbox: {report[1:].decode(errors='replace')}\n")
        _reap(init_pid)
        os._exit(126)
    if not report.startswith((_STATUS, _LAST)):
        # The init died before the submission ended (killed with its namespace).
        _reap(init_pid)
        _exit_like(signal.SIGKILL)
    if report.startswith(_LAST):
        # It is exiting: reaped here, not left a zombie to whoever adopts it.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(init_pid, 0)
    status = int(report[1:])
    if os.WIFSIGNALED(status):
        _exit_like(os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status))


def _read_report(channel: socket.socket) -> bytes:
    data = b""
    with contextlib.suppress(OSError):
        while not data.endswith(b"\n"):
            chunk = channel.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.strip()


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _exit_like(sig: int) -> NoReturn:
    """Die of `sig`, as the submission did, so the launcher reads the same status."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if sig not in (signal.SIGKILL, signal.SIGSTOP):  # these two have no handler to reset
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
    os.kill(os.getpid(), sig)
    os._exit(128 + sig)


def _send(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _parent_pidfd() -> int | None:
    """A pidfd on the process that started us (the kit, or the grader), for the init to watch."""
    with contextlib.suppress(OSError, AttributeError):
        return os.pidfd_open(os.getppid())
    return None


# -- the init (pid 1) ---------------------------------------------------------------------------
def _init(
    work: str,
    tmp_mb: int,
    uid: int | None,
    submission: Callable[[], NoReturn],
    channel: socket.socket,
    watch: int | None,
    held: set[signal.Signals],
) -> NoReturn:
    try:
        build_view(work, tmp_mb)
    except Exception as exc:  # whatever it is, the outer says it and exits 126
        with contextlib.suppress(OSError):
            channel.sendall(_FAILED + str(exc).encode() + b"\n")
        os._exit(126)
    child = os.fork()
    if child == 0:
        channel.close()
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        _libc().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        submission()
    if uid is not None:
        become(uid)  # no parent-death signal: it outlives the outer while leftovers live
    _hide_myself()
    _Init(child, channel, watch, held).loop()


def _hide_myself() -> None:
    """Nothing of the kit's in the init's /proc entry: a title for its command line (which
    anyone may read), and not dumpable, so its environment, descriptors and memory are closed
    to the submission. (The kit, root or the owner of the user namespace, still reads its
    environment, and the launch token in it.)"""
    libc = _libc()
    libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    libc.prctl(_PR_SET_NAME, INIT_TITLE[:15], 0, 0, 0)
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        # Fields 48 and 49 of stat(5): where the command line is.
        arg_start, arg_end = (int(fields[i - 3]) for i in (48, 49))
    except (OSError, IndexError, ValueError):
        return
    if arg_end - arg_start > len(INIT_TITLE):
        ctypes.memset(arg_start, 0, arg_end - arg_start)
        ctypes.memmove(arg_start, INIT_TITLE, len(INIT_TITLE))


class _Init:
    """Forward signals to the submission, reap everything, report the submission's status."""

    def __init__(
        self, child: int, channel: socket.socket, watch: int | None, held: set[signal.Signals]
    ) -> None:
        self.child = child
        self.channel: socket.socket | None = channel
        self.watch = watch
        self.reported = False
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        self.wake = wake_r
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        for sig in FORWARDED:
            signal.signal(sig, self._forward)
        signal.pthread_sigmask(signal.SIG_SETMASK, held)

    def _forward(self, signum: int, frame: object) -> None:
        if not self.reported:
            _send(self.child, signum)

    def loop(self) -> NoReturn:
        while True:
            if self._reap_all():
                os._exit(0)  # nothing left in the namespace
            watched = [self.wake]
            if self.channel is not None:
                watched.append(self.channel.fileno())
            if self.watch is not None:
                watched.append(self.watch)
            ready, _, _ = select.select(watched, [], [], INIT_POLL)
            if self.wake in ready:
                with contextlib.suppress(OSError):
                    os.read(self.wake, 512)
            if self.watch is not None and self.watch in ready:
                os._exit(1)  # the kit is gone: so is everything it started
            if self.channel is not None and self.channel.fileno() in ready:
                self._outer_spoke()

    def _outer_spoke(self) -> None:
        assert self.channel is not None
        try:
            data = self.channel.recv(64)
        except OSError:
            data = b""
        if data:
            return
        if not self.reported:
            os._exit(1)  # the outer was killed while the submission ran: end it all
        self.channel.close()  # the outer left after the submission: its leftovers live on
        self.channel = None

    def _reap_all(self) -> bool:
        """Wait for every dead child; True when no child is left at all."""
        status: int | None = None
        while True:
            try:
                pid, code = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                none_left = True
                break
            if pid == 0:
                none_left = False
                break
            if pid == self.child and not self.reported:
                status = code
        if status is not None:
            self.reported = True
            if self.channel is not None:
                kind = _LAST if none_left else _STATUS
                with contextlib.suppress(OSError):
                    self.channel.sendall(kind + str(status).encode() + b"\n")
        return none_left


# -- the view -----------------------------------------------------------------------------------
def build_view(work: str, tmp_mb: int) -> None:
    """Make the root a tmpfs with only the system directories, /dev, /proc, a private /tmp
    and `work`, and pivot into it. Runs as pid 1 of the new PID namespace (for /proc)."""
    work = os.path.realpath(work)
    cwd = os.getcwd()
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    # Opened first: the new root is mounted over /tmp, which may hold the work directory.
    sources = _open_sources(work)
    root = "/tmp"
    try:
        _mount("tmpfs", root, "tmpfs", _MS_NOSUID | _MS_NODEV, ROOT_TMPFS)
        _system_dirs(root, sources)
        _devices(root, sources, tmp_mb)
        os.mkdir(f"{root}/tmp")
        _mount("tmpfs", f"{root}/tmp", "tmpfs", _MS_NOSUID | _MS_NODEV, _tmpfs_opts(tmp_mb))
        os.makedirs(root + work, exist_ok=True)
        _mount(_fd_path(sources["//work"]), root + work, None, _MS_BIND | _MS_REC)
        os.mkdir(f"{root}/proc")
        _mount("proc", f"{root}/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
        _mount(None, root, None, _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV, ROOT_TMPFS)
    finally:
        for fd in sources.values():
            os.close(fd)
    _pivot(root)
    try:
        os.chdir(cwd)
    except OSError:
        os.chdir(work)


def _tmpfs_opts(size_mb: int) -> str:
    return f"mode=1777,size={max(1, size_mb)}m"


def _fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def _open_sources(work: str) -> dict[str, int]:
    """O_PATH descriptors of everything to bind, keyed by name (`//work` for the work dir,
    `dev/NAME` for devices); top-level symlinks are recreated, not bound."""
    sources: dict[str, int] = {}
    for name in SYSTEM_DIRS:
        path = f"/{name}"
        if os.path.isdir(path) and not os.path.islink(path):
            sources[name] = os.open(path, os.O_PATH | os.O_DIRECTORY)
    for name in DEVICES:
        with contextlib.suppress(OSError):
            sources[f"dev/{name}"] = os.open(f"/dev/{name}", os.O_PATH)
    sources["//work"] = os.open(work, os.O_PATH | os.O_DIRECTORY)
    return sources


def _system_dirs(root: str, sources: dict[str, int]) -> None:
    for name in SYSTEM_DIRS:
        path = f"/{name}"
        if os.path.islink(path):
            os.symlink(os.readlink(path), f"{root}/{name}")
        elif name in sources:
            os.mkdir(f"{root}/{name}")
            _bind_read_only(_fd_path(sources[name]), f"{root}/{name}")


def _bind_read_only(source: str, target: str) -> None:
    _mount(source, target, None, _MS_BIND | _MS_REC)
    flags = os.statvfs(target).f_flag
    locked = sum(ms for st, ms in _LOCKED_FLAGS if flags & st)
    _mount(None, target, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | locked)


def _devices(root: str, sources: dict[str, int], tmp_mb: int) -> None:
    dev = f"{root}/dev"
    os.mkdir(dev)
    _mount("tmpfs", dev, "tmpfs", _MS_NOSUID | _MS_NOEXEC, "mode=0755,size=64k")
    for name in DEVICES:
        if f"dev/{name}" in sources:
            open(f"{dev}/{name}", "w").close()  # a mount point
            _mount(_fd_path(sources[f"dev/{name}"]), f"{dev}/{name}", None, _MS_BIND)
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, f"{dev}/{name}")
    os.mkdir(f"{dev}/shm")
    _mount("tmpfs", f"{dev}/shm", "tmpfs", _MS_NOSUID | _MS_NODEV, _tmpfs_opts(tmp_mb))
    _mount(None, dev, None, _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NOEXEC, "size=64k")


def _pivot(root: str) -> None:
    number = _SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise IsolationError(f"pivot_root: unknown system call number on {platform.machine()}")
    os.chdir(root)
    libc = _libc()
    _check(libc.syscall(number, b".", b"."), "pivot_root")
    _check(libc.umount2(b".", _MNT_DETACH), "umount the old root")
    os.chdir("/")
