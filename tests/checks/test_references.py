"""The built-in reference servers pass every category, in both protocols.

The select and pool references are new designs (IO multiplexing, and multiplexing plus a
worker pool); fork and thread are covered by the Python zoo's correct servers and tox.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import kit


@pytest.mark.parametrize("protocol", ["ok", "echo"])
@pytest.mark.parametrize("server", ["select", "pool"])
def test_reference_server_passes_every_category(server: str, protocol: str, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = kit(
        "run", "--server", server, "--protocol", protocol, "--profile", "quick",
        "--json-report", str(out),
    )  # fmt: skip
    assert out.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    doc = json.loads(out.read_text())
    failed = {c for c, outcome in doc["categories"].items() if outcome == "failed"}
    details = "\n".join(r["detail"] for r in doc["requirements"] if r["outcome"] == "failed")
    assert failed == set(), details[-4000:]
    assert doc["model"] == "event-loop"
    assert result.returncode == 0


@pytest.mark.parametrize("protocol", ["ok", "echo"])
@pytest.mark.parametrize("server", ["fork", "thread", "select", "pool"])
def test_reference_server_passes_at_thorough(server: str, protocol: str, tmp_path: Path) -> None:
    """The thorough profile runs hundreds of generated examples and scenarios: a correct
    server must pass them all (a false alarm there is a kit defect)."""
    out = tmp_path / "report.json"
    result = kit(
        "run", "--server", server, "--protocol", protocol, "--profile", "thorough",
        "--json-report", str(out),
    )  # fmt: skip
    assert out.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    doc = json.loads(out.read_text())
    bad = [r for r in doc["requirements"] if r["outcome"] in ("failed", "blocked", "kit-error")]
    assert not bad, "\n".join(r["detail"] for r in bad)[-4000:]
    assert result.returncode == 0
