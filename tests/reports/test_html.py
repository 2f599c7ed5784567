"""The HTML page from synthetic reports: the verdict in words, what is escaped, a refusal,
pictures drawn from the recorded data (and none without it). Real runs' pages are checked in
test_failing_runs.py, and rendered in chromium in test_html_browser.py."""

from __future__ import annotations

from conformance import htmlreport, report
from conformance.errors import Refusal
from tests.reports.reports import Page
from tests.reports.test_junit import synthetic

SAMPLES = [{"session": i, "children": 0, "zombies": i, "fds": 4, "threads": 1} for i in range(11)]
WAITS = [
    {"client": "A", "waited_s": 0.002, "answered": True, "limit_s": 2.0},
    {"client": "B1", "waited_s": 1.001, "answered": False, "limit_s": 1.0},
]


def test_the_verdict_says_what_the_exit_status_says() -> None:
    doc = synthetic()
    assert "FAILED" in htmlreport.render(doc)
    for r in doc["requirements"]:
        if r["outcome"] in ("failed", "kit-error") and r["level"] == "MUST":
            r["outcome"] = "passed"
    assert "PASSED, with warnings" in htmlreport.render(doc)  # EXIT-5, a SHOULD
    doc["strict"] = True
    assert "FAILED" in htmlreport.render(doc)


def test_everything_from_the_server_is_escaped() -> None:
    doc = synthetic()
    doc["requirements"][0]["detail"] = "[PROTO-1 MUST] got b'<script>alert(1)</script>'"
    page = htmlreport.render(doc)
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_pictures_come_from_the_recorded_data() -> None:
    doc = synthetic()
    zomb = next(r for r in doc["requirements"] if r["id"] == "PROTO-1")
    zomb["samples"], zomb["waits"] = [SAMPLES], WAITS
    page = Page(htmlreport.render(doc))
    assert len(page.find("svg", class_="chart samples", data_requirement="PROTO-1")) == 1
    (zombies,) = page.find("polyline", class_="series zombies")
    assert zombies["data-last"] == "10" and len(zombies["points"].split()) == 11
    assert len(page.find("rect", class_="wait answered")) == 1
    (late,) = page.find("rect", class_="wait unanswered")
    assert late["data-client"] == "B1"
    assert not Page(htmlreport.render(synthetic())).find("svg")


def test_a_refused_run_says_why_nothing_was_judged() -> None:
    doc = report.refused(Refusal("port-in-use", "port 8080 is in use", "choose another"))
    page = htmlreport.render(doc)
    assert "NOT RUN" in page and "port 8080 is in use" in page and "fix: choose another" in page
