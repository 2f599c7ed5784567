"""The kit's pytest plugin beside other plugins and in a user's own pytest run.

The kit installs its plugin into every pytest run of the environment (the `pytest11` entry
point), so it must not break or change a run that has nothing to do with it: its options are
namespaced (pytest-json-report has `--json-report`, pytest-profiling `--profile`), its xdist
hook is optional (`-p no:xdist`), and it loads nothing heavy until a run names a server. Each
run here is a fresh pytest process in a scratch directory, as a user's project would be.
"""

from __future__ import annotations

import json
import re
import sys

import pytest

from conformance import options

USER_TESTS = """
import sys

def test_adds():
    assert 1 + 1 == 2

def test_kit_not_loaded():
    # The entry point imports only the option table; the harness and the real plugin load
    # only in a run that names a server.
    heavy = ("conformance.plugin", "conformance.harness", "conformance.settings")
    assert not [m for m in sys.modules if m.startswith(heavy)]

def test_fails_on_purpose():
    assert "user" == "kit"
"""


def _outcome_lines(stdout: list[str]) -> list[str]:
    """A run's output without what varies between two runs (timings, the plugin lists)."""
    lines = []
    for line in stdout:
        if line.startswith(("plugins:", "metadata:", "rootdir:", "cachedir:")):
            continue
        lines.append(re.sub(r" in \d+\.\d+s", " in Xs", line))
    return lines


def _user_project(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)


def test_a_users_run_is_untouched(pytester: pytest.Pytester) -> None:
    """The same outcomes and the same output, but for timings and the plugin list, with and
    without the kit's plugin; and the kit's harness is never imported."""
    _user_project(pytester)
    with_kit = pytester.runpytest_subprocess("-v", "-p", "no:cacheprovider")
    without = pytester.runpytest_subprocess(
        "-v", "-p", "no:cacheprovider", "-p", "no:conformance.pytest_entry"
    )
    with_kit.assert_outcomes(passed=2, failed=1)
    assert with_kit.ret == without.ret == pytest.ExitCode.TESTS_FAILED
    assert _outcome_lines(with_kit.outlines) == _outcome_lines(without.outlines)


def test_beside_pytest_json_report_and_profiling(pytester: pytest.Pytester) -> None:
    """Their `--json-report` and `--profile` are theirs: no option clash, both do their job."""
    pytest.importorskip("pytest_jsonreport")
    pytest.importorskip("pytest_profiling")
    _user_project(pytester)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--json-report",
        "--json-report-file=user.json",
        "--profile",
    )
    result.assert_outcomes(passed=2, failed=1)
    assert json.loads((pytester.path / "user.json").read_text())["summary"]["passed"] == 2
    assert (pytester.path / "prof" / "combined.prof").exists()


def test_a_users_run_without_xdist(pytester: pytest.Pytester) -> None:
    """`-p no:xdist`: the kit's xdist hook is optional, so pytest starts as usual."""
    _user_project(pytester)
    result = pytester.runpytest_subprocess("-p", "no:xdist", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_the_kit_beside_the_other_plugins_without_xdist(pytester: pytest.Pytester) -> None:
    """The kit's own run, with pytest-json-report's report and without xdist: each report is
    written where its own option says."""
    pytest.importorskip("pytest_jsonreport")
    result = pytester.runpytest_subprocess(
        "-p",
        "no:xdist",
        "--pyargs",
        "conformance",
        "--conformance-server",
        "thread",
        "--conformance-requirement",
        "PROTO-1",
        "--conformance-profile",
        "quick",
        "--conformance-json-report",
        "kit.json",
        "--json-report",
        "--json-report-file=plugin.json",
    )
    result.assert_outcomes(passed=1)
    kit = json.loads((pytester.path / "kit.json").read_text())
    assert [r["outcome"] for r in kit["requirements"] if r["id"] == "PROTO-1"] == ["passed"]
    assert json.loads((pytester.path / "plugin.json").read_text())["summary"]["passed"] == 1


def test_checks_without_a_server_say_how_to_give_one(pytester: pytest.Pytester) -> None:
    """Once, without pytest's Exit framing, and as a record in the JSON report."""
    result = pytester.runpytest_subprocess(
        "--pyargs", "conformance", "-p", "no:cacheprovider",
        "--conformance-json-report", "r.json",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    out = result.stdout.str() + result.stderr.str()
    assert out.count("--conformance-server fork") == 1, out
    assert "_pytest.outcomes.Exit" not in out
    refusal = json.loads((pytester.path / "r.json").read_text())["refusal"]
    assert refusal["kind"] == "no-server"


def test_every_pytest_option_is_namespaced() -> None:
    """The only flags the plugin adds to a user's pytest start with --conformance-."""
    flags = [o.pytest_flag for o in options.OPTIONS]
    assert all(f.startswith("--conformance-") for f in flags), flags
    assert len(set(flags)) == len(flags)


def test_importing_the_entry_point_is_cheap() -> None:
    """No harness, hypothesis or psutil behind the entry point (they cost a second)."""
    import subprocess

    code = (
        "import sys; import conformance.pytest_entry; "
        "print(sorted(m for m in ('hypothesis', 'psutil', 'conformance.plugin', "
        "'conformance.harness') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
