"""Fixtures and guards for the kit's own tests.

The guard: every test runs with a marker in its environment that every process it starts
inherits (kit runs, servers, their children, even ones that call setsid). After the test, any
live process still carrying the marker outlived the test: the guard kills it and fails the
test by name. It also fails the test if this process has zombie children left.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from conformance.harness.polling import wait_until
from conformance.harness.reaper import become_subreaper

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MARKER = "CONFORMANCE_TEST_MARKER"
LINGER = 3.0


def _marked(marker: str) -> list[psutil.Process]:
    me = os.getpid()
    found = []
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == me:
            continue
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if proc.environ().get(MARKER) == marker:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def _ticks() -> float:
    """Now, in clock ticks since boot: the clock of a process's start time in /proc."""
    with open("/proc/uptime") as f:
        return float(f.read().split()[0]) * os.sysconf("SC_CLK_TCK")


def _born(pid: int) -> int:
    """When process `pid` started, in clock ticks since boot (/proc/PID/stat, field 22)."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def _named(pids: list[int]) -> list[str]:
    """`pid (name)` for each, from /proc/PID/stat (a zombie has no command line left)."""
    names = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                names.append(f"{pid} {f.read().split(' ', 1)[1].rsplit(')', 1)[0]})")
        except (OSError, IndexError):
            names.append(str(pid))
    return names


def _zombie_children(born_after: float = 0.0) -> list[int]:
    """Zombie children of the test process started after `born_after` (see `_ticks`).

    The test process is a subreaper, so an orphan of an earlier test that died late (one
    whose environment a sandbox cleaned, so the marker did not find it) becomes its zombie
    child too; it was born before this test began, and is not this test's.
    """
    out = []
    for child in psutil.Process().children():
        try:
            if child.status() == psutil.STATUS_ZOMBIE and _born(child.pid) >= born_after:
                out.append(child.pid)
        except (psutil.Error, OSError, ValueError, IndexError):
            continue
    return out


FULL_MATRIX = "--full-matrix"
#: Test files whose every test runs the kit against a server at least once (5 to 30 s each).
KIT_RUNS = frozenset(
    {
        "test_references.py",
        "test_adapters.py",
        "test_fixed_port.py",
        "test_deaths.py",
        "test_failing_runs.py",
        "test_html_browser.py",
    }
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        FULL_MATRIX,
        action="store_true",
        help="also run the tests marked full_matrix: every zoo server at every profile, the "
        "references at thorough, the real servers, the fork bombs graded for real (the README "
        "says what each command proves)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without --full-matrix, deselect the full_matrix tests; then longest first.

    Deselected, not skipped: a skip says a test could not run here, and these can; the
    summary line counts them ("N deselected") and `--full-matrix` runs them (CI does, in its
    own step). Longest first, so the xdist workers finish together instead of waiting on one
    tail: the kit runs of the matrix take 5 to 40 s each, the references at thorough up to a
    minute; everything else takes seconds.
    """
    if not config.getoption(FULL_MATRIX):
        extra = [item for item in items if item.get_closest_marker("full_matrix")]
        if extra:
            config.hook.pytest_deselected(items=extra)
            items[:] = [item for item in items if not item.get_closest_marker("full_matrix")]

    def cost(item: pytest.Item) -> int:
        params = item.callspec.params if hasattr(item, "callspec") else {}
        if "thorough" in item.name:  # the references at thorough: 30 to 60 s each
            return 40
        if item.path.name == "test_determinism.py":  # RUNS whole kit runs each
            return 50
        server = params.get("server")
        if server is not None and hasattr(server, "expected_failures"):
            slower = 5 if params.get("profile") == "default" else 0
            return 10 + slower + len(server.expected_failures)
        if item.get_closest_marker("slow") or item.path.name in KIT_RUNS:
            return 10
        return 5 if item.path.name == "test_cli.py" else 0

    items.sort(key=cost, reverse=True)


def pytest_configure(config: pytest.Config) -> None:
    become_subreaper()
    _share_bytecode(config)


def _share_bytecode(config: pytest.Config) -> None:
    """Let the processes the tests start cache their bytecode in a directory of this run.

    Where PYTHONDONTWRITEBYTECODE is set (as on CI's machines), every `python -m conformance`
    the tests start (some 200 in the README's command) compiled the kit's modules from
    source again: some 0.15 s of CPU each, on 2 cores shared by four workers. Nothing is
    written beside the sources, as the variable asks: the bytecode goes to a temporary
    PYTHONPYCACHEPREFIX, removed at the end of the run. Set by the controller only; the
    workers it starts, and what they start, inherit it.
    """
    if (
        not sys.flags.dont_write_bytecode
        or "PYTHONPYCACHEPREFIX" in os.environ
        or os.environ.get("PYTEST_XDIST_WORKER")
    ):
        return
    prefix = tempfile.mkdtemp(prefix="conformance-pycache-")
    saved = os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = prefix

    def restore() -> None:
        os.environ.pop("PYTHONPYCACHEPREFIX", None)
        if saved is not None:
            os.environ["PYTHONDONTWRITEBYTECODE"] = saved
        shutil.rmtree(prefix, ignore_errors=True)

    config.add_cleanup(restore)


@pytest.fixture(autouse=True)
def no_process_outlives_its_test(request: pytest.FixtureRequest) -> Iterator[None]:
    marker = uuid.uuid4().hex
    started = _ticks() - 2  # two ticks of margin: /proc/uptime and the start time round
    old = os.environ.get(MARKER)
    os.environ[MARKER] = marker
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(MARKER, None)
        else:
            os.environ[MARKER] = old
        clean, _ = wait_until(lambda: not _marked(marker), LINGER)
        leftovers = [] if clean else _marked(marker)
        descriptions = []
        for proc in leftovers:
            try:
                descriptions.append(f"pid {proc.pid}: {' '.join(proc.cmdline())[:120]}")
                proc.kill()
            except psutil.Error:
                continue
        zombies_gone, _ = wait_until(lambda: not _zombie_children(started), LINGER)
        zombies = [] if zombies_gone else _zombie_children(started)
        named = _named(zombies)  # before they are reaped below
        for pid in [*zombies, *_zombie_children()]:  # earlier tests' too: reaped, not blamed
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        if descriptions or zombies:
            pytest.fail(
                f"{request.node.nodeid} left processes behind: "
                + "; ".join(descriptions)
                + (f"; zombie children of the test process: {named}" if zombies else ""),
                pytrace=False,
            )


def shared_build(
    tmp_path_factory: pytest.TempPathFactory, name: str, builder: Callable[[Path], object]
) -> Path:
    """`builder(dir)` once per test run, into a directory every xdist worker shares.

    Each worker used to build the whole zoo into its own directory: with `-n 4`, four builds
    of the same sources at the start of every run, on 2 cores. The workers' temporary
    directories share a parent that is the run's own; the first worker to get the lock
    builds there, and the others find every binary newer than its source (the builders skip
    those) once the lock is theirs.
    """
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        builder(out)
    return out


@pytest.fixture(scope="session")
def zoo_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The C servers of the zoo, built once per run (skipped without a C compiler)."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc) on this machine: the C servers cannot be built")
    from tests.servers.build import build_c_servers

    return shared_build(tmp_path_factory, "zoo-build", build_c_servers)


@pytest.fixture(scope="session")
def java_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Java servers of the zoo, built once per run (skipped without a JDK)."""
    from tests.servers.build import build_java_servers, have_javac

    if not have_javac():
        pytest.skip("no JDK (javac) on this machine: the Java servers cannot be built")
    return shared_build(tmp_path_factory, "java-build", build_java_servers)


@pytest.fixture(scope="session")
def go_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go servers of the zoo, built once per run (skipped without Go)."""
    from tests.servers.build import build_go_servers, have_go

    if not have_go():
        pytest.skip("no Go toolchain (go) on this machine: the Go servers cannot be built")
    return shared_build(tmp_path_factory, "go-build", build_go_servers)


#: The session fixture that builds a zoo server of each language (Python needs none).
BUILD_FIXTURE = {"c": "zoo_build", "java": "java_build", "go": "go_build"}


def kit(
    *args: str,
    timeout: float = 300,
    cwd: Path | None = None,
    env: dict[str, str | None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m conformance ARGS` and return the completed process (text output);
    `env`: variables set (a value None: removed) on top of this process's environment."""
    environ = dict(os.environ)
    for name, value in (env or {}).items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    return subprocess.run(
        [sys.executable, "-m", "conformance", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or ROOT,
        env=environ,
    )
