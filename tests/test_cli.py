"""The `conformance` command end to end: options, exit codes, report, bad input, cleanup."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

import jsonschema
import psutil
import pytest

from conformance.harness.polling import wait_until
from conformance.harness.ports import free_port
from conformance.spec import CATEGORIES, REQUIREMENTS
from tests.conftest import ROOT, kit

PY_SERVERS = ROOT / "tests" / "servers" / "py"
SCHEMA = json.loads((ROOT / "conformance" / "report.schema.json").read_text())


def py_server(name: str) -> str:
    return f"{sys.executable} {PY_SERVERS / name}.py --port {{port}}"


def report(path: Path) -> dict:
    doc = json.loads(path.read_text())
    jsonschema.validate(doc, SCHEMA)
    return doc


# -- list --------------------------------------------------------------------------------------
def test_list_prints_every_requirement_without_running_anything() -> None:
    result = kit("list")
    assert result.returncode == 0
    for r in REQUIREMENTS:
        assert r.id in result.stdout


def test_list_selects_by_prefix() -> None:
    result = kit("list", "--requirement", "ZOMB")
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["ZOMB-1", "ZOMB-2"]


# -- usage errors: exit code 2 and a sentence that says what to do ------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--server", "nope"], "unknown --server 'nope'; built-in servers: fork, pool, select"),
        (["--target", "nonsense"], "is not HOST:PORT"),
        (["--target", "10.1.2.3:80"], "only sends traffic to loopback"),
        (["--server-cmd", "./server"], "has no {port} placeholder"),
        (["--server", "fork", "--requirement", "CONC-99"], "matches no requirement"),
    ],
)
def test_bad_input_is_a_usage_error(args: list[str], message: str) -> None:
    result = kit("run", *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stdout + result.stderr


def test_unreachable_target() -> None:
    result = kit("run", "--target", f"127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert "nothing accepts connections at 127.0.0.1:" in result.stdout + result.stderr


def test_port_in_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = kit("run", "--server-cmd", f"{sys.executable} -c pass", "--port", str(port))
    assert result.returncode == 2
    assert f"port {port} is already in use by pid" in result.stdout + result.stderr


def test_missing_command() -> None:
    result = kit("run", "--server-cmd", "/nonexistent/server {port}")
    assert result.returncode == 2
    assert "'/nonexistent/server' was not found" in result.stdout + result.stderr


def test_server_that_exits_at_once() -> None:
    """Reported as its exit, at once: not as a server that never listened (which the kit
    would only say after waiting out its ready timeout)."""
    result = kit("run", "--server-cmd", py_server("exits_at_once"))
    out = result.stdout + result.stderr
    assert result.returncode == 2
    assert "exited with status 3 before it listened" in out
    assert "fatal: cannot open config" in out  # the last lines of its stderr
    assert "did not listen on port" not in out


def test_server_that_never_listens() -> None:
    result = kit("run", "--server-cmd", py_server("never_listens"))
    assert result.returncode == 2
    assert re.search(r"did not listen on port \d+ within 5 s", result.stdout + result.stderr)


def test_bad_exclusions_file(tmp_path: Path) -> None:
    excl = tmp_path / "excl.txt"
    excl.write_text("PROTO-2\n")
    result = kit("run", "--server", "fork", "--exclusions", str(excl))
    assert result.returncode == 2
    assert "PROTO-2 has no reason" in result.stdout + result.stderr


# -- runs that work --------------------------------------------------------------------------------
def test_a_run_leaves_the_users_pytest_directories_alone(tmp_path: Path) -> None:
    """pytest keeps the newest three sessions' directories under $TMPDIR/pytest-of-USER and
    deletes the rest when a session ends; the kit's run, a pytest session of its own, must
    touch none of the user's (it works in a directory of its own, removed after it)."""
    temp = tmp_path / "tmp"
    mine = [temp / "pytest-of-someone" / f"pytest-{n}" for n in range(1, 6)]
    for directory in mine:
        directory.mkdir(parents=True)
        (directory / "kept.txt").write_text("a user's session\n")
    user = {"TMPDIR": str(temp), "USER": "someone", "LOGNAME": "someone"}
    # EINTR-3 is the check that writes in its tmp_path.
    result = kit("run", "--server=fork", "--profile=quick", "--requirement=EINTR-3", env=user)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    assert all((d / "kept.txt").exists() for d in mine)
    assert sorted(p.name for p in temp.iterdir()) == ["pytest-of-someone"]
    assert sorted(p.name for p in (temp / "pytest-of-someone").iterdir()) == [d.name for d in mine]


def test_passing_run_writes_a_valid_report(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    excl = tmp_path / "excl.txt"
    excl.write_text("PROTO-2: we trust it  # a comment\n")
    junit = tmp_path / "junit.xml"
    result = kit(
        "run",
        "--server",
        "fork",
        "--profile",
        "quick",
        "--requirement",
        "PROTO",
        "--requirement",
        "EXIT-1",
        "--exclusions",
        str(excl),
        "--json-report",
        str(out),
        "--junit-xml",
        str(junit),
    )
    assert result.returncode == 0, result.stdout
    doc = report(out)
    assert set(doc["categories"]) == set(CATEGORIES)
    # What a replay needs besides the seed: the same Hypothesis, and what else the verdicts
    # may depend on.
    assert doc["environment"]["hypothesis"] == importlib.metadata.version("hypothesis")
    assert doc["environment"]["psutil"] == psutil.__version__
    assert doc["environment"]["python"] == platform.python_version()
    assert doc["environment"]["kernel"].startswith("Linux ")
    assert doc["categories"]["protocol"] == "passed"
    assert doc["categories"]["zombies"] == "skipped"  # nothing selected in it
    assert doc["model"] == "fork"
    outcomes = {r["id"]: (r["outcome"], r["detail"]) for r in doc["requirements"]}
    assert outcomes["PROTO-2"] == ("skipped", "excluded: we trust it")
    assert outcomes["PROTO-4"][0] == "not-applicable"
    assert doc["excluded"] == [{"id": "PROTO-2", "reason": "we trust it"}]
    assert '<testcase name="EXIT-1: After replying to' in junit.read_text()
    assert "\nprotocol\n  ok      PROTO-1  MUST   Every message" in result.stdout


def test_failing_run_exits_1_and_explains(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = kit(
        "run",
        "--server-cmd",
        py_server("wrong_reply"),
        "--requirement",
        "PROTO-3",
        "--json-report",
        str(out),
    )
    assert result.returncode == 1
    doc = report(out)
    detail = doc["requirements"][0]["detail"]
    assert detail.startswith("[PROTO-3 MUST] The message `exit` is answered with exactly `OK!!!`.")
    assert "Expected: exactly b'OK!!!' on A and nothing more" in detail
    assert "b'OK!!!\\n'" in detail
    assert doc["categories"]["protocol"] == "failed"


def test_should_fails_the_run_only_with_strict(tmp_path: Path) -> None:
    args = ["run", "--server-cmd", py_server("ignores_sigterm"), "--requirement", "EXIT-5"]
    lenient = kit(*args, "--json-report", str(tmp_path / "a.json"))
    strict = kit(*args, "--strict", "--json-report", str(tmp_path / "b.json"))
    assert lenient.returncode == 0, lenient.stdout
    assert strict.returncode == 1
    a, b = report(tmp_path / "a.json"), report(tmp_path / "b.json")
    assert a["requirements"][0]["outcome"] == b["requirements"][0]["outcome"] == "failed"
    assert (a["categories"]["exit"], b["categories"]["exit"]) == ("passed", "failed")


@pytest.mark.parametrize("name", ["stdout_flood", "ignores_sigterm", "setsid_forker"])
def test_unruly_servers_are_checked_and_cleaned_up(name: str) -> None:
    """The guard in conftest.py fails this test if any of their processes survive."""
    result = kit("run", "--server-cmd", py_server(name), "--requirement", "PROTO-3")
    assert result.returncode == 0, result.stdout + result.stderr


def test_pytest_pyargs_gives_the_same_verdicts(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(
        "--pyargs",
        "conformance",
        "--conformance-server",
        "thread",
        "--conformance-requirement",
        "PROTO-1",
        "--conformance-requirement",
        "ZOMB-2",
        "--conformance-profile",
        "quick",
    )
    result.assert_outcomes(passed=1)  # of requirements: ZOMB-2 is not-applicable here
    result.stdout.fnmatch_lines(
        [
            "protocol",
            "  ok * PROTO-1 *",
            "zombies",
            "  n/a * ZOMB-2 *",
            "1 passed, 1 not-applicable in *",
        ]
    )
    assert result.ret == 0


def test_check_timeout_fails_the_check_and_cleans_up(tmp_path: Path) -> None:
    # Answers the first message of each connection, then nothing: PROTO-2 (100 messages on
    # one connection) waits for the second answer past the 1 s the check is allowed.
    silent = tmp_path / "silent.py"
    silent.write_text(
        "import socket, sys, time\n"
        "s = socket.create_server(('127.0.0.1', int(sys.argv[1])))\n"
        "conns = []\n"
        "while True:\n"
        "    c = s.accept()[0]\n"
        "    c.recv(1024)\n"
        "    c.sendall(b'OK!!!')\n"
        "    conns.append(c)\n"
    )
    out = tmp_path / "r.json"
    result = kit(
        "run",
        "--server-cmd",
        f"{sys.executable} {silent} {{port}}",
        "--requirement",
        "PROTO-2",
        "--json-report",
        str(out),
        "--",
        "--timeout",
        "1",
    )
    assert result.returncode == 1
    assert "Timeout" in report(out)["requirements"][0]["detail"]


def test_ctrl_c_in_the_middle_leaves_nothing(tmp_path: Path) -> None:
    output = tmp_path / "kit.out"
    with open(output, "wb") as out:
        kit_proc = subprocess.Popen(
            [sys.executable, "-m", "conformance", "run", "--server", "fork"],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            # A shell's background job (`cmd &`) starts with SIGINT ignored, and so would
            # the kit, which then never sees the Ctrl-C; a user's Ctrl-C reaches a kit in
            # the foreground, which is what this is about.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    try:

        def a_server_runs() -> bool:
            return any("fork_server" in _cmdline(p) for p in _descendants(kit_proc.pid))

        assert wait_until(a_server_runs, 20)[0]
        kit_proc.send_signal(signal.SIGINT)
        assert kit_proc.wait(20) == 130, output.read_text(errors="replace")[-3000:]
    finally:
        if kit_proc.poll() is None:
            kit_proc.kill()
            kit_proc.wait()


def _cmdline(proc: psutil.Process) -> str:
    """The command line, or "" for a process that is gone or a zombie (it has none)."""
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


# -- address mode --------------------------------------------------------------------------------
@pytest.fixture
def running_server():  # type: ignore[no-untyped-def]
    """Start a server the way a user would, outside the kit; yield (launched, port)."""
    from conformance.harness.launcher import launch

    def start(command: str):  # type: ignore[no-untyped-def]
        server = launch(command)
        started.append(server)
        return server

    started: list = []
    yield start
    for server in started:
        server.stop()


def test_address_mode_attaches_to_a_visible_server(running_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = running_server(
        f"{sys.executable} {ROOT / 'reference_servers' / 'thread_server.py'} "
        f"--host 127.0.0.1 --port {{port}}"
    )
    out = tmp_path / "r.json"
    result = kit(
        "run",
        "--target",
        f"127.0.0.1:{server.port}",
        "--requirement",
        "PROTO-3",
        "--requirement",
        "FDL-1",
        "--requirement",
        "ZOMB-1",
        "--json-report",
        str(out),
    )
    assert result.returncode == 0, result.stdout
    doc = report(out)
    assert doc["target"] == {
        "mode": "address",
        "address": f"127.0.0.1:{server.port}",
        "port": server.port,
    }
    assert doc["model"] == "thread"
    outcomes = {r["id"]: r["outcome"] for r in doc["requirements"]}
    assert outcomes == {"PROTO-3": "passed", "FDL-1": "passed", "ZOMB-1": "not-applicable"}


def test_address_mode_reports_where_the_server_died(running_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = running_server(py_server("sigpipe_eof"))
    out = tmp_path / "r.json"
    result = kit(
        "run",
        "--target",
        f"127.0.0.1:{server.port}",
        "--requirement",
        "EXIT-3",
        "--requirement",
        "PROTO-2",
        "--json-report",
        str(out),
    )
    assert result.returncode == 1
    details = {r["id"]: r["detail"] for r in report(out)["requirements"]}
    assert "the server is no longer running (it died during EXIT-3)" in details["PROTO-2"]


def test_xdist_gives_the_same_verdicts(tmp_path: Path) -> None:
    args = [
        "run",
        "--server",
        "fork",
        "--profile",
        "quick",
        "--requirement",
        "PROTO",
        "--requirement",
        "ZOMB",
        "--requirement",
        "FDP",
    ]
    serial = kit(*args, "--json-report", str(tmp_path / "a.json"))
    parallel = kit(*args, "-n", "2", "--json-report", str(tmp_path / "b.json"))
    assert serial.returncode == parallel.returncode == 0, parallel.stdout
    a, b = report(tmp_path / "a.json"), report(tmp_path / "b.json")
    assert a["categories"] == b["categories"]
    assert b["model"] == "fork"
    assert [r["outcome"] for r in a["requirements"]] == [r["outcome"] for r in b["requirements"]]


def test_xdist_in_address_mode_keeps_quiet_checks_alone(running_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = running_server(
        f"{sys.executable} {ROOT / 'reference_servers' / 'thread_server.py'} "
        f"--host 127.0.0.1 --port {{port}}"
    )
    args = ["run", "--target", f"127.0.0.1:{server.port}", "--profile", "quick"]
    for req in ("CONC-2", "CONC-4", "PROTO-3", "EXIT-4", "FDL"):
        args += ["--requirement", req]
    serial = kit(*args, "--json-report", str(tmp_path / "a.json"))
    parallel = kit(*args, "-n", "2", "--json-report", str(tmp_path / "b.json"))
    assert serial.returncode == parallel.returncode == 0, parallel.stdout
    a, b = report(tmp_path / "a.json"), report(tmp_path / "b.json")
    assert [r["outcome"] for r in a["requirements"]] == [r["outcome"] for r in b["requirements"]]
    assert a["serialised"] == []
    assert b["serialised"] == ["EXIT-4", "FDL-1", "FDL-2"]
    assert "kept on one xdist worker (they need a quiet server): EXIT-4" in parallel.stdout


def test_a_crashed_worker_fails_its_check_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "crasher.py").write_text(
        "import os\n\n"
        "def pytest_runtest_call(item):\n"
        "    if item.name == 'test_exit_closes_connection':\n"
        "        os._exit(3)\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    out = tmp_path / "r.json"
    result = kit(
        "run", "--server", "thread", "--profile", "quick", "-n", "2",
        "--requirement", "EXIT-1", "--requirement", "PROTO-3",
        "--json-report", str(out), "--", "-p", "crasher",
    )  # fmt: skip
    assert result.returncode == 1, result.stdout
    outcomes = {r["id"]: (r["outcome"], r["detail"]) for r in report(out)["requirements"]}
    assert outcomes["PROTO-3"][0] == "passed"
    assert outcomes["EXIT-1"][0] == "failed"
    assert "the kit's worker process died while running this check" in outcomes["EXIT-1"][1]


def test_address_mode_on_any_loopback_address_and_launch_only_out_of_the_maximum(
    running_server,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    """127.0.0.0/8 is loopback, not only 127.0.0.1; a requirement that needs a launched
    server (EINTR-3 traces it with strace) cannot be judged at an address, so it is out of
    the maximum and says why on the terminal, not only in the JSON."""
    server = running_server(
        f"{sys.executable} {ROOT / 'reference_servers' / 'thread_server.py'} "
        f"--host 0.0.0.0 --port {{port}}"
    )
    out = tmp_path / "r.json"
    result = kit(
        "run", "--target", f"127.0.0.2:{server.port}", "--requirement", "PROTO-3",
        "--requirement", "EINTR-3", "--json-report", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    doc = report(out)
    by_id = {r["id"]: r for r in doc["requirements"]}
    assert by_id["EINTR-3"]["outcome"] == "skipped"
    assert (by_id["EINTR-3"]["score"], by_id["EINTR-3"]["max_score"]) == (0, 0)
    assert (doc["score"], doc["max_score"]) == (1, 1)
    assert isinstance(doc["score"], int)
    assert "EINTR-3 needs a server the kit launched" in result.stdout


def test_an_interrupted_run_says_so_in_its_report(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    kit_proc = subprocess.Popen(
        [sys.executable, "-m", "conformance", "run", "--server", "fork", "--json-report", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert kit_proc.stdout is not None
    try:
        # The first requirement's line (its mark) is out: checks are running.
        output = b""
        while not re.search(rb"\n  (ok|FAIL|WARN|BLOCKED|ERROR|skip|n/a) ", output):
            ready, _, _ = select.select([kit_proc.stdout], [], [], 30)
            char = os.read(kit_proc.stdout.fileno(), 1) if ready else b""
            assert char, "the kit ended or printed nothing for 30 s: " + output.decode()[-500:]
            output += char
        kit_proc.send_signal(signal.SIGTERM)
        rest, _ = kit_proc.communicate(timeout=30)
        stdout = (output + rest).decode(errors="replace")
        assert kit_proc.returncode == 130
    finally:
        if kit_proc.poll() is None:
            kit_proc.kill()
            kit_proc.wait()
    doc = report(out)
    assert doc["interrupted"] is True
    unrun = [r for r in doc["requirements"] if r["outcome"] == "skipped"]
    assert unrun and all("the run was interrupted" in r["detail"] for r in unrun)
    assert not any("deselected" in r["detail"] for r in doc["requirements"])
    assert "INTERRUPTED" in stdout


def test_k_selects_by_requirement_id_or_says_to_use_requirement() -> None:
    """`-k CONC-1` runs CONC-1's check (its ID is one of its keywords); a -k that leaves no
    check says how to choose requirements instead of exiting without a word."""
    result = kit("run", "--server", "thread", "--profile", "quick", "-k", "PROTO-3")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    result = kit("run", "--server", "thread", "--profile", "quick", "-k", "no_such_check")
    assert result.returncode == 2
    assert "use --requirement" in result.stdout + result.stderr


def test_a_refusal_is_shown_once_and_recorded(tmp_path: Path) -> None:
    """A server that listens elsewhere: the reason once on the terminal, no pytest framing,
    and the report's `refusal` record with the ports (what the grader phrases its hint from)."""
    elsewhere = tmp_path / "elsewhere.py"
    elsewhere.write_text(
        "import socket, time\ns = socket.create_server(('127.0.0.1', 0))\ntime.sleep(30)\n"
    )
    out = tmp_path / "r.json"
    result = kit(
        "run", "--server-cmd", f"{sys.executable} {elsewhere} {{port}}",
        "--requirement", "PROTO-1", "--json-report", str(out),
    )  # fmt: skip
    assert result.returncode == 2
    text = result.stdout + result.stderr
    assert text.count("did not listen on port") == 1, text
    assert "_pytest.outcomes.Exit" not in text and "Exit:" not in text
    doc = report(out)
    assert doc["refusal"]["kind"] == "never-listened"
    assert len(doc["refusal"]["elsewhere"]) == 1
    assert "--port N" in doc["refusal"]["fix"]
    assert doc["score"] == 0
    assert all(r["detail"].startswith("not judged") for r in doc["requirements"])


def test_bad_input_is_recorded_too(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = kit("run", "--server", "nope", "--json-report", str(out))
    assert result.returncode == 2
    assert report(out)["refusal"]["kind"] == "usage"
