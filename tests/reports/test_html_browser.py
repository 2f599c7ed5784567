"""The HTML page in a real browser: Debian's chromium, headless, driven by Playwright.

It renders with no console error, and its pictures are there and drawn (a box on the page,
lines with points, bars): a zombie-leaking server's counts climb, a serial server's second
client waits out its limit. Skipped, with the reason, without chromium or Playwright.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.reports.reports import chromium, render, run

pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed (pip install playwright)"
)
if chromium() is None:
    pytest.skip("no chromium on this machine (apt-get install chromium)", allow_module_level=True)

ZOO = ROOT / "tests" / "servers" / "py"


def server(name: str) -> str:
    return f"{sys.executable} -S {ZOO / name}.py --port {{port}}"


def test_a_zombie_leak_is_a_line_that_climbs(tmp_path: Path) -> None:
    result = run(tmp_path, "--server-cmd", server("no_reap"), "--profile", "quick",
                 "--requirement", "ZOMB-1")  # fmt: skip
    assert result.returncode == 1
    seen = render(result.html, tmp_path / "page.png")
    assert seen["errors"] == []
    assert seen["verdict"].startswith("FAILED")
    (chart,) = [c for c in seen["charts"] if c["requirement"] == "ZOMB-1"]
    assert chart["width"] > 100 and chart["height"] > 100
    lines = {line["series"]: line for line in chart["lines"]}
    assert set(lines) == {"children", "zombies", "fds", "threads"}
    assert lines["zombies"]["points"] >= 10 and lines["zombies"]["last"] >= 10
    assert lines["zombies"]["length"] > 100  # drawn, and not flat
    assert (tmp_path / "page.png").stat().st_size > 10_000


def test_a_serial_server_shows_who_waited(tmp_path: Path) -> None:
    result = run(tmp_path, "--server-cmd", server("serial"), "--profile", "quick",
                 "--requirement", "CONC-1", "--requirement", "CONC-4")  # fmt: skip
    assert result.returncode == 1
    seen = render(result.html)
    assert seen["errors"] == []
    waits = {c["requirement"]: c for c in seen["charts"] if c["kind"] == "waits"}
    assert set(waits) == {"CONC-1", "CONC-4"}
    a, b1 = waits["CONC-4"]["bars"]  # A answered at once; B1 waited out its limit
    assert a["answered"] and not b1["answered"]
    assert b1["width"] > 10 * max(a["width"], 1)
