"""A failing run, read as people read it: its JUnit (and, below, its terminal and HTML page).

One Python zoo server per category, each run once on its own category at the quick profile
(tests/reports/reports.py); every output of that run is checked against what its defect
breaks, by content. The fast tier runs three categories; --full-matrix runs them all.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

import junitparser
import pytest

from conformance import terminal
from conformance.spec import BY_ID
from tests.conftest import ROOT
from tests.reports.reports import BY_CATEGORY, FAST, XUNIT2, Page, Run, run, run_zoo
from tests.servers import zoo


def _params() -> list:
    return [
        pytest.param(c, id=c, marks=() if c in FAST else pytest.mark.full_matrix)
        for c in BY_CATEGORY
    ]


def check_junit(result: Run, category: str) -> None:
    XUNIT2.validate(str(result.junit))
    xml = junitparser.JUnitXml.fromfile(str(result.junit))
    cases = {case.name.split(":")[0]: (suite.name, case) for suite in xml for case in suite}
    reqs = {r["id"]: r for r in result.doc["requirements"]}
    assert set(cases) == set(reqs)
    broken = zoo.find(BY_CATEGORY[category]).breaks
    for req_id, (suite, case) in cases.items():
        req = BY_ID[req_id]
        assert case.name == f"{req_id}: {req.title}"
        assert suite == case.classname == req.category == category
        outcome = reqs[req_id]["outcome"]
        failures = [r for r in case.result if isinstance(r, junitparser.Failure)]
        if req_id in broken and req.level == "MUST":
            assert outcome == "failed", reqs[req_id]["detail"]
            (failure,) = failures
            assert failure.message == reqs[req_id]["detail"]
            assert failure.message.startswith(f"[{req_id} MUST] {req.title}")
            for part in ("Expected: ", "Actual:   ", "Likely cause: "):
                assert part in failure.message, (part, failure.message)
        if outcome != "failed":
            assert not failures, (req_id, outcome)


@pytest.mark.parametrize("category", _params())
def test_a_failing_run_reads_right_in_every_output(tmp_path: Path, category: str) -> None:
    result = run_zoo(tmp_path, category)
    assert result.returncode == 1, result.stdout + result.stderr
    check_junit(result, category)
    check_terminal(result, category)
    check_html(result, category)


def test_a_should_failure_is_a_warning_not_a_failure_unless_strict(tmp_path: Path) -> None:
    """EXIT-5 (SHOULD) on a server that ignores SIGTERM: JUnit passes it with the warning;
    with --strict it is a failure."""
    server = f"{sys.executable} {ROOT / 'tests/servers/py/ignores_sigterm.py'} --port {{port}}"
    args = ["--server-cmd", server, "--requirement", "EXIT-5"]
    lenient = run(tmp_path / "lenient", *args)
    strict = run(tmp_path / "strict", *args, "--strict")
    assert (lenient.returncode, strict.returncode) == (0, 1)
    (case,) = (c for s in junitparser.JUnitXml.fromfile(str(lenient.junit)) for c in s)
    assert case.is_passed and "SHOULD not met" in case.system_out
    (case,) = (c for s in junitparser.JUnitXml.fromfile(str(strict.junit)) for c in s)
    assert [r.type for r in case.result] == ["SHOULD"]


# -- the terminal ------------------------------------------------------------------------------
LINE = re.compile(r"^  (ok|FAIL|WARN|BLOCKED|ERROR|skip|n/a) +([A-Z]+-\d+) +(MUST|SHOULD) +(.+)$")
MARK = {"passed": "ok", "failed": "FAIL", "blocked": "BLOCKED", "kit-error": "ERROR"}
MARK |= {"skipped": "skip", "not-applicable": "n/a"}


def check_terminal(result: Run, category: str) -> None:
    out = result.stdout
    lines = out.splitlines()
    # No pytest view: no check names, no kit paths, no second count.
    for word in ("test_", "conformance/checks", "site-packages", "short test summary", "FAILED"):
        assert word not in out, word
    assert lines[0].startswith(f"conformance: {result.doc['target']['command']} | model ")
    shown = {m[2]: (m[1], m[3], m[4], i) for i, line in enumerate(lines) if (m := LINE.match(line))}
    reqs = {r["id"]: r for r in result.doc["requirements"]}
    assert set(shown) == set(reqs)
    heading = lines.index(category)
    for req_id, (mark, level, title, i) in shown.items():
        r = reqs[req_id]
        assert mark == MARK[r["outcome"]], (req_id, mark, r["outcome"])
        assert (level, title) == (BY_ID[req_id].level, BY_ID[req_id].title)
        assert i > heading
        if r["outcome"] == "failed":
            # The failure's evidence under its line, as the JSON report has it.
            body = r["detail"].splitlines()[1:]
            assert lines[i + 1 : i + 1 + len(body)] == [
                terminal.INDENT + b.removeprefix("  ") for b in body
            ]
            evidence = "\n".join(lines[i + 1 : i + 1 + len(body)])
            for part in ("Did:", "Expected:", "Actual:", "Likely cause:"):
                assert part in evidence, (req_id, part)
    counts = Counter(r["outcome"] for r in reqs.values())
    tally = ", ".join(f"{counts[o]} {o}" for o in terminal.COUNTED if counts[o])
    (count,) = [line for line in lines if re.search(r" in \d+\.\d\ds \| score ", line)]
    assert count.startswith(tally + " in "), count
    assert count.endswith(f"| score {result.doc['score']}/{result.doc['max_score']}")
    assert "\x1b[" not in out  # not a terminal: plain


# -- the HTML page -----------------------------------------------------------------------------
SVG_NS = "http://www.w3.org/2000/svg"
#: The pictures each category's failing run must have: (requirement, kind of chart).
PICTURES = {
    "zombies": [("ZOMB-1", "samples")],
    "concurrency": [("CONC-1", "waits"), ("CONC-4", "waits")],
    "fd-leak": [("FDL-1", "samples")],
}


def check_html(result: Run, category: str) -> None:
    text = result.html.read_text()
    page = Page(text)
    assert "<script" not in text and "http://" not in text.replace(SVG_NS, "")  # self-contained
    (verdict,) = page.find("span", id="verdict")
    assert "FAILED" in "".join(page.text)
    assert "v-fail" in verdict["class"]
    for r in result.doc["requirements"]:
        (row,) = page.find("tr", data_requirement=r["id"])
        assert row["data-outcome"] == r["outcome"]
        if r["outcome"] == "failed":
            assert page.find("section", id=r["id"]), r["id"]
            # The failure in full, as the report has it (escaped once, read back by the parser).
            assert r["detail"] in "".join(page.text)
    for req_id, kind in PICTURES.get(category, []):
        assert len(page.find("svg", class_=f"chart {kind}", data_requirement=req_id)) == 1
        if kind == "samples":
            zombies = page.find("polyline", class_="series zombies")
            fds = page.find("polyline", class_="series fds")
            climbing = zombies if category == "zombies" else fds
            assert any(int(p["data-last"]) >= 10 for p in climbing), climbing
        else:
            assert page.find("rect", class_="wait unanswered")
