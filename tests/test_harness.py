"""The harness on its own: the client driver's judgements and the launcher's cleanup."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections.abc import Iterator

import psutil
import pytest

from conformance.harness import Client, LaunchError, Transcript, Violation, launch
from tests.conftest import ROOT

PY_SERVERS = ROOT / "tests" / "servers" / "py"


@pytest.fixture
def replying_with() -> Iterator:  # type: ignore[type-arg]
    """A one-connection loopback server that answers every message with the given bytes."""
    listeners: list[socket.socket] = []

    def start(reply: bytes) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                while conn.recv(1024):
                    conn.sendall(reply)

        threading.Thread(target=serve, daemon=True).start()
        return listener.getsockname()[1]

    yield start
    for listener in listeners:
        listener.close()


def test_expect_accepts_the_exact_reply(replying_with) -> None:  # type: ignore[no-untyped-def]
    client = Client.connect("127.0.0.1", replying_with(b"OK!!!"), "A", Transcript())
    client.send(b"hello")
    client.expect(b"OK!!!")
    assert client.transcript.steps[-1] == "received b'OK!!!' on A"
    client.close()


def test_expect_rejects_a_trailing_newline(replying_with) -> None:  # type: ignore[no-untyped-def]
    client = Client.connect("127.0.0.1", replying_with(b"OK!!!\n"), "A", Transcript())
    client.send(b"hello")
    with pytest.raises(Violation) as info:
        client.expect(b"OK!!!")
    assert "1 extra byte(s) b'\\n'" in info.value.actual
    assert info.value.did == ["opened client A", "sent b'hello' on A"]
    client.close()


def test_reply_does_not_judge_bytes(replying_with) -> None:  # type: ignore[no-untyped-def]
    client = Client.connect("127.0.0.1", replying_with(b"OK\n"), "A", Transcript())
    assert client.request(b"hello") == b"OK\n"
    client.close()


def test_connect_failure_is_a_violation() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(Violation, match="accepts a connection"):
            Client.connect("127.0.0.1", port, "A", Transcript())


@pytest.mark.parametrize(
    ("command", "kind"),
    [
        ("/nonexistent/server {port}", "not-found"),
        (f"{sys.executable} {PY_SERVERS / 'exits_at_once.py'} --port {{port}}", "exited"),
        ("./server-with-a-fixed-port", "bad-command"),
    ],
)
def test_launch_errors_say_what_happened(command: str, kind: str) -> None:
    with pytest.raises(LaunchError) as info:
        launch(command)
    assert info.value.kind == kind


def test_a_file_that_is_not_executable_is_reported_as_such(tmp_path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "server.py"
    script.write_text("print('never runs')\n")  # no chmod +x
    with pytest.raises(LaunchError, match="not executable") as info:
        launch(f"{script} {{port}}")
    assert info.value.kind == "not-found"


def test_stop_ends_descendants_that_left_the_group() -> None:
    server = launch(f"{sys.executable} {PY_SERVERS / 'setsid_forker.py'} --port {{port}}")
    server.note_descendants()
    escaped = [p for p in psutil.Process(server.pid).children() if p.pid != server.pid]
    report = server.stop()
    assert len(escaped) == 100  # each in a session of its own: killpg() does not reach them
    assert report.leftovers == []
    assert not [p for p in escaped if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_a_port_taken_before_the_server_binds_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """Between the kit's choice of a free port and the server's bind() another process may
    take it; the server then exits with EADDRINUSE and the kit launches on another port."""
    from conformance.harness import launcher

    with socket.socket() as held:
        held.bind(("0.0.0.0", 0))
        held.listen()
        taken = held.getsockname()[1]
        ports = iter([taken, launcher.free_port()])
        monkeypatch.setattr(launcher, "free_port", lambda host="127.0.0.1": next(ports))
        server = launcher.launch(
            f"{sys.executable} -m reference_servers.thread_server --host 0.0.0.0 --port {{port}}"
        )
        try:
            assert server.port != taken
            assert server.listener_pid is not None
        finally:
            server.stop()


def test_ports_differ_between_generated_examples() -> None:
    """Hypothesis seeds the `random` module afresh for each example; ports drawn from it came
    out the same in every example and in every concurrent kit run with the same --seed, so
    concurrent runs launched on one another's ports (the flake figure caught it)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from conformance.harness.launcher import free_port

    ports: list[int] = []

    @settings(max_examples=8, database=None)
    @given(st.integers())
    def example(_: int) -> None:
        ports.append(free_port())

    example()
    assert len(set(ports)) > 1, ports


LATE_PREFORK = """
import os, socket, sys, time
s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
time.sleep(0.3)  # the workers start after the server listens, as the kit starts looking
for _ in range(4):
    if os.fork() == 0:
        while True:
            c = s.accept()[0]
            while (m := c.recv(1024)) and m != b"exit":
                c.sendall(b"OK!!!")
            c.close()
while True:
    time.sleep(1)
"""


LATE_POOL = """
import socket, sys, threading, time
s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
time.sleep(0.3)  # the pool starts after the server listens, as the kit starts looking
def work():
    while True:
        c = s.accept()[0]
        while (m := c.recv(1024)) and m != b"exit":
            c.sendall(b"OK!!!")
        c.close()
for _ in range(4):
    threading.Thread(target=work, daemon=True).start()
while True:
    time.sleep(1)
"""


@contextlib.contextmanager
def _script_server(tmp_path, source: str):  # type: ignore[no-untyped-def]
    """A Python server from `source`, launched and handed over the moment it listens."""
    from conformance.harness.processes import ServerProcess
    from conformance.harness.target import Server

    script = tmp_path / "server.py"
    script.write_text(source)
    launched = launch(f"{sys.executable} -S {script} {{port}}")
    try:
        assert launched.listener_pid is not None
        server = Server("127.0.0.1", launched.port, "ok", "unknown", launched)
        server.process = ServerProcess(launched.listener_pid)
        yield server
    finally:
        launched.stop()


@pytest.mark.parametrize(
    "source, model",
    [(LATE_PREFORK, "prefork"), (LATE_POOL, "pool")],
    ids=["prefork-workers-are-not-fork-children", "pool-is-not-thread-per-connection"],
)
def test_workers_started_after_listen_do_not_fool_model_detection(  # type: ignore[no-untyped-def]
    tmp_path, source: str, model: str
) -> None:
    """A server may start its workers after it listens, while detection looks. Prefork
    workers that did not exist when detection began are not fork children; a pool's threads
    appear during the first probes, as a thread per connection's would, but outlive the
    sessions."""
    from conformance.harness.model import detect_model

    with _script_server(tmp_path, source) as server:
        assert detect_model(server) == model


def test_a_pool_started_after_listen_is_not_a_thread_leak(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """EXIT-4 counts threads before and after its sessions. A pool that starts after the
    server listens must not look like threads the sessions left behind (with two servers
    launched ahead, the pool reference was once taken before its workers had started)."""
    from conformance.checks.test_exit import test_ended_sessions_free_their_process_or_thread

    with _script_server(tmp_path, LATE_POOL) as server:
        assert server.process is not None
        assert server.process.thread_count() == 1  # the pool is not there yet
        test_ended_sessions_free_their_process_or_thread(server)


@pytest.mark.parametrize("setpriv", [True, False], ids=["setpriv", "preexec"])
def test_a_launched_server_starts_with_no_signal_blocked(  # type: ignore[no-untyped-def]
    tmp_path, monkeypatch: pytest.MonkeyPatch, setpriv: bool
) -> None:
    """The kit holds Ctrl-C back while it spawns a server; the server must not inherit that
    (a server with SIGTERM blocked would never stop on it, and EXIT-5 would blame it). Both
    ways of spawning: through setpriv, and with a preexec_fn where setpriv is missing."""
    from conformance.harness import launcher

    if not setpriv:
        monkeypatch.setattr(launcher, "_SETPRIV", None)
    elif launcher._SETPRIV is None:
        pytest.skip("setpriv (util-linux) is not installed here")
    script = tmp_path / "mask.py"
    script.write_text(
        "import socket, sys, time\n"
        "blocked = open('/proc/self/status').read().split('SigBlk:')[1].split()[0]\n"
        "print(blocked, flush=True)\n"
        "s = socket.create_server(('127.0.0.1', int(sys.argv[1])))\n"
        "time.sleep(30)\n"
    )
    launched = launch(f"{sys.executable} -S {script} {{port}}")
    try:
        assert int(launched.stdout_path.read_text().split()[0], 16) == 0
    finally:
        launched.stop()


@pytest.mark.parametrize("family, host", [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def test_sock_diag_and_psutil_agree_on_who_holds_a_connection(
    monkeypatch: pytest.MonkeyPatch, family: socket.AddressFamily, host: str
) -> None:
    """The netlink lookup (harness/sockdiag.py) and psutil's /proc/net parse, its fallback
    where netlink is not allowed, must find the same holders and listeners."""
    import os

    from conformance.harness import processes

    with socket.create_server((host, 0), family=family) as listener:
        port = listener.getsockname()[1]
        with socket.create_connection((host, port), timeout=5) as client:
            served, _ = listener.accept()
            with served:
                pid, addr, served_fd = os.getpid(), client.getsockname()[:2], served.fileno()
                fast = processes.holders_of_connection([pid], addr, port)
                owner = processes.listener_owner(port, [pid])
                monkeypatch.setattr(processes, "tcp_sockets", lambda *a, **k: None)
                monkeypatch.setattr(processes, "listening_inodes", lambda *a, **k: None)
                slow = processes.holders_of_connection([pid], addr, port)
                assert processes.listener_owner(port, [pid]) == owner == pid
    assert [(h.pid, h.fd, h.inode, h.status) for h in fast] == [
        (h.pid, h.fd, h.inode, h.status) for h in slow
    ]
    assert [(h.fd, h.raddr) for h in fast] == [(served_fd, addr)]


def test_a_slow_strace_is_ended_without_failing_the_check() -> None:
    """strace slow to detach and to die (CI at a load of 80 saw both take over a second) is
    killed and waited for, and never raises into the check, which would blame the server."""
    import subprocess

    from conformance.harness.signals import _stop_tracer

    class Slow:
        signals: list[str] = []  # noqa: RUF012

        def poll(self) -> None:
            return None

        def send_signal(self, sig: int) -> None:
            self.signals.append("TERM")

        def kill(self) -> None:
            self.signals.append("KILL")

        def wait(self, timeout: float) -> int:
            raise subprocess.TimeoutExpired("strace", timeout)

    slow = Slow()
    _stop_tracer(slow)  # type: ignore[arg-type]
    assert slow.signals == ["TERM", "KILL"]


def test_signal_pending_sees_a_blocked_signal_and_its_delivery() -> None:
    """EINTR-1 goes on once the parent has taken its child's SIGCHLD: the pending bit must
    be seen while the signal is blocked, and gone once it is delivered."""
    import signal
    import subprocess

    from conformance.harness.polling import wait_until
    from conformance.harness.processes import ServerProcess

    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGCHLD, lambda *a: None)\n"
        "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})\n"
        "print('blocked', flush=True); sys.stdin.readline()\n"
        "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})\n"
        "time.sleep(30)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-S", "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline() == b"blocked\n"
        proc = ServerProcess(child.pid)
        assert not proc.signal_pending(signal.SIGCHLD)
        child.send_signal(signal.SIGCHLD)
        assert wait_until(lambda: proc.signal_pending(signal.SIGCHLD), 5)[0]
        assert not proc.signal_pending(signal.SIGWINCH)
        child.stdin.write(b"go\n")
        child.stdin.flush()
        assert wait_until(lambda: not proc.signal_pending(signal.SIGCHLD), 5)[0]
    finally:
        child.kill()
        child.wait(5)


def test_an_orphan_we_adopted_is_reaped() -> None:
    """As a subreaper the kit adopts what its servers orphan; once dead those are zombies of
    ours, and stop() must reap them (the usual case, no zombie child, is only looked at)."""
    import os
    import subprocess

    from conformance.harness.polling import wait_until
    from conformance.harness.processes import proc_table
    from conformance.harness.reaper import become_subreaper, reap_adopted

    become_subreaper()
    # The middle process forks and leaves without waiting: its child (a short sleep) is
    # reparented to us, alive or already a zombie. (A Popen there would reap it on exit.)
    middle = (
        "import os\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os.execvp('sleep', ['sleep', '0.05'])\n"
        "print(pid, flush=True)\n"
        "os._exit(0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", middle], capture_output=True, check=True, timeout=5
    )
    orphan = int(out.stdout)
    assert wait_until(lambda: proc_table().get(orphan) == (os.getpid(), "Z"), 5)[0]
    reap_adopted(owned=set())
    assert orphan not in proc_table()


def test_accept_queue_counts_connections_not_yet_accepted() -> None:
    """EXIT-3 waits until the server has accepted every reset connection; sock_diag's count
    of a listener's queue must see them there, and see them go."""
    from conformance.harness.polling import wait_until
    from conformance.harness.sockdiag import accept_queue

    with socket.create_server(("127.0.0.1", 0), backlog=8) as listener:
        port = listener.getsockname()[1]
        assert accept_queue(port) == 0
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
        try:
            assert wait_until(lambda: accept_queue(port) == 3, 5)[0]
            listener.accept()[0].close()
            assert accept_queue(port) == 2
        finally:
            for c in clients:
                c.close()


@pytest.mark.parametrize("schedstat", [True, False], ids=["schedstat", "clock-ticks"])
def test_cpu_share_tells_a_spinning_process_from_an_idle_one(
    monkeypatch: pytest.MonkeyPatch, schedstat: bool
) -> None:
    """EXIT-4's busy-loop test, both ways of measuring: nanoseconds from schedstat, and the
    clock ticks psutil reads where schedstat is missing. (The spinner's bound is low so that
    a loaded machine, which gives it less than a core, still shows it busy.)"""
    import subprocess

    from conformance.harness import processes
    from conformance.harness.polling import wait_until

    monkeypatch.setattr(processes, "_HAS_SCHEDSTAT", schedstat and processes._HAS_SCHEDSTAT)
    if schedstat and not processes._HAS_SCHEDSTAT:
        pytest.skip("this kernel has no /proc/PID/schedstat")
    spinner = subprocess.Popen([sys.executable, "-S", "-c", "while True: pass"])
    idle = subprocess.Popen(["sleep", "30"])
    try:
        # Measured once it sleeps: starting up is not idling.
        assert wait_until(lambda: processes.proc_table()[idle.pid][1] == "S", 5)[0]
        assert processes.ServerProcess(spinner.pid).cpu_share(0.5) > 0.05
        assert processes.ServerProcess(idle.pid).cpu_share(0.5) < processes.IDLE_SHARE
    finally:
        for p in (spinner, idle):
            p.kill()
            p.wait(5)
