"""CI runs the README's test command: keep the two the same."""

from __future__ import annotations

import re

from tests.conftest import ROOT


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^pip install '\.\[test\]' && (python -m pytest .*)$", readme, re.M)
    assert commands, "the README's quick start has no test command"
    assert commands[0] in (ROOT / ".ci" / "run").read_text()


def test_ci_runs_the_full_matrix_the_readme_describes() -> None:
    """The README's second command adds --full-matrix to its first; CI runs what that adds
    (the tests the first command deselects) as a step of its own."""
    readme = (ROOT / "README.md").read_text()
    first = re.findall(r"^pip install '\.\[test\]' && (python -m pytest .*)$", readme, re.M)[0]
    assert f"`{first} --full-matrix`" in readme
    assert f"{first} --full-matrix -m full_matrix" in (ROOT / ".ci" / "run").read_text()
