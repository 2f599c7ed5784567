"""Grading shows where a submission waits, in its own source: carol's serial server, built
with debug information by default (`debug_info`, CFLAGS=-g), fails CONC-1 and her
results.json names the line of her code where the next client waits; built without, the
functions only, and a note that says how to get the lines."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from conformance.grade import config as gradeconfig
from conformance.harness import stacks
from tests.conftest import ROOT, kit
from tests.harness.test_stacks import defect_lines

CAROL = ROOT / "examples" / "class" / "carol"
CONFIG = (ROOT / "examples" / "class" / "grading.toml").read_text()

needs_grading = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("cc") is None or shutil.which("make") is None, reason="needs cc and make"
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="the grader's sandbox needs root"),
    pytest.mark.skipif(
        stacks.find_tool(stacks.EU_STACK) is None,
        reason=f"eu-stack is not installed here ({stacks.INSTALL[stacks.EU_STACK]})",
    ),
]


def _conc1_output(tmp_path: Path, config: str) -> str:
    subs = tmp_path / "class"
    shutil.copytree(CAROL, subs / "carol")
    (subs / "grading.toml").write_text(config)
    out = tmp_path / "out"
    result = kit("grade", str(subs), "--out", str(out), "--requirement", "CONC-1", timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads((out / "carol" / "results.json").read_text())
    (test,) = [t for t in results["tests"] if "CONC-1" in t["name"]]
    assert test["status"] == "failed"
    return str(test["output"])


def test_debug_info_is_on_by_default_and_must_be_a_boolean() -> None:
    assert gradeconfig.parse("[assignment]\nbuild = 'make'\n").debug_info is True
    assert gradeconfig.parse("[assignment]\ndebug_info = false\n").debug_info is False
    with pytest.raises(gradeconfig.ConfigError, match="debug_info must be a bool"):
        gradeconfig.parse("[assignment]\ndebug_info = 1\n")


def _grading(test: Callable[..., None]) -> Callable[..., None]:
    """A test that grades: slow, and skipped with the reason where grading cannot run."""
    for mark in needs_grading:
        test = mark(test)
    return test


@_grading
def test_results_show_the_line_where_the_next_client_waits(tmp_path: Path) -> None:
    output = _conc1_output(tmp_path, CONFIG)
    number, text, _ = defect_lines(CAROL / "server.c")
    assert f"called from main() at server.c:{number}" in output, output
    assert text in output, output


@_grading
def test_without_debug_info_functions_and_how_to_get_the_lines(tmp_path: Path) -> None:
    config = CONFIG.replace('build = "make"', 'build = "make"\ndebug_info = false')
    output = _conc1_output(tmp_path, config)
    number, _, _ = defect_lines(CAROL / "server.c")
    assert f"server.c:{number}" not in output, output
    assert stacks.NO_DEBUG_INFO in output, output
