"""The option table (conformance/options.py): one declaration per option, every front end
generated from it, every --help complete."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest

from conformance import cli, options
from conformance.errors import EXIT_STATUSES
from tests.conftest import ROOT


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli._run_parser(sub)
    from conformance import bench, doctor
    from conformance.grade import batch

    bench.add_parser(sub)
    batch.add_parser(sub)
    doctor.add_parser(sub)
    return dict(sub.choices)


def test_each_option_s_help_is_written_once() -> None:
    """A grep over the package: each option's help text is in options.py and nowhere else."""
    sources = {p: p.read_text() for p in (ROOT / "conformance").rglob("*.py")}
    for o in options.OPTIONS:
        holders = [p.name for p, text in sources.items() if o.help[:40] in text]
        assert holders == ["options.py"], (o.name, holders)


@pytest.mark.parametrize("command", ["run", "bench", "grade"])
def test_every_option_has_help_and_shows_its_default(command: str) -> None:
    parser = _subparsers()[command]
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        assert action.help, (command, action.option_strings)
        shown = parser._get_formatter()._expand_help(action) if action.help else ""
        if action.default not in (None, False, [], argparse.SUPPRESS):
            assert "default" in shown, (command, action.option_strings, shown)


@pytest.mark.parametrize("command", ["run", "bench", "grade", "list", "doctor"])
def test_every_help_gives_the_exit_statuses(command: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "conformance", command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "exit statuses: 0" in out


def test_run_help_names_each_option_s_other_names() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "conformance", "run", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    flat = " ".join(out.split())
    assert "env CONFORMANCE_PROFILE" in flat
    assert "pytest --conformance-json-report" in flat
    assert "grading config [assignment] seed" in flat
    for code, _ in EXIT_STATUSES:
        assert f" {code} " in flat


def test_grade_help_speaks_the_user_s_language() -> None:
    """No internal class or module names in the description a user reads."""
    description = _subparsers()["grade"].description or ""
    assert not re.search(r"\b[a-z_]+\.[A-Z]\w+", description), description
    assert "Grader" not in description


def test_the_three_command_lines_agree() -> None:
    """`conformance run`'s flags, translated for pytest and back, lose nothing."""
    values = {
        "server_cmd": "./s {port}",
        "port": 8080,
        "profile": "quick",
        "seed": 3,
        "requirement": ["CONC", "EXIT-1"],
        "strict": True,
    }
    ns = _subparsers()["run"].parse_args(options.cli_argv(values))
    assert {k: getattr(ns, k) for k in values} == values
    argv = options.pytest_argv(values)
    assert argv[:2] == ["--conformance-server-cmd", "./s {port}"]
    assert argv.count("--conformance-requirement") == 2
    assert "--conformance-strict" in argv


def test_a_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFORMANCE_SEED", "x")
    result = subprocess.run(
        [sys.executable, "-m", "conformance", "run", "--server", "fork"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "environment variable CONFORMANCE_SEED='x': not an integer" in result.stderr


def test_each_sandbox_limit_is_declared_once() -> None:
    """Every Limits field but the watched disk and the cgroup's memory has one RLimit; its
    flag reaches the sandbox's parser and sets its rlimit."""
    import resource
    from dataclasses import fields

    from conformance.grade import sandbox
    from conformance.grade.config import Limits

    not_rlimits = {"disk_mb", "memory_mb"}
    assert {r.field for r in sandbox.RLIMITS} == {f.name for f in fields(Limits)} - not_rlimits
    limits = Limits(nproc=7, nofile=9, address_space_mb=5, cpu_s=3, file_size_mb=2)
    ns = sandbox.parser().parse_args([*sandbox.limit_args(limits), "--", "true"])
    assert {r.field: getattr(ns, r.field) for r in sandbox.RLIMITS} == {
        "nproc": 7, "nofile": 9, "address_space_mb": 5, "cpu_s": 3, "file_size_mb": 2
    }  # fmt: skip
    by_resource = {r.resource: r for r in sandbox.RLIMITS}
    assert by_resource[resource.RLIMIT_AS].unit == by_resource[resource.RLIMIT_FSIZE].unit


def test_each_front_end_phrases_the_fix_in_its_own_terms() -> None:
    """The refusal's fix is in `conformance run`'s terms; bare pytest gets its flags."""
    fix = "({port} in --server-cmd), or give that port with --port N; --port-range stays"
    assert options.in_pytest_terms(fix) == (
        "({port} in --conformance-server-cmd), or give that port with --conformance-port N; "
        "--port-range stays"
    )
