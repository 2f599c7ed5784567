"""JUnit XML per requirement: valid xunit2, read by a JUnit library as CI tools read it.

Rendered from synthetic reports here (every outcome, strict or not, a refusal); the JUnit of
real failing runs is checked in test_failing_runs.py.
"""

from __future__ import annotations

from pathlib import Path

import junitparser
import pytest
import xmlschema

from conformance import junit, report
from conformance.errors import Refusal
from tests.reports.reports import XUNIT2

OUTCOMES = {
    "PROTO-1": (
        "failed",
        "[PROTO-1 MUST] Every message ...\n  Expected: b'OK!!!'\n  Actual:   b'KO'",
    ),
    "PROTO-2": ("passed", ""),
    "CONC-1": ("blocked", "blocked by PROTO-1: the server answers no message"),
    "ZOMB-1": ("not-applicable", "not applicable: ZOMB-1 is about fork servers"),
    "EXIT-5": ("failed", "[EXIT-5 SHOULD] On SIGTERM ...\n  Actual:   still running after 2 s"),
    "FDL-1": ("kit-error", "  The kit itself failed while checking this requirement"),
    "EINTR-3": ("skipped", "strace is not installed"),
}


def synthetic(strict: bool = False) -> dict:
    """A report with every outcome, built by the report module itself."""
    doc = report.refused(Refusal("usage", "x"))
    del doc["refusal"]
    doc["strict"] = strict
    for r in doc["requirements"]:
        r["outcome"], r["detail"] = OUTCOMES.get(r["id"], ("passed", ""))
        if r["outcome"] == "blocked":
            r["blocked_by"] = "PROTO-1"
    return doc


def parse(tmp_path: Path, doc: dict) -> dict[str, junitparser.TestCase]:
    path = tmp_path / "junit.xml"
    junit.write(doc, path)
    XUNIT2.validate(str(path))
    xml = junitparser.JUnitXml.fromfile(str(path))
    return {case.name.split(":")[0]: case for suite in xml for case in suite}


def test_one_case_per_requirement_named_by_id_and_title(tmp_path: Path) -> None:
    doc = synthetic()
    cases = parse(tmp_path, doc)
    assert list(cases) == [r["id"] for r in doc["requirements"]]
    for r in doc["requirements"]:
        case = cases[r["id"]]
        assert case.name == f"{r['id']}: {r['title']}"
        assert case.classname == r["category"]


def test_a_must_failure_carries_the_failure_text(tmp_path: Path) -> None:
    case = parse(tmp_path, synthetic())["PROTO-1"]
    (failure,) = case.result
    assert isinstance(failure, junitparser.Failure)
    assert failure.message == OUTCOMES["PROTO-1"][1]  # newlines kept (&#10;)
    assert failure.text == OUTCOMES["PROTO-1"][1]
    assert failure.type == "MUST"


@pytest.mark.parametrize("strict", [False, True])
def test_a_should_failure_is_a_failure_only_with_strict(tmp_path: Path, strict: bool) -> None:
    case = parse(tmp_path, synthetic(strict))["EXIT-5"]
    if strict:
        assert [type(r) for r in case.result] == [junitparser.Failure]
        assert case.result[0].type == "SHOULD"
    else:
        assert case.is_passed
        assert case.system_out.startswith(junit.SHOULD_WARNING)
        assert "still running after 2 s" in case.system_out


def test_not_judged_requirements_are_skipped_with_the_reason(tmp_path: Path) -> None:
    cases = parse(tmp_path, synthetic())
    for req_id, kind in (
        ("CONC-1", "blocked"),
        ("ZOMB-1", "not-applicable"),
        ("EINTR-3", "skipped"),
    ):
        (skipped,) = cases[req_id].result
        assert isinstance(skipped, junitparser.Skipped)
        assert skipped.type == kind
        assert skipped.message == OUTCOMES[req_id][1]


def test_a_kit_error_is_a_failure_of_its_own_type(tmp_path: Path) -> None:
    (failure,) = parse(tmp_path, synthetic())["FDL-1"].result
    assert isinstance(failure, junitparser.Failure)
    assert failure.type == "kit-error"


def test_counts_per_suite_and_in_all(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    doc = synthetic()
    junit.write(doc, path)
    xml = junitparser.JUnitXml.fromfile(str(path))
    suites = {s.name: s for s in xml}
    assert list(suites) == list(dict.fromkeys(r["category"] for r in doc["requirements"]))
    assert (suites["protocol"].tests, suites["protocol"].failures) == (6, 1)
    assert (suites["exit"].failures, suites["fd-leak"].failures) == (0, 1)  # SHOULD; kit-error
    assert suites["concurrency"].skipped == 1
    assert xml.tests == len(doc["requirements"])
    assert xml.failures == 2
    props = {p.name: p.value for p in suites["protocol"].properties()}
    assert props["strict"] == "false"
    assert props["score"] == str(doc["score"])


def test_a_refused_run_is_one_failed_case(tmp_path: Path) -> None:
    doc = report.refused(Refusal("port-in-use", "port 8080 is in use", "choose another"))
    cases = parse(tmp_path, doc)
    (case,) = cases.values()
    assert case.name == "the kit could not run"
    assert case.result[0].message == "port-in-use: port 8080 is in use\nfix: choose another"


def test_the_schema_is_not_vacuous(tmp_path: Path) -> None:
    """What the schema must reject: pytest's old habit (a property inside a test case) and an
    element the format does not have."""
    for inner in ('<properties><property name="a" value="b"/></properties>', "<error/>"):
        bad = tmp_path / "bad.xml"
        bad.write_text(
            '<testsuites><testsuite name="s" tests="1" failures="0" errors="0">'
            f'<testcase name="t">{inner}</testcase></testsuite></testsuites>'
        )
        with pytest.raises(xmlschema.XMLSchemaValidationError):
            XUNIT2.validate(str(bad))


def test_control_characters_do_not_break_the_xml(tmp_path: Path) -> None:
    doc = synthetic()
    doc["requirements"][0]["detail"] = "[PROTO-1 MUST] got \x00\x07 from the server"
    case = parse(tmp_path, doc)["PROTO-1"]
    assert case.result[0].message == "[PROTO-1 MUST] got \ufffd\ufffd from the server"


def test_the_plugin_writes_them_in_a_bare_pytest_run(pytester: pytest.Pytester) -> None:
    """`pytest --pyargs conformance` with the plugin's names for the reports."""
    result = pytester.runpytest_subprocess(
        "--pyargs", "conformance", "-p", "no:cacheprovider",
        "--conformance-server", "thread", "--conformance-requirement", "PROTO-1",
        "--conformance-profile", "quick",
        "--conformance-junit-xml", "j.xml", "--conformance-html", "r.html",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    XUNIT2.validate(str(pytester.path / "j.xml"))
    (case,) = (c for s in junitparser.JUnitXml.fromfile(str(pytester.path / "j.xml")) for c in s)
    assert case.name.startswith("PROTO-1: Every message") and case.is_passed
    assert "PASSED: every requirement checked is met" in (pytester.path / "r.html").read_text()
