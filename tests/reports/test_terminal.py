"""The terminal's requirements view: colour only where wanted, pytest's view on request.

What a failing run shows is checked in test_failing_runs.py; a user's own pytest run keeping
pytest's output, with the kit installed, in tests/test_pytest_entry.py.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT, kit

QUICK = ("run", "--server", "thread", "--requirement", "PROTO-1", "--profile", "quick")
ESC = "\x1b["


@pytest.mark.parametrize(
    ("env", "coloured"),
    [
        ({"FORCE_COLOR": "1"}, True),
        ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False),
        ({}, False),  # not a terminal
    ],
    ids=["force-color", "no-color-wins", "plain"],
)
def test_colour_follows_the_terminal_and_no_color(env: dict, coloured: bool) -> None:
    result = kit(*QUICK, env={"PY_COLORS": None, "NO_COLOR": None, "FORCE_COLOR": None, **env})
    assert result.returncode == 0, result.stdout + result.stderr
    assert (ESC in result.stdout) is coloured
    # The mark is a word: the line reads the same without colour.
    plain = result.stdout
    while ESC in plain:
        start = plain.index(ESC)
        plain = plain[:start] + plain[plain.index("m", start) + 1 :]
    assert "  ok      PROTO-1  MUST   Every message of 1 to 1023 bytes" in plain


def test_pytest_view_shows_pytest_own_output() -> None:
    """For debugging the kit: check names and pytest's count, and the category table."""
    result = kit(*QUICK, "--pytest-view", "-v")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_protocol.py::test_every_message_gets_exactly_ok PASSED" in result.stdout
    assert "conformance summary" in result.stdout
    assert "  ok      PROTO-1" not in result.stdout


def test_a_status_line_on_a_terminal_only() -> None:
    """On a terminal (util-linux `script` gives the kit one) a status line names the
    requirement being checked, and the requirement's line replaces it; a log never has it."""
    if shutil.which("script") is None:
        pytest.skip("no `script` (util-linux) to give the kit a terminal")
    command = shlex.join([sys.executable, "-m", "conformance", *QUICK])
    tty = subprocess.run(
        ["script", "-q", "-e", "-c", command, "/dev/null"],
        capture_output=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "TERM": "xterm", "COLUMNS": "100"},
    )
    out = tty.stdout.decode(errors="replace")  # bytes: a text mode would turn \r into \n
    assert tty.returncode == 0, out
    assert "\r  ... checking PROTO-1 (0 of 1 done)" in out
    assert "ok" in out.split("checking PROTO-1", 1)[1]
    assert "checking" not in kit(*QUICK).stdout
