"""Launching: errors say what happened, stop() ends every process, a clean signal mask."""

from __future__ import annotations

import shlex
import socket
import sys

import psutil
import pytest

from conformance.harness import LaunchError, launch
from conformance.harness.launcher import LaunchedServer
from conformance.harness.polling import wait_until
from conformance.harness.ports import free_port, port_taken
from tests.conftest import ROOT

PY_SERVERS = ROOT / "tests" / "servers" / "py"


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
            f"{sys.executable} {ROOT / 'reference_servers' / 'thread_server.py'} "
            f"--host 0.0.0.0 --port {{port}}"
        )
        try:
            assert server.port != taken
            assert server.listener_pid is not None
        finally:
            server.stop()


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


def test_a_second_instance_of_a_hard_coded_port_says_where_the_first_listens() -> None:
    """A server that ignores {port} and binds its own: the kit keeps one instance ready ahead,
    so a second one may start while the first holds that port and exit with EADDRINUSE. The
    error must say where the first listens (as a lone instance's does), not that the kit's
    port, which is free, was in use: the same explanation whichever instance fails first."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        own = probe.getsockname()[1]
    code = (
        "import socket,sys,time;s=socket.socket();"
        "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
        f"try: s.bind(('127.0.0.1',{own}))\n"
        "except OSError as e: sys.exit(f'bind: {e.strerror}')\n"
        "s.listen();time.sleep(60)"
    )
    command = f"{sys.executable} -S -c {shlex.quote(code)} {{port}}"
    first = LaunchedServer(command, free_port()).spawn()
    try:
        assert wait_until(lambda: port_taken(own), 10)[0]
        with pytest.raises(LaunchError) as info:
            launch(command, ready_timeout=10)
        assert info.value.kind == "never-listened"
        assert info.value.elsewhere == (own,)
        assert f"It listens on port(s) {own} instead." in str(info.value)
        assert "is already in use." not in str(info.value)
    finally:
        first.stop()


#: Two workers that ignore SIGTERM: the parent dies of the stop's SIGTERM first, so they are
#: adopted by the kit (a subreaper) and die only of the SIGKILL that follows.
TERM_IGNORING_PREFORK = """
import os, signal, socket, sys, time
s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
for _ in range(2):
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            s.accept()[0].close()
while True:
    time.sleep(1)
"""


def test_adopted_processes_that_die_after_the_stop_are_reaped(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """A server's process adopted by the kit that dies after stop()'s last sweep (one still
    exiting when the stop looked, on a loaded machine) is reaped when it dies: it never
    stays a zombie of the process running the checks. The sweep is disabled here, so only
    the reaping of the server's late processes can reap the workers."""
    from conformance.harness import launcher
    from conformance.harness.reaper import become_subreaper, is_subreaper

    become_subreaper()
    if not is_subreaper():
        pytest.skip("PR_SET_CHILD_SUBREAPER is not available: orphans go to pid 1")
    script = tmp_path / "server.py"
    script.write_text(TERM_IGNORING_PREFORK)
    server = launch(f"{sys.executable} -S {script} {{port}}")
    parent = psutil.Process(server.pid)
    assert wait_until(lambda: len(parent.children()) == 2, 5)[0]
    workers = [c.pid for c in parent.children()]
    monkeypatch.setattr(launcher, "reap_adopted", lambda owned=None: None)
    server.stop()

    def reaped() -> bool:
        return not any(psutil.pid_exists(pid) for pid in workers)

    assert wait_until(reaped, 5)[0], [psutil.Process(p).status() for p in workers]


#: Listens after LATE s (`{port}` is argv[1]), then waits.
LATE_LISTENER = (
    "import socket,sys,time;time.sleep(LATE);"
    "s=socket.create_server(('127.0.0.1',int(sys.argv[1])));time.sleep(60)"
)


@pytest.mark.parametrize(("late", "starved", "ready"), [(1.5, 3.0, True), (1.5, 0.0, False)])
def test_a_launch_gets_back_the_time_the_machine_kept_it_from_a_cpu(
    monkeypatch: pytest.MonkeyPatch, late: float, starved: float, ready: bool
) -> None:
    """The ready timeout counts the server's time: one that waited on the run queue (here
    said to, by the stand-in) gets that time again, and one that did not gets none."""
    from conformance.harness import launcher

    monkeypatch.setattr(launcher, "longest_run_queue_wait", lambda pids: starved)
    code = LATE_LISTENER.replace("LATE", str(late))
    command = f"{sys.executable} -S -c {shlex.quote(code)} {{port}}"
    if ready:
        launch(command, ready_timeout=1.0).stop()
        return
    with pytest.raises(LaunchError, match=r"within 1 s\.") as info:
        launch(command, ready_timeout=1.0)
    assert info.value.kind == "never-listened"


def test_a_launch_starved_for_ever_still_fails_in_bounded_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from conformance.harness import launcher

    monkeypatch.setattr(launcher, "longest_run_queue_wait", lambda pids: 100.0)
    code = LATE_LISTENER.replace("LATE", "60")
    command = f"{sys.executable} -S -c {shlex.quote(code)} {{port}}"
    with pytest.raises(LaunchError, match=r"within 1 s \(and 1\.0 s more: the machine kept"):
        launch(command, ready_timeout=1.0)
