"""The terminal's requirements view: colour only where wanted, pytest's view on request.

What a failing run shows is checked in test_failing_runs.py; a user's own pytest run keeping
pytest's output, with the kit installed, in tests/test_pytest_entry.py.
"""

from __future__ import annotations

import pytest

from tests.conftest import kit

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
