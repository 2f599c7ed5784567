"""What autograders read: Gradescope's `results.json` and Autolab's autoresult line.

Both are derived from the kit's JSON report (the one stable interface), never from pytest
directly, so a grade and the report it came from cannot disagree. When there is no report
(the build failed, the server never listened, the submission was stopped), `unrun_report`
makes one in which every counted requirement scores zero with the reason as its detail, so
the student still sees every rule and the maximum is the same as everybody else's. Such a
detail starts with NOT_JUDGED, and a student reads it alone: not the requirement's "why it
matters", which explains a failure of that rule, and this is not one.

Points that are whole numbers are written as integers (`3`, not `3.0`), as the README shows
them: a grade book or an autograder that compares them as text must not see two spellings.

Gradescope's format: https://gradescope-autograders.readthedocs.io/en/latest/specs/ — a
top-level `score`, `execution_time`, `output` and `tests`, each test with `name`, `number`,
`score`, `max_score`, `status` (passed/failed), `output` and `visibility`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from conformance import __version__, protocols, report
from conformance.grade.config import GradingConfig
from conformance.report import EARNING, summary_lines
from conformance.spec import BY_ID, CATEGORIES, select

HIDDEN_DETAIL = "The details of this check are hidden by the instructor."
#: How the detail of a requirement the kit never judged begins (the build failed, the server
#: never listened, the run was stopped): the reason follows.
NOT_JUDGED = "not judged: "
#: The grader's sandbox wrapper in a quoted command line: noise to a student, who wrote the
#: part after `--`.
_SANDBOX_PREFIX = re.compile(r"\S*python\S* -m conformance\.grade\.sandbox .*?-- ")


def without_sandbox(text: str) -> str:
    """A command line as the student wrote it: the grader's sandbox wrapper taken out."""
    return _SANDBOX_PREFIX.sub("", text)


def unrun_report(
    config: GradingConfig,
    reason: str,
    duration_s: float = 0.0,
    patterns: list[str] | None = None,
) -> dict[str, object]:
    """A report for a submission the suite could not run against: zero, with the reason.

    `patterns` are the run's --requirement selection, so the maximum matches a real report's.
    """
    requirements = []
    adapter = protocols.get(config.protocol)  # the grader configured it (batch._check_adapter)
    for req in select(patterns):
        counted = req.id not in config.excluded and protocols.inapplicable(req, adapter) is None
        worth = config.points_of(req) if counted else 0
        requirements.append(
            {
                "id": req.id,
                "category": req.category,
                "level": req.level,
                "title": req.title,
                "outcome": "failed" if counted else "not-applicable",
                "detail": NOT_JUDGED + reason if counted else "not counted in this assignment",
                "duration_s": 0.0,
                "score": 0,
                "max_score": whole(worth),
            }
        )
    return {
        "kit_version": __version__,
        "environment": report.environment(),
        "started_at": "",
        "duration_s": round(duration_s, 3),
        "target": {"mode": "launch", "command": config.run or "", "port": config.port},
        "protocol": config.protocol,
        "profile": config.profile,
        "seed": config.seed,
        "model": "unknown",
        "strict": False,
        "score": 0,
        "max_score": whole(sum(r["max_score"] for r in requirements)),  # type: ignore[misc]
        "categories": dict.fromkeys(CATEGORIES, "failed"),
        "requirements": requirements,
        "excluded": [{"id": k, "reason": v} for k, v in config.excluded.items()],
        "serialised": [],
        "notes": [],
    }


def gradescope(
    doc: dict[str, object],
    config: GradingConfig,
    notes: list[str] | None = None,
    execution_time: float | None = None,
) -> dict[str, object]:
    """Gradescope's results.json for one submission."""
    tests = []
    for r in counted(doc):
        hidden = r["id"] in config.hidden_details and r["outcome"] not in EARNING
        tests.append(
            {
                "name": f"{r['id']} {r['title']}",
                "number": r["id"],
                "score": whole(r["score"]),
                "max_score": whole(r["max_score"]),
                "status": "passed" if r["outcome"] in EARNING else "failed",
                "output": HIDDEN_DETAIL if hidden else without_sandbox(test_output(r)),
                "visibility": config.visibility_for(str(r["id"])),
            }
        )
    lines = [*(notes or []), *summary_lines(doc)]
    return {
        "score": whole(doc["score"]),
        "execution_time": round(
            execution_time if execution_time is not None else float(str(doc["duration_s"])), 3
        ),
        "output": without_sandbox("\n".join(lines)),
        "visibility": config.visibility,
        "tests": tests,
    }


def test_output(r: dict[str, object]) -> str:
    req = BY_ID.get(str(r["id"]))
    if r["outcome"] == "passed":
        return "passed"
    if r["outcome"] == "not-applicable":
        return f"full points: {r['detail']}"
    if str(r["detail"]).startswith(NOT_JUDGED):
        return str(r["detail"])  # nothing of this rule failed: its "why it matters" is beside it
    why = f"\nWhy it matters: {req.why}" if req else ""
    return f"{r['outcome']}: {r['detail']}{why}"


def autolab(doc: dict[str, object]) -> str:
    """Autolab's autoresult: one JSON line, the last line of the grader's output."""
    scores = {r["id"]: whole(r["score"]) for r in counted(doc)}
    return json.dumps({"scores": scores}, separators=(",", ":"))


def whole(value: object) -> object:
    """3.0 as 3: points are written as the instructor wrote them, integers when they are."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def with_whole_scores(doc: dict[str, object]) -> dict[str, object]:
    """The report with every score and maximum that is a whole number written as an integer."""
    requirements = [
        {**r, "score": whole(r["score"]), "max_score": whole(r["max_score"])}
        for r in doc["requirements"]  # type: ignore[attr-defined]
    ]
    return {
        **doc,
        "score": whole(doc["score"]),
        "max_score": whole(doc["max_score"]),
        "requirements": requirements,
    }


def counted(doc: dict[str, object]) -> list[dict[str, object]]:
    """The report's requirements that are part of the assignment: not excluded, and for its
    protocol profile (SHOULDs worth 0 stay: their verdict is still feedback)."""
    excluded = {e["id"] for e in doc["excluded"]}  # type: ignore[attr-defined]
    return [
        r
        for r in doc["requirements"]  # type: ignore[attr-defined]
        if r["id"] not in excluded
        and (r["id"] not in BY_ID or doc["protocol"] in BY_ID[r["id"]].protocols)
    ]


def write_json(data: dict[str, object], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
