"""Slow starters: a correct server that listens only after seconds (a JVM application, a
Django app, a server that loads its data first) is judged right with --start-timeout, and
without it the launch error names that option.

The servers are tests/servers/{py,c}/slow_start: ok_thread's design after a sleep of
START_DELAY seconds. 7 s is longer than the default start timeout (5 s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, kit
from tests.servers.zoo import PY_DIR

DELAY = "7"
#: Room for a 7 s start on a loaded machine.
START_TIMEOUT = "20"


def slow_command(language: str, build: Path | None) -> str:
    if language == "c":
        assert build is not None
        return f"env START_DELAY={DELAY} {build / 'slow_start'} {{port}}"
    return f"env START_DELAY={DELAY} {sys.executable} -S {PY_DIR / 'slow_start.py'} --port {{port}}"


#: The README's command judges two requirements: one on the server every check shares, and
#: EXIT-6, which starts the server again on its port (every launch waits its 7 s); the
#: whole suite, at both profiles, runs with --full-matrix.
FEW = ["--requirement", "PROTO-2", "--requirement", "EXIT-6"]


@pytest.mark.parametrize(
    ("profile", "workers", "picks"),
    # Every check waits its server's 7 s start: the default profile with two workers
    # (about 45 s a run) adds no rule the quick one leaves unproven, so --full-matrix only.
    [
        pytest.param("quick", "0", FEW, id="quick-0-few"),
        pytest.param("quick", "0", [], id="quick-0", marks=pytest.mark.full_matrix),
        pytest.param("default", "2", [], id="default-2", marks=pytest.mark.full_matrix),
    ],
)
@pytest.mark.parametrize(
    # One language is enough for the README's command; the other with --full-matrix.
    "language",
    ["python", pytest.param("c", marks=pytest.mark.full_matrix)],
)
def test_a_slow_starter_is_judged_right_with_start_timeout(
    language: str,
    profile: str,
    workers: str,
    picks: list[str],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    build = request.getfixturevalue("zoo_build") if language == "c" else None
    out = tmp_path / "report.json"
    result = kit(
        "run",
        "--server-cmd",
        slow_command(language, build),
        "--profile",
        profile,
        "-n",
        workers,
        "--start-timeout",
        START_TIMEOUT,
        "--json-report",
        str(out),
        *picks,
        timeout=900,
    )
    doc = json.loads(out.read_text())
    failed = [r["id"] for r in doc["requirements"] if r["outcome"] in ("failed", "kit-error")]
    assert failed == [], result.stdout[-4000:]
    assert result.returncode == 0
    assert doc["model"] == "thread"
    outcomes = {r["id"]: r["outcome"] for r in doc["requirements"]}
    assert all(outcomes[req] == "passed" for req in picks[1::2]), outcomes
    # The run waited for starts (at least the first one, 7 s) and says how long.
    assert doc["start_wait_s"] >= float(DELAY) - 1
    assert doc["start_timeout_s"] == float(START_TIMEOUT)
    assert "for launched servers to listen" in result.stdout


def test_without_start_timeout_the_error_names_it() -> None:
    result = kit("run", "--server-cmd", slow_command("python", None), "--profile", "quick")
    text = result.stdout + result.stderr
    assert result.returncode == 2
    assert "did not listen on port" in text and "within 5 s" in text
    assert "give it longer with --start-timeout SECONDS" in text


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--conformance-start-timeout", "1"], {}),
        ([], {"CONFORMANCE_START_TIMEOUT": "1"}),
        (["-o", "conformance_start_timeout=1"], {}),
    ],
    ids=["option", "environment", "ini"],
)
def test_start_timeout_is_an_option_an_environment_variable_and_an_ini_key(
    args: list[str], env: dict[str, str]
) -> None:
    """Each way of giving it shortens the wait: a server that never listens is given up after
    1 s, not 5 (pytest --pyargs, so that the ini key applies too)."""
    never = PY_DIR / "never_listens.py"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "conformance", "-p", "no:cacheprovider",
         "--conformance-server-cmd", f"{sys.executable} {never} --port {{port}}", *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env={**os.environ, **env},
    )  # fmt: skip
    assert "within 1 s" in result.stdout + result.stderr, result.stdout[-2000:]


@pytest.mark.parametrize("value", ["0", "-3", "soon", "601"])
def test_a_bad_start_timeout_is_a_usage_error(value: str) -> None:
    result = kit("run", "--server", "fork", "--start-timeout", value)
    assert result.returncode == 2
    assert f"--start-timeout {value!r}" in result.stdout + result.stderr
