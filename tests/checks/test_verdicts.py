"""Verdicts people can trust: one defect fails one rule, and the kit's own errors are its own.

A server that never answers fails PROTO-1 (PROTO-4 with echo), and every check that needs an
answer is `blocked` by it instead of failing with a cause of its own; a requirement the kit
could not judge because of its own error is `kit-error` (exit status 3), never `failed`; a
failure hypothesis saw once and not on replay is reported with the server's own evidence.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.errors import FlakyFailure, FlakyStrategyDefinition

from conformance import report as report_mod
from conformance.checks.hypothesis_profiles import NOT_AGAIN, run_given, without_shrinking
from conformance.harness.failure import KitError, Violation, is_kit_error, unwrap_flaky
from conformance.harness.liveness import root as root_of
from conformance.plugin import NEEDS_NO_ANSWER
from conformance.spec import REQUIREMENTS
from tests.conftest import kit

PY_SERVERS = Path(__file__).resolve().parent.parent / "servers" / "py"
SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "conformance" / "report.schema.json").read_text()
)


def _py(name: str) -> str:
    return f"{sys.executable} -S {PY_SERVERS / name}.py --port {{port}}"


def _run(tmp_path: Path, *args: str) -> tuple[int, dict]:
    out = tmp_path / "report.json"
    result = kit("run", *args, "--json-report", str(out))
    assert out.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, SCHEMA)
    return result.returncode, doc


@pytest.mark.parametrize("server", ["never_answers", "never_accepts"])
# The echo profile's root (PROTO-4) with --full-matrix; the README's command judges ok's.
@pytest.mark.parametrize("protocol", ["ok", pytest.param("echo", marks=pytest.mark.full_matrix)])
def test_mute_server_fails_one_rule_and_blocks_the_rest(
    server: str, protocol: str, tmp_path: Path
) -> None:
    code, doc = _run(tmp_path, "--server-cmd", _py(server), "--protocol", protocol)
    outcomes = {r["id"]: r for r in doc["requirements"]}
    root = root_of(protocol)
    assert outcomes[root]["outcome"] == "failed"
    assert "never wrote a reply" in outcomes[root]["detail"] or protocol == "echo"
    failed = {i for i, r in outcomes.items() if r["outcome"] == "failed"}
    assert failed == {root}, failed
    blocked = {i for i, r in outcomes.items() if r["outcome"] == "blocked"}
    assert blocked, "nothing was blocked"
    assert all(outcomes[i]["blocked_by"] == root for i in blocked)
    assert all(f"blocked by {root}" in outcomes[i]["detail"] for i in blocked)
    # Everything else either needs no answer or does not apply to this profile or model.
    others = set(outcomes) - blocked - {root}
    assert all(outcomes[i]["outcome"] != "passed" or i in NEEDS_NO_ANSWER for i in others)
    assert code == 1


def test_blocked_earns_nothing_and_does_not_fail_the_run() -> None:
    selected = [r for r in REQUIREMENTS if r.id in ("PROTO-1", "PROTO-2", "ZOMB-1")]
    results = {
        "PROTO-1": report_mod.Result("PROTO-1", "passed"),
        "PROTO-2": report_mod.Result("PROTO-2", "blocked", "blocked by X", blocked_by="X"),
        "ZOMB-1": report_mod.Result("ZOMB-1", "passed"),
    }
    doc = _build(selected, results)
    by_id = {r["id"]: r for r in doc["requirements"]}
    assert by_id["PROTO-2"]["score"] == 0 and by_id["PROTO-2"]["max_score"] == 1
    assert by_id["PROTO-2"]["blocked_by"] == "X"
    assert doc["categories"]["protocol"] == "blocked"
    assert report_mod.exit_code(doc) == 0


def test_kit_error_has_its_own_exit_status_and_a_failure_wins() -> None:
    selected = [r for r in REQUIREMENTS if r.id in ("PROTO-1", "ZOMB-1")]
    results = {
        "PROTO-1": report_mod.Result("PROTO-1", "passed"),
        "ZOMB-1": report_mod.Result("ZOMB-1", "kit-error"),
    }
    doc = _build(selected, results)
    assert doc["categories"]["zombies"] == "kit-error"
    assert report_mod.exit_code(doc) == report_mod.KIT_ERROR_EXIT
    results["PROTO-1"] = report_mod.Result("PROTO-1", "failed")
    assert report_mod.exit_code(_build(selected, results)) == 1


def _build(selected, results) -> dict:  # type: ignore[no-untyped-def]
    return report_mod.build(
        results=results,
        selected=selected,
        target={"mode": "launch", "command": "x", "port": None},
        protocol="ok",
        profile="quick",
        seed=0,
        model="fork",
        started_at="",
        duration_s=0.0,
        excluded={},
        serialised=[],
        strict=False,
    )


def test_a_flaky_failure_reports_the_servers_first_failure() -> None:
    first = Violation("b'OK!!!' on A within 2.0 s", "nothing after 2.0 s", ["sent b'x' on A"])
    flaky = FlakyFailure("Hypothesis test_x(...) produces unreliable results", [first])
    assert unwrap_flaky(flaky) is first
    assert not is_kit_error(unwrap_flaky(flaky))
    nested = FlakyFailure("outer", [FlakyFailure("inner", [ValueError("x"), first])])
    assert unwrap_flaky(nested) is first


def test_the_kits_own_errors_are_told_from_the_servers() -> None:
    assert is_kit_error(FlakyStrategyDefinition("Inconsistent data generation!"))
    assert is_kit_error(KitError("port still held by a server the kit started"))
    assert is_kit_error(TypeError("a bug"))
    assert not is_kit_error(Violation("x", "y"))
    assert not is_kit_error(BrokenPipeError(32, "Broken pipe"))
    assert not is_kit_error(pytest.fail.Exception("server could not be started"))


def test_exit_6_fails_a_server_without_reuseaddr_and_nothing_else(tmp_path: Path) -> None:
    code, doc = _run(tmp_path, "--server-cmd", _py("no_reuseaddr"), "--profile", "quick")
    failed = {r["id"] for r in doc["requirements"] if r["outcome"] == "failed"}
    assert failed == {"EXIT-6"}
    detail = next(r["detail"] for r in doc["requirements"] if r["id"] == "EXIT-6")
    assert "SO_REUSEADDR" in detail and "Address already in use" in detail
    assert code == 0  # a SHOULD: fails the run only with --strict
    assert doc["categories"]["exit"] == "passed"


def test_exit_6_passes_a_server_with_reuseaddr(tmp_path: Path) -> None:
    code, doc = _run(
        tmp_path, "--server-cmd", _py("ok_thread"), "--requirement", "EXIT-6", "--strict"
    )
    assert [r["outcome"] for r in doc["requirements"]] == ["passed"]
    assert code == 0


def test_a_failure_seen_once_is_reported_as_the_servers_own() -> None:
    """Hypothesis replays a failing example; when the replay passes it raises Flaky. The
    check raises the first failure instead, with its evidence and a word on what happened."""
    calls: list[int] = []

    @given(st.integers())
    def exchange(n: int) -> None:
        calls.append(n)
        if len(calls) == 1:
            raise Violation("b'OK!!!' on A", "b'OK!!!\\n'", ["sent b'x' on A"])

    with pytest.raises(Violation) as failure:
        run_given(exchange, "quick", 0)
    assert failure.value.actual == "b'OK!!!\\n'"
    assert NOT_AGAIN in failure.value.render()
    assert "Flaky" not in failure.value.render()


def test_a_kit_error_inside_hypothesis_stays_a_kit_error() -> None:
    calls: list[int] = []

    @given(st.integers())
    def exchange(n: int) -> None:
        calls.append(n)
        if len(calls) == 1:
            raise TypeError("a bug of the kit")

    with pytest.raises(BaseException) as failure:
        run_given(exchange, "quick", 0)
    assert is_kit_error(unwrap_flaky(failure.value))


def test_a_small_backlog_is_named_with_its_measured_size(tmp_path: Path, zoo_build: Path) -> None:
    """CONC-3's likely cause names the backlog the kernel reports for the server's listener
    (3 for the zoo's backlog3), not a guess."""
    code, doc = _run(
        tmp_path, "--server-cmd", f"{zoo_build / 'backlog3'} {{port}}", "--requirement", "CONC-3"
    )
    conc3 = next(r for r in doc["requirements"] if r["id"] == "CONC-3")
    assert (code, conc3["outcome"]) == (1, "failed")
    assert "listen() backlog is 3 " in conc3["detail"], conc3["detail"]


def test_eintr_injected_into_file_reads_is_not_judged(tmp_path: Path) -> None:
    """A fork server that executes a program per connection: strace's injection reaches that
    program's dynamic loader, reading libraries, where no signal causes EINTR. EINTR-3 is then
    not judged (skipped, with the files named), never failed; EINTR-2's real signals are."""
    code, doc = _run(
        tmp_path,
        "--server-cmd",
        _py("ok_fork_exec") + " --protocol echo",
        "--protocol",
        "echo",
        "--requirement",
        "EINTR-2",
        "--requirement",
        "EINTR-3",
    )
    outcomes = {r["id"]: r for r in doc["requirements"]}
    if "strace" in outcomes["EINTR-3"]["detail"] and "needs" in outcomes["EINTR-3"]["detail"]:
        pytest.skip(outcomes["EINTR-3"]["detail"])
    assert outcomes["EINTR-2"]["outcome"] == "passed"
    assert outcomes["EINTR-3"]["outcome"] == "skipped"
    assert "regular files" in outcomes["EINTR-3"]["detail"]
    assert code == 0


@pytest.mark.parametrize(
    "profile", ["default", pytest.param("quick", marks=pytest.mark.full_matrix)]
)
def test_a_descriptor_shared_through_a_global_is_named(
    tmp_path: Path, zoo_build: Path, profile: str
) -> None:
    """The connection reaches each thread through a global (tests/servers/c/global_cfd.c):
    the model still reads `thread`, and CONC-2's cause names the shared variable, not a
    pool too small or a serial server."""
    code, doc = _run(
        tmp_path,
        "--server-cmd",
        f"{zoo_build / 'global_cfd'} {{port}}",
        "--requirement",
        "CONC-2",
        "--profile",
        profile,
    )
    assert code == 1
    assert doc["model"] == "thread"
    (conc2,) = [r for r in doc["requirements"] if r["id"] == "CONC-2"]
    assert conc2["outcome"] == "failed"
    assert "a variable that the next accept() overwrites" in conc2["detail"], conc2["detail"]
    assert "read by no thread" in conc2["detail"], conc2["detail"]
    assert "serial server" not in conc2["detail"], conc2["detail"]


@pytest.mark.parametrize("shrink", [True, False])
def test_a_failure_blocked_anyway_is_reported_unshrunk(shrink: bool) -> None:
    """A check whose failure the plugin reports as blocked (the server answers one request
    per connection) runs without shrinking: the failure found first is the one raised, and
    no attempt is spent making it smaller. Outside that block, failures are shrunk."""
    tried: list[int] = []

    @given(st.integers(min_value=0, max_value=10**6))
    def check(n: int) -> None:
        tried.append(n)
        if n >= 1000:
            raise Violation("n below 1000", f"n = {n}")

    with (
        pytest.raises(Violation) as caught,
        contextlib.nullcontext() if shrink else without_shrinking(),
    ):
        run_given(check, "default", 0)
    first_failing = next(n for n in tried if n >= 1000)
    if shrink:
        assert caught.value.actual == "n = 1000"  # shrunk to the boundary
    else:
        assert caught.value.actual == f"n = {first_failing}"
        assert tried.index(first_failing) >= len(tried) - 2  # found, then replayed once
