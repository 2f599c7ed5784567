"""The built-in reference servers pass every category, in both protocols.

At the default profile, in the README's test command: the other half of its proof (every
MUST fails on the fast tier of the zoo, and passes here). At thorough, with --full-matrix.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import kit

#: The model each reference must be detected as.
MODELS = {"fork": "fork", "thread": "thread", "select": "event-loop", "pool": "event-loop"}


@pytest.mark.parametrize("protocol", ["ok", "echo"])
@pytest.mark.parametrize("server", list(MODELS))
def test_reference_server_passes_every_category(server: str, protocol: str, tmp_path: Path) -> None:
    """Every requirement passed or not-applicable at the default profile: nothing failed,
    blocked or in error (a false alarm on a reference is a kit defect)."""
    out = tmp_path / "report.json"
    result = kit(
        "run", "--server", server, "--protocol", protocol, "--profile", "default",
        "--json-report", str(out),
    )  # fmt: skip
    assert out.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    doc = json.loads(out.read_text())
    bad = [r for r in doc["requirements"] if r["outcome"] in ("failed", "blocked", "kit-error")]
    assert not bad, "\n".join(r["detail"] for r in bad)[-4000:]
    assert doc["model"] == MODELS[server]
    assert result.returncode == 0


@pytest.mark.full_matrix
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
