"""The terminal in the spec's terms: per category, a line per requirement, as verdicts come in.

A run of the kit's checks reads like h2spec's: a category heading, then for each requirement a
mark, its ID, its level and its title; under a failure, its Did / Expected / Actual / Server /
Waiting / Likely cause; a SHOULD that failed is a warning (it fails the run only with
`--strict`); at the end one count line, of requirements. None of pytest's own view is shown:
no check names, file paths, progress letters or tracebacks, and no second count of checks.
`--pytest-view` (`--conformance-pytest-view`) keeps pytest's output instead, for debugging.

It takes over only in a run that collected the kit's checks (a requirement-marked item); the
plugin is registered only in runs that name a server, so any other pytest run, the kit's own
test suite included, keeps pytest's output. It changes pytest's reporter through its public
options (verbosity, traceback style) and two of its attributes (the short summary's
characters, the final statistics line), all set once the checks are known and before the
first one runs.

Lines come as each requirement's last check ends. With pytest-xdist requirements end in any
order: a category's lines are shown under one heading, the others' held until it is done.
Colour follows pytest's terminal (a terminal, `NO_COLOR`, `PY_COLORS`); a line never relies
on colour: the mark is a word.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from conformance.spec import BY_ID, CATEGORIES

#: outcome -> (mark, pytest terminal markup). A failed SHOULD without --strict is "warning".
MARKS: dict[str, tuple[str, dict[str, bool]]] = {
    "passed": ("ok", {"green": True}),
    "failed": ("FAIL", {"red": True, "bold": True}),
    "warning": ("WARN", {"yellow": True, "bold": True}),
    "blocked": ("BLOCKED", {"yellow": True}),
    "kit-error": ("ERROR", {"purple": True, "bold": True}),
    "skipped": ("skip", {"yellow": True}),
    "not-applicable": ("n/a", {}),
}
#: The order of the count line.
COUNTED = ("failed", "warning", "kit-error", "passed", "blocked", "skipped", "not-applicable")
MARK_WIDTH = max(len(m) for m, _ in MARKS.values())
INDENT = " " * (2 + MARK_WIDTH + 1)
#: The reason of a not-judged requirement, on its own line, cut to this many characters.
REASON_LIMIT = 200

_PARAMS = re.compile(r"\[.*\]$")


def verdict(outcome: str, level: str, strict: bool) -> str:
    """The mark's outcome: a failed SHOULD is a warning unless --strict."""
    return "warning" if outcome == "failed" and level == "SHOULD" and not strict else outcome


def count_line(doc: dict[str, Any], seconds: float) -> str:
    """The one count line: requirements by verdict, the time, the score."""
    strict = bool(doc.get("strict"))
    counts = dict.fromkeys(COUNTED, 0)
    for r in doc["requirements"]:
        counts[verdict(r["outcome"], r["level"], strict)] += 1
    parts = [f"{n} {o if n == 1 or o != 'warning' else 'warnings'}" for o, n in counts.items() if n]
    tally = ", ".join(parts) or "no requirement judged"
    return f"{tally} in {seconds:.2f}s | score {doc['score']:g}/{doc['max_score']:g}"


class RequirementView:
    """A pytest plugin (controller side) that writes the requirements view.

    `result_of(req_id)` gives a requirement's verdict so far as (outcome, detail, blocked_by),
    or None; the plugin's recorder fills it before this view hears of the same report.
    """

    def __init__(
        self,
        config: pytest.Config,
        strict: bool,
        result_of: Callable[[str], tuple[str, str, str | None] | None],
        requirement_of_nodeid: Callable[[str], str | None],
    ) -> None:
        self.config = config
        self.strict = strict
        self.result_of = result_of
        self.requirement_of_nodeid = requirement_of_nodeid
        self.active = False
        self.pending: dict[str, set[str]] = {}
        self.printed: set[str] = set()
        self.held: dict[str, list[str]] = defaultdict(list)
        self.open_category: str | None = None
        self.header: str = ""
        self._headed: set[str] = set()
        self._results: dict[str, dict[str, Any]] = {}
        #: On a terminal, a status line ("running CONC-2 ...") rewritten in place until the
        #: next requirement line replaces it.
        self._status = False
        self._total = 0

    # -- taking over, once the checks are known ----------------------------------------------
    @property
    def reporter(self) -> Any:
        return self.config.pluginmanager.getplugin("terminalreporter")

    def expect(self, nodeids: list[str]) -> None:
        """The checks this run will run (by node id): take over pytest's output if any is one
        of the kit's."""
        if self.active:
            return
        for nodeid in nodeids:
            req_id = self.requirement_of_nodeid(nodeid)
            if req_id is not None:
                self.pending.setdefault(req_id, set()).add(nodeid)
        if not self.pending or self.reporter is None:
            return
        self.active = True
        self._total = len(self.pending)
        option = self.config.option
        option.verbose = -1  # no file paths, no header, no check names
        option.tbstyle = "no"  # no FAILURES section: failures are shown under their line
        tr = self.reporter
        tr.showfspath = False
        tr.reportchars = ""  # no "short test summary info"
        tr.summary_stats = lambda: None  # the count line is this view's
        if self.header:
            # On a terminal, over whatever was rewritten in place (xdist's "bringing up nodes").
            self._status = bool(tr.isatty)
            self._clear_status()
            tr.write_line(self.header)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.expect([item.nodeid for item in session.items])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.expect(list(ids))

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(
        self, report: pytest.TestReport, config: pytest.Config
    ) -> tuple[str, str, str] | None:
        """No progress letter or word for a check: its requirement's line says it."""
        if not self.active or not any(k == "requirement" for k, _ in report.user_properties):
            return None
        if report.when == "call" or not report.passed:
            category = "error" if report.failed and report.when != "call" else report.outcome
            return category, "", ""
        return "", "", ""

    # -- lines, as requirements end --------------------------------------------------------------
    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        """On a terminal, say which requirement is being checked (a checked requirement's
        line replaces it); nothing in a log."""
        tr = self.reporter
        req_id = self.requirement_of_nodeid(nodeid)
        if not self.active or not tr.isatty or req_id is None:
            return
        done = len(self.printed)
        tr.rewrite(f"  ... checking {req_id} ({done} of {self._total} done)", erase=True)
        self._status = True

    def _clear_status(self) -> None:
        if self._status:
            self.reporter.rewrite("", erase=True)
            self.reporter._tw.write("\r")
            self._status = False

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not self.active or report.when != "teardown":
            return
        req_id = self.requirement_of_nodeid(report.nodeid)
        if req_id is None or req_id not in self.pending:
            return
        self.pending[req_id].discard(report.nodeid)
        if not self.pending[req_id]:
            self._done(req_id)

    def _done(self, req_id: str) -> None:
        result = self.result_of(req_id)
        if result is None or req_id in self.printed:
            return
        self.printed.add(req_id)
        category = BY_ID[req_id].category
        self.held[category].append(req_id)
        if self.open_category is None:
            self.open_category = category
        if category == self.open_category:
            self._flush(category)
        if self._category_done(self.open_category):
            self._next_category()

    def _category_done(self, category: str) -> bool:
        return all(not nodes for r, nodes in self.pending.items() if BY_ID[r].category == category)

    def _next_category(self) -> None:
        """The open category is done: open one whose lines are held, done ones first."""
        self.open_category = None
        waiting = [c for c in CATEGORIES if self.held.get(c)]
        waiting.sort(key=lambda c: not self._category_done(c))
        for category in waiting:
            self.open_category = category
            self._flush(category)
            if not self._category_done(category):
                return
            self.open_category = None

    def _flush(self, category: str) -> None:
        ids = self.held.pop(category, [])
        if not ids:
            return
        tr = self.reporter
        self._clear_status()
        if category not in self._headed:
            self._headed.add(category)
            tr.write_line("")
            tr.write_line(category, bold=True)
        for req_id in ids:
            result = self.result_of(req_id)
            assert result is not None
            self.write_requirement(req_id, *result)

    def write_requirement(
        self, req_id: str, outcome: str, detail: str, blocked_by: str | None
    ) -> None:
        tr = self.reporter
        req = BY_ID[req_id]
        shown = verdict(outcome, req.level, self.strict)
        mark, markup = MARKS[shown]
        head = f"  {mark:<{MARK_WIDTH}} {req.id:<8} {req.level:<6} "
        title = req.title
        width = tr._tw.fullwidth if tr.isatty else 0
        if width and len(head) + len(title) > width:
            title = title[: max(10, width - len(head) - 1)] + "…"
        tr.write(f"  {mark:<{MARK_WIDTH}}", **markup)
        tr.write_line(head[2 + MARK_WIDTH :] + title)
        for line in self.detail_lines(req_id, shown, detail, blocked_by):
            tr.write_line(INDENT + line)

    def detail_lines(
        self, req_id: str, shown: str, detail: str, blocked_by: str | None
    ) -> list[str]:
        """What goes under a requirement's line: a failure's evidence, a reason otherwise."""
        if shown == "passed" or not detail:
            return []
        lines = detail.splitlines()
        if shown in ("failed", "warning", "kit-error"):
            # The first line repeats "[ID LEVEL] title", which the mark's line already says.
            if lines and lines[0].startswith(f"[{req_id} "):
                lines = lines[1:]
            body = [line[2:] if line.startswith("  ") else line for line in lines]
            if shown == "warning":
                body.insert(0, "a SHOULD: this fails the run only with --strict")
            return body
        reason = " ".join(line.strip() for line in lines)
        if shown == "blocked" and blocked_by and "blocked by" not in reason:
            reason = f"blocked by {blocked_by}: {reason}"
        if len(reason) > REASON_LIMIT:
            reason = reason[: REASON_LIMIT - 1] + "…"
        return [reason]

    # -- the end -----------------------------------------------------------------------------
    def finish(self, doc: dict[str, Any], notes: list[str], seconds: float) -> None:
        """Every requirement not shown yet (not run, or held), the notes, the count line."""
        tr = self.reporter
        self._clear_status()
        for category in CATEGORIES:
            for r in doc["requirements"]:
                if r["category"] == category and r["id"] not in self.printed:
                    self.printed.add(r["id"])
                    self.held[category].append(r["id"])
        self._results = {r["id"]: r for r in doc["requirements"]}
        self.result_of = self._from_doc
        for category in CATEGORIES:
            self._flush(category)
        errors = [
            rep
            for rep in tr.stats.get("error", [])
            if not any(k == "requirement" for k, _ in getattr(rep, "user_properties", []))
        ]
        for rep in errors:  # a collection error of the kit: never hidden
            tr.write_line("")
            tr.write_line(f"error: {getattr(rep, 'longreprtext', rep)}", red=True)
        # "not judged: ID: why" repeats what the requirement's own line says.
        for line in (n for n in notes if not n.startswith("not judged: ")):
            tr.write_line(line)
        failed = any(
            verdict(r["outcome"], r["level"], self.strict) == "failed" for r in doc["requirements"]
        )
        markup = {"red": True} if failed else {"green": True}
        tr.write_line(count_line(doc, seconds), bold=True, **markup)

    def _from_doc(self, req_id: str) -> tuple[str, str, str | None] | None:
        r = self._results.get(req_id)
        return None if r is None else (r["outcome"], r["detail"], r.get("blocked_by"))


def requirement_of_nodeid(checks: Callable[[], dict[str, str]]) -> Callable[[str], str | None]:
    """nodeid -> requirement ID, from the package's "test_module.py::test_name" table."""

    def lookup(nodeid: str) -> str | None:
        key = _PARAMS.sub("", nodeid.rsplit("/", 1)[-1])
        return checks().get(key)

    return lookup
