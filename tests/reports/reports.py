"""Helpers for the report tests: one kit run per zoo server, every output of it kept.

A failing run is run once and read many ways (terminal, JSON, JUnit, HTML), so each
category costs one kit run, not one per output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import xmlschema

from tests.conftest import ROOT, kit
from tests.servers import zoo

SCHEMA = json.loads((ROOT / "conformance" / "report.schema.json").read_text())
XUNIT2 = xmlschema.XMLSchema(str(Path(__file__).with_name("xunit2.xsd")))

#: One Python zoo server per category (no compiler needed), each run on its own category
#: only, at the quick profile: what its defect breaks, and nothing else to wait for.
BY_CATEGORY: dict[str, str] = {
    "protocol": "python-wrong_reply-ok",
    "concurrency": "python-serial-ok",
    "exit": "python-exit_no_close-ok",
    "zombies": "python-no_reap-ok",
    "fd-child": "python-child_keeps_listener-ok",
    "fd-parent": "python-parent_keeps_conn-ok",
    "fd-leak": "python-fd_leak-ok",
    "eintr": "python-winch_stops-ok",
    "isolation": "python-shared_buffer-echo",
}
#: The categories whose run is in the fast tier (the README's command); the rest run with
#: --full-matrix. One of each kind of picture: sessions (zombies), waits (concurrency).
FAST = ("protocol", "concurrency", "zombies")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    doc: dict
    junit: Path
    html: Path


def run(tmp_path: Path, *args: str, env: dict[str, str | None] | None = None) -> Run:
    """`conformance run ARGS` writing every report into tmp_path; the JSON one validated."""
    out = {name: tmp_path / name for name in ("report.json", "junit.xml", "report.html")}
    result = kit(
        "run",
        *args,
        "--json-report",
        str(out["report.json"]),
        "--junit-xml",
        str(out["junit.xml"]),
        "--html",
        str(out["report.html"]),
        env=env,
    )
    doc = json.loads(out["report.json"].read_text())
    jsonschema.validate(doc, SCHEMA)
    return Run(
        result.returncode, result.stdout, result.stderr, doc, out["junit.xml"], out["report.html"]
    )


def run_zoo(tmp_path: Path, category: str, *extra: str) -> Run:
    server = zoo.find(BY_CATEGORY[category])
    args = ["--server-cmd", zoo.command(server, tmp_path), "--protocol", server.protocol]
    return run(tmp_path, *args, "--profile", "quick", "--requirement", category, *extra)
