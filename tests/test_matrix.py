"""The matrix: the kit against every zoo server, asserting the exact set of failed categories.

A correct server must fail nothing; a defective one must fail exactly the categories its one
defect breaks (tests/servers/zoo.py says which, and why when it is more than one).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import kit
from tests.servers.zoo import ZOO, ZooServer, command


@pytest.mark.parametrize("server", ZOO, ids=lambda s: s.id)
def test_kit_verdict_on_zoo_server(server: ZooServer, zoo_build: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = kit(
        "run",
        "--server-cmd",
        command(server, zoo_build),
        "--protocol",
        server.protocol,
        "--profile",
        "quick",
        "--json-report",
        str(out),
    )
    assert out.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    doc = json.loads(out.read_text())
    failed = {c for c, outcome in doc["categories"].items() if outcome == "failed"}
    details = "\n".join(r["detail"] for r in doc["requirements"] if r["outcome"] == "failed")
    expected = set(server.expected_failures)
    assert failed == expected, (
        f"expected failed categories {sorted(expected)}, got {sorted(failed)}\n{details[-4000:]}"
    )
    assert result.returncode == (1 if server.expected_failures else 0)
