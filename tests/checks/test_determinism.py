"""The same server gets the same verdict every run, also when its defects interact.

A zoo server with one defect fails the same way every run; a student's server often has
several, and then one defect can kill the server (SIGPIPE, an accept() given up on EINTR)
or steal another session's connection in the middle of a check about something else, at a
moment the scheduler picks. The kit must judge each death by what caused it, and keep its
sequential steps sequential for the server, so that the failed set and the score do not
depend on the race. Each server here runs RUNS times at one profile, alternating `-n 0` and
`-n 2`, and every run must give exactly its expected failed requirements and one score.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest

from conformance.harness.ports import free_port
from tests.conftest import kit
from tests.servers import fixed
from tests.servers.zoo import DEFECTS, INTERACTING, command, find

#: Runs per server and profile (`CONFORMANCE_DETERMINISM_RUNS`): each is a whole kit run.
RUNS = int(os.environ.get("CONFORMANCE_DETERMINISM_RUNS", "3"))
#: K runs of a server cost K times its matrix entry: with --full-matrix only (CI's second
#: step); the fast tier runs each of these servers once (test_matrix, test_fixed_port).
CASES = [
    pytest.param(kind, name, profile, id=f"{name}-{profile}", marks=pytest.mark.full_matrix)
    for kind, names in (("fixed", fixed.MULTI_DEFECT), ("zoo", INTERACTING))
    for name in names
    for profile in ("quick", "default")
]


def _expected(kind: str, name: str) -> frozenset[str]:
    if kind == "fixed":
        return fixed.find(name).expected_failed_requirements
    return next(d.breaks for d in DEFECTS if d.name == name)


def _verdict(doc: dict[str, Any]) -> tuple[frozenset[str], dict[str, str], float]:
    failed = frozenset(r["id"] for r in doc["requirements"] if r["outcome"] == "failed")
    blocked = {r["id"]: r["blocked_by"] for r in doc["requirements"] if r["outcome"] == "blocked"}
    return failed, blocked, doc["score"]


@pytest.mark.parametrize(("kind", "name", "profile"), CASES)
def test_same_verdict_every_run(
    kind: str, name: str, profile: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if kind == "fixed":
        if shutil.which("cc") is None:
            pytest.skip("no C compiler (cc) on this machine: the server cannot be built")
        port = free_port()
        target = ["--server-cmd", shlex.quote(str(fixed.build(name, port, tmp_path))), "--port"]
        target.append(str(port))
    else:
        build = request.getfixturevalue("zoo_build")
        target = ["--server-cmd", command(find(f"c-{name}-ok"), build)]
    verdicts = []
    for run in range(RUNS):
        report = tmp_path / f"run{run}.json"
        workers = "0" if run % 2 == 0 else "2"
        result = kit(
            "run", *target, "--profile", profile, "--json-report", str(report), "-n", workers,
            timeout=900,
        )  # fmt: skip
        assert report.exists(), result.stdout[-3000:] + result.stderr[-3000:]
        doc = json.loads(report.read_text())
        verdicts.append(_verdict(doc))
        details = "\n\n".join(r["detail"] for r in doc["requirements"] if r["outcome"] == "failed")
        assert verdicts[-1][0] == _expected(kind, name), (
            f"run {run + 1} (-n {workers}): failed {sorted(verdicts[-1][0])}, expected "
            f"{sorted(_expected(kind, name))}; blocked {verdicts[-1][1]}\n{details[-4000:]}"
        )
    assert len(set((f, tuple(sorted(b.items())), s) for f, b, s in verdicts)) == 1, verdicts
