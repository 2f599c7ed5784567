"""Start a server from a command line, know when it listens, and stop every process it made.

Readiness is a LISTEN socket on the port, owned by the launched process or a descendant,
found with psutil and polled to a deadline. It is deliberately *not* a connect probe: a probe
is a session, and in a fork server its child's exit sends SIGCHLD before any check begins.

Cleanup is provable. The server runs in its own session and process group with its output in
files (never an unread pipe, which would block a chatty server). Every launched process tree
carries a private token in its environment, so stop() finds descendants that called setsid()
or were orphaned, and this process becomes a child subreaper so such orphans are reparented
to us (and reaped by us) rather than left as zombies of a pid 1 that may never wait.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from conformance.harness import reaper
from conformance.harness.polling import wait_until
from conformance.harness.ports import free_port, port_bindable, port_holder, port_taken
from conformance.harness.processes import (
    GONE,
    TOKEN_VAR,
    descendant_pids,
    describe_exit,
    is_running,
    listener_owner,
    longest_run_queue_wait,
    orphans_of_launch,
    proc_table,
    sockets_of,
)
from conformance.harness.reaper import prctl
from conformance.harness.timeouts import KILL_WAIT, POLL_INTERVAL, READY_TIMEOUT, STOP_GRACE

#: A launch the machine kept from a CPU for less than this is not given more time.
LAUNCH_STARVED = 0.25

_SHELL_CHARS = set("|&;<>()$`\\\"'*?[]#~=%")
_PR_SET_PDEATHSIG = 1


class LaunchError(Exception):
    """The server could not be started; `kind` says why, str() says it for a person."""

    def __init__(
        self,
        kind: str,
        message: str,
        port_clash: bool = False,
        elsewhere: tuple[int, ...] = (),
    ) -> None:
        super().__init__(message)
        self.kind = kind
        #: never-listened: the ports the server's processes listen on instead. What to do
        #: about it depends on how the server was given (a command line, a grading config),
        #: so the front end says that (`settings.launch_hint`), not the harness.
        self.elsewhere = elsewhere
        #: The server exited saying its port was taken: when the kit chose the port, another
        #: process took it in the instant before the server's bind(), so try another one.
        self.port_clash = port_clash


@dataclass
class StopReport:
    killed: list[int] = field(default_factory=list)
    waited_s: float = 0.0
    escalated: bool = False
    leftovers: list[int] = field(default_factory=list)


#: Held back while a server is spawned, so that Ctrl-C cannot land between the fork and our
#: record of the new process (a server nobody would stop); delivered right after.
_DEFERRED = {signal.SIGINT, signal.SIGTERM}


#: util-linux's setpriv sets the parent-death signal, then execs the server in place (same
#: pid). With it no Python runs between fork and exec, so subprocess can use vfork(): a spawn
#: from the kit's large process takes about 1.5 ms instead of 12 (the kit spawns a server per
#: generated example). Without it, a preexec_fn does the same, at fork()'s price.
_SETPRIV = shutil.which("setpriv")


def _in_child() -> None:
    # Runs in the forked child before exec (only where setpriv is missing).
    # If the kit dies (even by SIGKILL) the server's direct process is killed too, instead of
    # serving forever on a port nobody watches.
    prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@contextlib.contextmanager
def _holding_interrupts() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back from Python while a server is spawned (see _DEFERRED).

    Unlike blocking them (`_deferring`), this leaves the signal mask alone, so the server,
    which inherits the mask through vfork() and exec(), gets an empty one. Python runs signal
    handlers, and raises KeyboardInterrupt, only in the main thread: elsewhere there is
    nothing to hold back.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {}
    for sig in _DEFERRED:
        if signal.getsignal(sig) is None:  # installed outside Python: could not be put back
            continue
        previous[sig] = signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in caught:
            signal.raise_signal(signum)


@contextlib.contextmanager
def _deferring(signals: set[signal.Signals]) -> Iterator[None]:
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def build_argv(command: str, port: int) -> list[str]:
    """The argv to run: `{port}` filled in; shell syntax goes through /bin/sh -c."""
    filled = command.replace("{port}", str(port))
    if _SHELL_CHARS & set(filled.replace("{port}", "")):
        return ["/bin/sh", "-c", filled]
    try:
        argv = shlex.split(filled)
    except ValueError as exc:
        raise LaunchError("bad-command", f"cannot parse the command {command!r}: {exc}") from exc
    if not argv:
        raise LaunchError("bad-command", "the server command is empty")
    return argv


def _check_runnable(program: str, command: str) -> None:
    """Say why exec() would fail, before we fork: the way exec() looks `program` up (a path
    when it has a slash, else the PATH), so a missing or non-executable file is reported as
    such, not as a server that exited with status 126 or 127."""
    if shutil.which(program) is not None:
        return
    if "/" in program and Path(program).is_file():
        raise LaunchError(
            "not-found",
            f"cannot run {program!r}: it is not executable (command: {command!r}). "
            f"Make it executable (chmod +x {program}) or name its interpreter first.",
        )
    raise LaunchError(
        "not-found",
        f"the server command {program!r} was not found (command: {command!r}). "
        "Check the path, build the server first, or use ./name for a file here.",
    )


class LaunchedServer:
    """A server process tree we started, and everything needed to stop all of it."""

    _live: set[LaunchedServer] = set()  # noqa: RUF012 - registry for atexit cleanup

    def __init__(
        self, command: str, port: int, log_dir: Path | None = None, fixed_port: bool = False
    ) -> None:
        self.command = command
        self.port = port
        #: The port was given (or the command hard-codes it), not chosen by the kit.
        self.fixed_port = fixed_port
        self.token = uuid.uuid4().hex
        self._own_log_dir = log_dir is None
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="conformance-"))
        self.stdout_path = self.log_dir / "server.stdout"
        self.stderr_path = self.log_dir / "server.stderr"
        self.popen: subprocess.Popen[bytes] | None = None
        self.listener_pid: int | None = None
        self.seen: set[int] = set()
        #: When each process in `seen` (but the server's own) was started: which process a
        #: pid meant, once pids come round again (see _late_processes).
        self._born: dict[int, float] = {}
        self.stopped = False
        #: When terminate() sent SIGTERM, if it did: stop() then waits only what is left.
        self.terminated_at: float | None = None
        #: How long it was given to listen (--start-timeout); a restart gets as long.
        self.ready_timeout = READY_TIMEOUT
        #: The launched process exited with status 0 and a process it started serves on:
        #: the server daemonized itself (daemon(3)); `listener_pid` is that process.
        self.daemonized = False

    # -- starting ---------------------------------------------------------------------------
    def start(self, ready_timeout: float = READY_TIMEOUT) -> LaunchedServer:
        """Spawn the server and wait until it listens (stopping it if it never does)."""
        return self.spawn().wait_ready(ready_timeout)

    def spawn(self) -> LaunchedServer:
        """Start the process without waiting for it: `wait_ready` later."""
        argv = build_argv(self.command, self.port)
        env = dict(os.environ, PORT=str(self.port), **{TOKEN_VAR: self.token})
        env.setdefault("PYTHONUNBUFFERED", "1")
        _check_runnable(argv[0], self.command)
        with (
            open(self.stdout_path, "wb") as out,
            open(self.stderr_path, "wb") as err,
            _holding_interrupts(),
        ):
            try:
                self.popen = subprocess.Popen(
                    [_SETPRIV, "--pdeathsig", "KILL", "--", *argv] if _SETPRIV else argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    env=env,
                    start_new_session=True,
                    preexec_fn=None if _SETPRIV else _in_child,
                )
            except (FileNotFoundError, PermissionError) as exc:
                raise LaunchError(
                    "not-found", f"cannot run {argv[0]!r}: {exc.strerror} ({self.command!r})"
                ) from exc
            LaunchedServer._live.add(self)
            self.seen.add(self.popen.pid)
        return self

    def wait_ready(self, ready_timeout: float = READY_TIMEOUT) -> LaunchedServer:
        self.ready_timeout = ready_timeout
        try:
            self._wait_ready(ready_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        """Until the server listens, at most `timeout` s of its own time: the time a busy
        machine kept its processes from a CPU (born with the launch, every wait of theirs
        on the run queue is the launch's) is given again, at most `timeout` more in all."""
        assert self.popen is not None
        deadline = time.monotonic() + timeout
        given = 0.0
        # Look again soon at first (an interpreter listens after some 20 to 40 ms), then
        # every POLL_INTERVAL: a server is often wanted before it is ready.
        pause = 0.002
        while True:
            if self.popen.poll() is not None and not self._daemonizing():
                self._raise_exited()
            # Reading process and socket tables is costly on a busy machine; a failing bind()
            # is a cheap sign that something listens now, and makes no connection (no session).
            if port_taken(self.port):
                # Usually the launched process listens itself; its tree is read only if not.
                owner = listener_owner(self.port, [self.pid]) or listener_owner(
                    self.port, self._tree() + self._adopted()
                )
                if owner is not None:
                    self.listener_pid = owner
                    return
            if time.monotonic() >= deadline:
                tree = self._tree()
                owed = min(longest_run_queue_wait(tree) - given, timeout - given)
                if owed < LAUNCH_STARVED:
                    self._raise_never_listened(timeout, tree, given)
                given += owed
                deadline += owed
            time.sleep(pause)
            pause = min(pause * 1.5, POLL_INTERVAL)

    def _daemonizing(self) -> bool:
        """The launched process exited with status 0 while processes it started live on:
        a server that daemonizes (daemon(3): fork, the parent exits, the child calls
        setsid() and serves). It is followed: the process of this launch that owns the
        listening socket is the server (see docs/design.md)."""
        assert self.popen is not None
        if self.popen.returncode != 0:
            return False
        if not self.daemonized:
            self.daemonized = bool(self._adopted())
        return self.daemonized

    def _adopted(self) -> list[int]:
        """Live processes of this launch that left its tree (reparented to the kit, or to
        pid 1 where the kit is no subreaper), with their descendants; remembered for stop()."""
        if self.popen is None or self.stopped:
            return []
        table = proc_table()
        found: list[int] = []
        for pid in orphans_of_launch(lambda p: _alive_and_ours(p, self.token, -1), table):
            if pid != self.pid:
                found += [pid, *descendant_pids(pid, table=table)]
        self._remember(found)
        return found

    def _raise_exited(self) -> None:
        assert self.popen is not None
        tail = self.stderr_tail()
        hint = ""
        clash = "address already in use" in tail.lower()
        elsewhere: tuple[int, ...] = ()
        if clash and not self.fixed_port and not port_taken(self.port):
            # The port the kit gave it is free, and another instance of it listens elsewhere:
            # it bound a port of its own (a hard-coded one), which that instance holds. Trying
            # another port cannot help, and the report must say what the instance that
            # started says: where it listens. (With no such instance, connections lingering
            # on the port the kit chose are the likelier cause: another port is tried.)
            elsewhere = self._ports_of_other_instances()
        if elsewhere:
            clash = False
            ports = ", ".join(map(str, elsewhere))
            hint = (
                " It says its address is already in use, though that port is free; another "
                f"instance of it listens on port(s) {ports}. It listens on port(s) {ports} "
                "instead."
            )
        elif clash:
            hint = f" Port {self.port} is already in use."
        if self.popen.returncode == 127:
            hint = " Exit status 127 is the shell's 'command not found'."
        raise LaunchError(
            "never-listened" if elsewhere else "exited",
            f"the server {describe_exit(self.popen.returncode)} before it listened on port "
            f"{self.port}.{hint}\n  command: {self.command}\n  last lines of its stderr:\n"
            + _indent(tail or "(empty)"),
            port_clash=clash,
            elsewhere=elsewhere,
        )

    def _ports_of_other_instances(self) -> tuple[int, ...]:
        """The ports that other running instances of this command listen on, not their own."""
        ports: set[int] = set()
        for other in list(LaunchedServer._live):
            if other is self or other.command != self.command or other.popen is None:
                continue
            if other.popen.poll() is None:
                ports |= set().union(*(_listening_ports(pid) for pid in other._tree()))
                ports.discard(other.port)
        return tuple(sorted(ports))

    def _raise_never_listened(self, timeout: float, tree: list[int], given: float = 0.0) -> None:
        other = sorted(set().union(*(_listening_ports(pid) for pid in tree)))
        where = f" It listens on port(s) {', '.join(map(str, other))} instead." if other else ""
        starved = (
            f" (and {given:.1f} s more: the machine kept it from a CPU that long)" if given else ""
        )
        raise LaunchError(
            "never-listened",
            f"the server did not listen on port {self.port} within {timeout:.0f} s"
            f"{starved}.{where}\n"
            f"  command: {self.command}\n  last lines of its stderr:\n"
            + _indent(self.stderr_tail() or "(empty)"),
            elsewhere=tuple(other),
        )

    # -- looking at it ----------------------------------------------------------------------
    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def _tree(self) -> list[int]:
        pids = [self.pid, *descendant_pids(self.pid)]
        self._remember(pids)
        return pids

    def _remember(self, pids: list[int]) -> None:
        for pid in pids:
            if pid not in self.seen:
                self.seen.add(pid)
                with contextlib.suppress(*GONE):
                    self._born[pid] = psutil.Process(pid).create_time()

    def returncode(self) -> int | None:
        """The server's exit status, None while it runs. For a server that daemonized, the
        status of the process that listens, which is not ours to wait for: None while it
        is alive, 0 once it is gone (what killed it, if anything, is not known here)."""
        assert self.popen is not None
        code = self.popen.poll()
        if code == 0 and not self.daemonized and self.listener_pid not in (None, self.pid):
            # A daemon whose child listened before the parent exited (a busy machine): the
            # launch saw the child in the tree; the parent's exit makes it a daemon now.
            self._daemonizing()
        if self.daemonized and self.listener_pid is not None:
            return None if is_running(self.listener_pid) else 0
        return code

    def stderr_tail(self, lines: int = 10) -> str:
        try:
            with open(self.stderr_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 8192))
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def output_size(self) -> int:
        """Bytes in the larger of its stdout and stderr files (what a log flood fills)."""
        sizes = [0]
        for path in (self.stdout_path, self.stderr_path):
            with contextlib.suppress(OSError):
                sizes.append(path.stat().st_size)
        return max(sizes)

    def note_descendants(self) -> None:
        """Remember the current tree, so stop() can find processes that later leave it."""
        if self.popen is not None and not self.stopped:
            self._tree()
            # Processes of this launch that left the tree (a double fork's grandchildren,
            # a daemon): signalled with the rest, waited for, and reaped by the stop.
            self._adopted()

    # -- stopping ---------------------------------------------------------------------------
    @property
    def ended_by_kit(self) -> bool:
        """Stopped, or being stopped (SIGTERM sent), by the kit: its end is no death."""
        return self.stopped or self.terminated_at is not None

    def terminate(self) -> None:
        """The first half of stop(): SIGTERM the group and every pid seen, without waiting."""
        if self.stopped or self.popen is None or self.terminated_at is not None:
            return
        with _deferring(_DEFERRED):
            self.note_descendants()
            _killpg(self.pid, signal.SIGTERM)
            for pid in self.seen - {self.pid}:
                _kill(pid, signal.SIGTERM)
            self.terminated_at = time.monotonic()

    def stop(self, grace: float = STOP_GRACE) -> StopReport:
        """SIGTERM the group, wait `grace`, SIGKILL the group, then every straggler we made."""
        if self.stopped or self.popen is None:
            return StopReport()
        # A second Ctrl-C must not cut this short: what is half stopped is never stopped.
        with _deferring(_DEFERRED):
            return self._stop(grace)

    def _stop(self, grace: float) -> StopReport:
        report = StopReport()
        t0 = time.monotonic()
        self.terminate()
        self.stopped = True
        popen = self.popen
        assert self.terminated_at is not None and popen is not None
        left = max(0.0, grace - (time.monotonic() - self.terminated_at))
        exited, _ = wait_until(lambda: self.returncode() is not None, left)
        _killpg(self.pid, signal.SIGKILL)
        # Descendants that left the group (setsid) or the tree (orphans), by pid and by token.
        # The machine-wide token scan reads every process's environment: done once, not polled.
        stragglers = self._stragglers()
        self._remember(stragglers)  # carrying the launch's token: reaped late if need be
        report.escalated = not exited or bool(stragglers)
        for pid in stragglers:
            _kill(pid, signal.SIGKILL)
        report.killed = stragglers
        # SIGKILL cannot be refused, but a process dies only once it runs again, which on a
        # loaded machine can take over a second; one that dies after we stop waiting stays a
        # zombie nobody reaps (a prefork server's killed workers, say). Only a server that
        # left stragglers waits this long.
        wait_until(lambda: not any(is_running(pid) for pid in stragglers), max(grace, KILL_WAIT))
        late_popen: subprocess.Popen[bytes] | None = None
        try:
            popen.wait(timeout=max(grace, KILL_WAIT))  # SIGKILLed with its group above
        except subprocess.TimeoutExpired:
            # Killed, but not yet dead (it has not run since): reaped whenever it dies, so it
            # never stays a zombie of ours, however long a loaded machine takes.
            late_popen = popen
        # Only a tree that had stragglers can have grown new ones while we killed them.
        report.leftovers = self._stragglers() if stragglers else []
        reap_adopted(_owned())
        # The server's other processes still there (one exiting when the stragglers were
        # read, its environment already gone; one the machine has not run since; the zombie
        # children of a server not dead yet, handed to us when it dies): each is reaped when
        # it dies, so none stays a zombie of ours.
        late = self._late_processes()
        if late or late_popen is not None:
            threading.Thread(
                target=_reap_late, args=(late_popen, late), name=f"reap-{self.pid}", daemon=True
            ).start()
        report.waited_s = time.monotonic() - t0
        LaunchedServer._live.discard(self)
        global LARGEST_OUTPUT
        LARGEST_OUTPUT = max(LARGEST_OUTPUT, self.output_size())
        if self._own_log_dir and not report.leftovers:
            shutil.rmtree(self.log_dir, ignore_errors=True)
        return report

    def _late_processes(self) -> list[int]:
        """Pidfds of the processes of this launch seen before the stop (not its own, which
        Popen waits for) that still exist, alive or zombie. Held by pidfd, and each checked
        to be the very process seen (its start time), never taken by pid: pids come round
        again within minutes on a busy machine (pid_max is often 32768), and a wait on a pid
        another child of ours had taken since (a Popen of the test that launched this
        server, another server) would take its exit status. Empty without pidfds."""
        if not hasattr(os, "pidfd_open") or not hasattr(os, "P_PIDFD"):
            return []
        fds = []
        for pid, born in self._born.items():
            if pid == self.pid:
                continue
            try:
                fd = os.pidfd_open(pid)
            except OSError:
                continue
            try:  # the same process, not one that took its pid since
                same = psutil.Process(pid).create_time() == born
            except GONE:
                same = False
            if same:
                fds.append(fd)
            else:
                os.close(fd)
        return fds

    def _stragglers(self) -> list[int]:
        """Live (non-zombie) processes we launched: seen pids, the group and the token.

        As a subreaper we adopt every orphan our servers leave, so whatever they left behind
        is among our own descendants, and only those need their environment read. Otherwise
        every process on the machine is a suspect.
        """
        found = {pid for pid in self.seen if _alive_and_ours(pid, self.token, self.pid)}
        suspects: list[int] = []
        if reaper.is_subreaper():
            suspects = descendant_pids(os.getpid())
        else:
            suspects = [p.pid for p in psutil.process_iter()]
        me = os.getpid()
        found.update(
            pid
            for pid in suspects
            if pid not in found and pid != me and _alive_and_ours(pid, self.token, self.pid)
        )
        return sorted(found)


def _reap_late(popen: subprocess.Popen[bytes] | None, pidfds: list[int]) -> None:
    """Wait for a killed server that had not died yet, then reap the processes of its launch
    (pidfds) as they die and become ours, for at most LATE_REAP_LIMIT."""
    if popen is not None:
        popen.wait()
    deadline = time.monotonic() + LATE_REAP_LIMIT
    try:
        while pidfds and time.monotonic() < deadline:
            for fd in list(pidfds):
                try:
                    reaped = os.waitid(os.P_PIDFD, fd, os.WEXITED | os.WNOHANG) is not None
                except ChildProcessError:  # not ours (yet: its parent has not died)
                    reaped = False
                except OSError:
                    reaped = True  # nothing to wait for here
                if reaped:
                    pidfds.remove(fd)
                    os.close(fd)
            time.sleep(LATE_REAP_POLL)
    finally:
        for fd in pidfds:
            os.close(fd)


#: How long a stopped server's late processes are waited for, and how often looked at.
LATE_REAP_LIMIT = 30.0
LATE_REAP_POLL = 0.1


def _owned() -> set[int]:
    """Pids of the servers' own processes, which their Popen objects wait for."""
    return {s.popen.pid for s in LaunchedServer._live if s.popen is not None}


def reap_adopted(owned: set[int] | None = None) -> None:
    """Reap the orphans we adopted (see reaper.reap_adopted), leaving our servers to Popen."""
    reaper.reap_adopted(_owned() if owned is None else owned)


def _alive_and_ours(pid: int, token: str, root: int) -> bool:
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if pid == root:
            return True
        return proc.environ().get(TOKEN_VAR) == token
    except GONE:
        return False


def _listening_ports(pid: int) -> set[int]:
    return {s.laddr[1] for s in sockets_of(pid) if s.status == psutil.CONN_LISTEN and s.laddr}


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def launch(
    command: str,
    port: int | None = None,
    ready_timeout: float = READY_TIMEOUT,
    log_dir: Path | None = None,
) -> LaunchedServer:
    """Start `command` and wait until it listens.

    With `{port}` in the command a free port is chosen unless `port` is given; without it,
    `port` is the port the server hard-codes and must be given.
    """
    if "{port}" not in command and port is None:
        raise LaunchError(
            "bad-command",
            f"the command {command!r} has no {{port}} placeholder and no port was given, so "
            "the kit cannot tell which port the server uses",
        )
    if port is None:
        return on_free_port(
            lambda: LaunchedServer(command, free_port(), log_dir).spawn(),
            ready_timeout=ready_timeout,
        )
    holder = port_holder(port) if port_taken(port) else None
    ours = [s for s in LaunchedServer._live if s.port == port and not s.stopped]
    if holder is not None and ours:
        raise LaunchError(
            "kit-error",
            f"port {port} is still held by {holder}, a server the kit started earlier and has "
            "not stopped: a kit error, not your server's",
        )
    if holder is not None:
        raise LaunchError(
            "port-in-use",
            f"port {port} is already in use by {holder}, which the kit did not start",
        )
    return _on_fixed_port(
        lambda: LaunchedServer(command, port, log_dir, fixed_port=True).spawn(),
        port,
        ready_timeout,
    )


#: Linux keeps a connection that was closed first on its side in TIME_WAIT for 60 s
#: (TCP_TIMEWAIT_LEN), and an orphaned FIN_WAIT2 for tcp_fin_timeout (60 s by default); a
#: server without SO_REUSEADDR cannot bind its port until they are gone.
LINGER_LIMIT = 65.0
#: How long connections of the previous instance may take to finish closing (FIN, ACK) on
#: loopback before a fixed-port server is started anyway.
RELEASE_WAIT = 1.0

#: The most a launched server wrote to its stdout or stderr file, in bytes: a grader
#: compares it with the file-size limit it set (RLIMIT_FSIZE), before the files are gone.
LARGEST_OUTPUT = 0

#: Things the kit did that the user should know, though no check failed for them (the plugin
#: prints them once in its summary).
NOTES: list[str] = []


def _on_fixed_port(spawn, port: int, ready_timeout: float) -> LaunchedServer:
    """Start a server that binds the fixed `port`, once the port can be bound.

    The previous instance's connections may still be closing; the kit closes its clients so
    that nothing of theirs stays on the server's port (see client.close_socket), so that is
    over in a moment. If something is still left there (a connection the server closed first
    and the kit could not reset), a server that sets SO_REUSEADDR starts anyway; one that does
    not fails to bind, and then the kit waits for the kernel to release the port (at most
    LINGER_LIMIT) and starts it again, and says so.
    """
    wait_until(lambda: port_bindable(port), RELEASE_WAIT)
    for attempt in range(1, FIXED_PORT_ATTEMPTS + 1):
        try:
            return spawn().wait_ready(ready_timeout)
        except LaunchError as exc:
            # Only a bind that something on the port refused is worth waiting out.
            held = exc.port_clash or not port_bindable(port)
            if attempt == FIXED_PORT_ATTEMPTS or not held or exc.kind == "kit-error":
                raise
        t0 = time.monotonic()
        freed, _ = wait_until(lambda: port_bindable(port), LINGER_LIMIT, interval=0.1)
        if not freed:
            raise LaunchError(
                "port-in-use",
                f"port {port} was still held {LINGER_LIMIT:.0f} s after the previous instance "
                "stopped",
            )
        NOTES.append(
            f"port {port} still held connections of a stopped instance (TIME_WAIT), and the "
            f"server could not bind it (it does not set SO_REUSEADDR: see EXIT-6), so the kit "
            f"waited {time.monotonic() - t0:.1f} s for the kernel to release the port"
        )
    raise AssertionError("unreachable")


#: Launches on a fixed port, when something of the previous instance still held it.
FIXED_PORT_ATTEMPTS = 3


def restart_on_port(stopped: LaunchedServer) -> LaunchedServer:
    """A new instance of a stopped server on the same port, started at once: without waiting
    for the port to be released, which is what EXIT-6 judges. It may take as long to listen
    as the first. Raises LaunchError if it does not listen (the new instance is stopped)."""
    assert stopped.stopped, "stop the first instance before starting the second"
    return LaunchedServer(stopped.command, stopped.port, fixed_port=True).start(
        stopped.ready_timeout
    )


#: Launches on a port the kit chose, when the port turned out to be taken (see port_clash).
PORT_ATTEMPTS = 3


def on_free_port(
    spawn, first: LaunchedServer | None = None, ready_timeout: float = READY_TIMEOUT
) -> LaunchedServer:
    """`spawn()` and wait until it listens, on another free port if another process took the
    one chosen between our check and the server's bind(). A server that clashes on every
    port (it binds a port of its own as well, say) gets its own error after PORT_ATTEMPTS."""
    server = first or spawn()
    for attempt in range(1, PORT_ATTEMPTS + 1):
        try:
            return server.wait_ready(ready_timeout)
        except LaunchError as exc:
            if not exc.port_clash or attempt == PORT_ATTEMPTS:
                raise
        server = spawn()
    raise AssertionError("unreachable")


@atexit.register
def _stop_all() -> None:
    """Last line of defence: a run that ends any way at all stops what it launched.

    Then it waits (at most KILL_WAIT) for the orphans it adopted as a subreaper, killed with
    their servers, to finish dying, and reaps them: one still dying when this process exits
    would be handed to whoever waits for us, as a zombie of theirs.
    """
    for server in list(LaunchedServer._live):
        server.stop(grace=0.2)

    def adopted_gone() -> bool:
        reap_adopted(_owned())
        return not any(_alive_and_launched(pid) for pid in descendant_pids(os.getpid(), False))

    if reaper.is_subreaper():
        wait_until(adopted_gone, KILL_WAIT)
    reap_adopted(_owned())


def _alive_and_launched(pid: int) -> bool:
    """A live process that carries a launch token: a server of ours or one of its children."""
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and TOKEN_VAR in proc.environ()
    except GONE:
        return False
