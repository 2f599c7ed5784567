"""The kit in fixed-port mode against servers that hard-code their port, as students write them.

`conformance run --server-cmd ./server --port N` is how most submissions get checked: the
server takes no arguments, so every fresh instance the kit starts must bind the same port the
last one just left. Whatever that costs the kit (TIME_WAIT, a previous instance still exiting,
two xdist workers wanting the port at once) must never show up as a verdict on the server.
So the correct servers here must fail nothing, each defective one exactly what its defect
breaks (tests/servers/fixed.py), and no failure may be the kit's own trouble: a Hypothesis
health error, or a port "already in use" by the kit's previous instance.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conformance.harness.ports import free_port
from tests.conftest import kit
from tests.servers.fixed import FIXED, MULTI_DEFECT, FixedServer, build, find
from tests.servers.zoo import FAST_PROFILE

#: Hypothesis errors that mean the kit's examples misbehaved, not the server: a flaky example
#: (the same input passed once and failed once) or a strategy that could not generate.
HYPOTHESIS_ERRORS = re.compile(r"\b(FlakyFailure|FlakyStrategyDefinition|Flaky|Unsatisfiable)\b")
#: The requirement whose business a port "already in use" is: a restart that cannot bind while
#: the stopped instance's connections linger (no SO_REUSEADDR). Anywhere else it is the kit's
#: trouble: it started the next instance before the last one was gone (spec: "and no other
#: requirement's").
PORT_REUSE = frozenset({"EXIT-6"})
#: A default-profile run of a failing server waits out many deadlines; a quick one much less.
KIT_TIMEOUT = 900.0


def _case(server: FixedServer, profile: str) -> object:
    """One run. In the README's test command: the quick run, as the zoo's fast tier
    (zoo.FAST_PROFILE), of each server that only a fixed port has (the correct designs, the
    missing SO_REUSEADDR, the defects that interact); the single defects of the others are
    the zoo's with {port} (test_matrix's fast tier), so their fixed-port runs, and the
    default-profile runs (more examples, so more instances started on the port one after
    another), come with --full-matrix (tests/conftest.py)."""
    fast = server.defect is None or server.name in MULTI_DEFECT or not server.expected_failures
    marks = () if profile == FAST_PROFILE and fast else pytest.mark.full_matrix
    return pytest.param(server, profile, id=f"{server.id}-{profile}", marks=marks)


CASES = [_case(s, "quick") for s in FIXED] + [
    _case(s, "default") for s in FIXED if s.in_default_profile
]

Report = dict[str, Any]
#: The outcomes that are verdicts on the server (conformance/report.py). `kit-error`, or any
#: outcome not listed, is the kit's own trouble. `blocked` (another requirement's failure kept
#: this one from being judged) is allowed, but only by a failure the manifest expects.
VERDICTS = frozenset({"passed", "failed", "blocked", "skipped", "not-applicable"})


@pytest.fixture
def cc() -> None:
    """The servers are C sources compiled per port; without a compiler there is nothing to run."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc) on this machine: the fixed-port servers cannot be built")


def _run(
    binary: Path, port: int, report: Path, *extra: str, profile: str = "quick"
) -> tuple[subprocess.CompletedProcess[str], Report]:
    """One kit run in fixed-port mode; the report must exist whatever the verdict."""
    result = kit(
        "run",
        "--server-cmd",
        shlex.quote(str(binary)),
        "--port",
        str(port),
        "--profile",
        profile,
        "--json-report",
        str(report),
        *extra,
        timeout=KIT_TIMEOUT,
    )
    assert report.exists(), (
        f"exit status {result.returncode}, no report\n{_tail(result.stdout)}{_tail(result.stderr)}"
    )
    return result, json.loads(report.read_text())


def _tail(text: str, chars: int = 3000) -> str:
    return text[-chars:]


def _failed_categories(doc: Report) -> set[str]:
    return {c for c, outcome in doc["categories"].items() if outcome == "failed"}


def _failed_requirements(doc: Report) -> set[str]:
    return {r["id"] for r in doc["requirements"] if r["outcome"] == "failed"}


def _failure_details(doc: Report) -> str:
    return "\n\n".join(r["detail"] for r in doc["requirements"] if r["outcome"] == "failed")


def _kit_trouble(doc: Report) -> list[str]:
    """Requirements whose verdict is the kit's own trouble, not the server's: `kit-error` (or
    an outcome that is no verdict), or a detail (of any outcome: a skip can hide it too) with
    a Hypothesis health error or a port "already in use" (except where that is the verdict)."""
    return [
        f"{r['id']} ({r['outcome']}): {(r['detail'] or '')[:1500]}"
        for r in doc["requirements"]
        if r["outcome"] not in VERDICTS
        or HYPOTHESIS_ERRORS.search(r["detail"] or "")
        or ("already in use" in (r["detail"] or "").lower() and r["id"] not in PORT_REUSE)
    ]


def _summary(result: subprocess.CompletedProcess[str], doc: Report) -> str:
    """One line to compare with the manifest: exit status, failed IDs, other non-passes."""
    others = {
        r["id"]: r["outcome"]
        for r in doc["requirements"]
        if r["outcome"] not in ("passed", "failed", "not-applicable")
    }
    for r in doc["requirements"]:
        if r.get("blocked_by"):
            others[r["id"]] += f" by {r['blocked_by']}"
    return (
        f"verdict: exit {result.returncode}; failed categories {sorted(_failed_categories(doc))}"
        f"; failed {sorted(_failed_requirements(doc))}; other outcomes {others}"
    )


def _assert_verdict(
    server: FixedServer, result: subprocess.CompletedProcess[str], doc: Report
) -> None:
    """Exactly the expected categories and requirements failed, the exit status agrees, and no
    verdict is the kit's own trouble. Every problem is reported at once, not the first."""
    __tracebackhide__ = True
    problems = []
    trouble = _kit_trouble(doc)
    if trouble:
        problems.append("failures caused by the kit itself:\n" + "\n\n".join(trouble))
    failed = _failed_categories(doc)
    if failed != set(server.expected_failures):
        problems.append(
            f"expected failed categories {sorted(server.expected_failures)}, got {sorted(failed)}"
        )
    failed_ids = _failed_requirements(doc)
    expected_ids = set(server.expected_failed_requirements)
    if failed_ids != expected_ids:
        problems.append(
            f"should fail but did not: {sorted(expected_ids - failed_ids)}; "
            f"failed unexpectedly: {sorted(failed_ids - expected_ids)}"
        )
    blocked = {
        r["id"]: r.get("blocked_by") for r in doc["requirements"] if r["outcome"] == "blocked"
    }
    wrongly_blocked = {i: by for i, by in blocked.items() if by not in expected_ids}
    if wrongly_blocked:
        problems.append(f"blocked by a requirement that should not fail: {wrongly_blocked}")
    expected_code = 1 if server.fails_a_must else 0
    if result.returncode != expected_code:
        problems.append(
            f"exit status {result.returncode}, expected {expected_code}\n"
            f"{_tail(result.stdout, 1500)}{_tail(result.stderr, 1500)}"
        )
    assert not problems, (
        f"{server.name}: {_summary(result, doc)}\n\n"
        + "\n\n".join(problems)
        + "\n\nfailure details:\n"
        + _failure_details(doc)[-4000:]
    )


@pytest.mark.parametrize(("server", "profile"), CASES)
def test_kit_verdict_on_fixed_port_server(
    server: FixedServer, profile: str, cc: None, tmp_path: Path
) -> None:
    port = free_port()
    binary = build(server.name, port, tmp_path / "bin")
    result, doc = _run(binary, port, tmp_path / "report.json", profile=profile)
    assert doc["target"]["port"] == port
    _assert_verdict(server, result, doc)


def test_xdist_workers_share_the_fixed_port(cc: None, tmp_path: Path) -> None:
    """With `-n 2` two workers want the one port at once: the kit must take turns, so the
    verdict of every requirement is the one a single process gives."""
    server = find("tut_fork_reuse")
    port = free_port()
    binary = build(server.name, port, tmp_path / "bin")
    serial, serial_doc = _run(binary, port, tmp_path / "n0.json", "-n", "0")
    parallel, parallel_doc = _run(binary, port, tmp_path / "n2.json", "-n", "2")
    _assert_verdict(server, serial, serial_doc)
    _assert_verdict(server, parallel, parallel_doc)
    outcomes = {r["id"]: r["outcome"] for r in serial_doc["requirements"]}
    parallel_outcomes = {r["id"]: r["outcome"] for r in parallel_doc["requirements"]}
    assert parallel_outcomes == outcomes, _failure_details(parallel_doc)[-4000:]
    assert parallel_doc["categories"] == serial_doc["categories"]
    assert parallel.returncode == serial.returncode


def test_port_held_by_another_process_is_a_usage_error(cc: None, tmp_path: Path) -> None:
    """A port that some other program holds is not the server's fault: the kit must say who
    holds it and stop before any check, not fail the server's checks one by one."""
    port = free_port()
    binary = build("tut_fork_reuse", port, tmp_path / "bin")
    report = tmp_path / "report.json"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("0.0.0.0", port))
        holder.listen(1)
        result = kit(
            "run",
            "--server-cmd",
            shlex.quote(str(binary)),
            "--port",
            str(port),
            "--profile",
            "quick",
            "--json-report",
            str(report),
            timeout=120,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 2, f"exit status {result.returncode}\n{_tail(output)}"
    assert f"pid {os.getpid()}" in output, _tail(output)
    if report.exists():
        ran = [
            r["id"] for r in json.loads(report.read_text())["requirements"]
            if r["outcome"] in ("passed", "failed")
        ]  # fmt: skip
        assert ran == [], f"checks ran although the port was taken: {ran}"
