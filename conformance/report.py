"""Verdicts per requirement and category, the JSON report, the summary table, the exit code.

The JSON report is a stable interface (graders and CI read it); its schema is
conformance/report.schema.json, which the kit's tests check every report against. Outcomes
are `passed`, `failed`, `blocked`, `kit-error`, `skipped` and `not-applicable`. A category is
failed if a requirement in it failed, then kit-error or blocked if one was, passed if one
passed, otherwise not-applicable (all were) or skipped. A failed SHOULD makes its category
fail only under --strict; it is always listed as failed in `requirements`.

`blocked` means the check could not judge its requirement because another requirement's
failure stopped it (`blocked_by` names that one: a server that never answers blocks the
zombie check, which needs whole sessions); `kit-error` means the kit itself failed there.

Scores: every requirement carries `score` and `max_score`, and so does the report. A passed
requirement earns its points; a not-applicable one earns them too (a thread server cannot
break a rule about fork children, and every student's maximum must be the same for a grade
book); failed, blocked, kit-error and skipped earn none: a blocked requirement was not shown
to hold, and its `blocked_by` says which failure to fix first. An excluded requirement counts
for nothing (0 of 0), and so does one for the other protocol profile, or one that needs a
server the kit launched in a run against an address: the assignment or the mode chose it,
not the student.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pytest

from conformance import __version__, protocols
from conformance.errors import Refusal
from conformance.spec import CATEGORIES, REQUIREMENTS, Requirement

OUTCOMES = ("passed", "failed", "blocked", "kit-error", "skipped", "not-applicable")
#: Outcomes that earn a requirement's points.
EARNING = ("passed", "not-applicable")


def score_of(outcome: str, points: float, counted: bool) -> tuple[float, float]:
    """(score, max_score) of one requirement; see the module docstring for why."""
    if not counted:
        return 0, 0
    return (points if outcome in EARNING else 0), points


@dataclass
class Result:
    """What happened to one requirement's check(s) across their phases."""

    req_id: str
    outcome: str = "passed"
    detail: str = ""
    duration_s: float = 0.0
    seen: bool = False
    #: The requirement whose failure kept this one from being judged (outcome "blocked").
    blocked_by: str | None = None
    #: Stacks of the server's threads its failure names (harness/stacks.py), innermost first.
    stacks: list[object] = field(default_factory=list)
    #: Where the server calls listen() (harness/callsites.py): CONC-3's backlog, on no stack.
    call_sites: list[object] = field(default_factory=list)
    #: The server's counts after each session its checks ran (Server.sample), per check.
    samples: list[list[object]] = field(default_factory=list)
    #: How long each client waited for a reply in a failed check (Transcript.waited).
    waits: list[object] = field(default_factory=list)

    def add(self, report: pytest.TestReport, props: dict[str, str]) -> None:
        self.duration_s += report.duration
        if props.get("samples"):
            self.samples.append(json.loads(props["samples"]))
        if props.get("waits"):
            self.waits += json.loads(props["waits"])
        if report.failed and props.get("stacks"):
            self.stacks += json.loads(props["stacks"])
        if report.failed and props.get("call_sites"):
            self.call_sites += json.loads(props["call_sites"])
        if report.passed:
            if report.when == "call" and not self.seen:
                self.seen = True
            return
        self.seen = True
        if report.failed:
            kit = bool(props.get("kit_error"))
            if not kit or self.outcome != "failed":
                self.outcome = "kit-error" if kit else "failed"
            text = _longrepr_text(report)
            if report.when != "call":
                text = f"error during {report.when}: {text}"
            self.detail = f"{self.detail}\n{text}".strip() if self.detail else text
        elif report.skipped and self.outcome not in ("failed", "kit-error"):
            if props.get("blocked_by"):
                self.outcome, self.blocked_by = "blocked", props["blocked_by"]
            else:
                self.outcome = "not-applicable" if props.get("not_applicable") else "skipped"
            self.detail = _skip_reason(report)


def _longrepr_text(report: pytest.TestReport) -> str:
    return str(report.longrepr) if report.longrepr is not None else ""


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
    else:
        reason = str(longrepr)
    reason = reason.removeprefix("Skipped: ")
    for kind in ("NotApplicable", "Blocked"):  # the class name tells a student nothing
        reason = reason.removeprefix(f"conformance.marks.{kind}: ")
    return reason


def category_outcome(outcomes: list[str]) -> str:
    """failed > kit-error > blocked > passed > not-applicable > skipped: a category reads
    passed only when nothing in it failed or could not be judged."""
    for worst in ("failed", "kit-error", "blocked", "passed"):
        if worst in outcomes:
            return worst
    if outcomes and all(o == "not-applicable" for o in outcomes):
        return "not-applicable"
    return "skipped"


def environment() -> dict[str, str]:
    """What a run's verdicts may depend on besides the server and the kit: the interpreter,
    pytest, Hypothesis (a seed replays the same scenarios only with the same Hypothesis
    version), psutil, and the kernel (the harness reads /proc and sock_diag)."""
    import platform
    from importlib import metadata

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "python": platform.python_version(),
        "pytest": version("pytest"),
        "hypothesis": version("hypothesis"),
        "psutil": version("psutil"),
        "kernel": f"{platform.system()} {platform.release()}",
    }


def build(
    *,
    results: dict[str, Result],
    selected: list[Requirement],
    target: dict[str, object],
    protocol: str,
    profile: str,
    seed: int,
    model: str,
    started_at: str,
    duration_s: float,
    excluded: dict[str, str],
    serialised: list[str],
    strict: bool,
    points: dict[str, float] | None = None,
    notes: list[str] | None = None,
    interrupted: bool = False,
    largest_output: int = 0,
    start_wait_s: float = 0.0,
    start_timeout: float = 5.0,
) -> dict[str, object]:
    requirements = []
    total, most = 0.0, 0.0
    adapter = protocols.get(protocol)
    for req in selected:
        result = results.get(req.id)
        blocked_by = None
        found_stacks: list[object] = []
        measured: dict[str, object] = {}
        if result is None:
            outcome, duration = "skipped", 0.0
            detail = NOT_RUN_INTERRUPTED if interrupted else NOT_RUN_DESELECTED
        else:
            outcome, detail, duration = result.outcome, result.detail, result.duration_s
            blocked_by = result.blocked_by
            if outcome == "failed" and result.stacks:
                found_stacks = result.stacks
            if outcome == "failed" and result.call_sites:
                measured["call_sites"] = result.call_sites
            if result.samples:
                measured["samples"] = result.samples
            if result.waits:
                measured["waits"] = result.waits
        worth = (points or {}).get(req.id, req.default_points)
        # Left out of the maximum when the assignment or the mode rules it out, not the
        # server: excluded, for the other profile, or needing a launched server (it
        # signals or traces it) while the run checks one at an address.
        mode_rules_out = req.launch_only and target.get("mode") == "address"
        protocol_rules_out = protocols.inapplicable(req, adapter) is not None
        counted = req.id not in excluded and not protocol_rules_out and not mode_rules_out
        score, max_score = (_number(x) for x in score_of(outcome, worth, counted))
        total, most = total + score, most + max_score
        entry: dict[str, object] = {
            "id": req.id,
            "category": req.category,
            "level": req.level,
            "title": req.title,
            "outcome": outcome,
            "detail": detail,
            "duration_s": round(duration, 3),
            "score": score,
            "max_score": max_score,
        }
        if blocked_by:
            entry["blocked_by"] = blocked_by
        if found_stacks:
            entry["stacks"] = found_stacks
        entry.update(measured)
        requirements.append(entry)
    categories = {}
    for category in CATEGORIES:
        judged = [
            str(r["outcome"])
            if (r["level"] == "MUST" or strict or r["outcome"] != "failed")
            else "passed"
            for r in requirements
            if r["category"] == category
        ]
        categories[category] = category_outcome(judged)
    return {
        "kit_version": __version__,
        "environment": environment(),
        "started_at": started_at,
        "duration_s": round(duration_s, 3),
        "target": target,
        "protocol": adapter.name,
        "profile": profile,
        "seed": seed,
        "model": model,
        "strict": strict,
        "score": _number(total),
        "max_score": _number(most),
        "interrupted": interrupted,
        "categories": categories,
        "requirements": requirements,
        "excluded": [{"id": k, "reason": v} for k, v in excluded.items()],
        "serialised": serialised,
        "notes": list(dict.fromkeys(notes or [])),
        "largest_output_bytes": largest_output,
        "start_wait_s": round(start_wait_s, 3),
        "start_timeout_s": start_timeout,
    }


#: Below this many seconds waited for starts in a run, the summary does not mention them
#: (the JSON report always has them): a fast server costs under a second in all at -n 0,
#: one or two seconds added up over xdist workers on a loaded machine.
START_WAIT_SHOWN = 5.0

#: Why a selected requirement has no verdict when its check never ran.
NOT_RUN_INTERRUPTED = "not judged: the run was interrupted (Ctrl-C or SIGTERM) before this check"
NOT_RUN_DESELECTED = "not judged: its check was not run (deselected with -k?)"


def _number(value: float) -> float | int:
    """Points as the README shows them: 23, not 23.0 (2.5 stays 2.5)."""
    return int(value) if float(value).is_integer() else value


#: Exit status when the kit itself failed on a requirement it could not then judge.
KIT_ERROR_EXIT = 3


def refused(
    refusal: Refusal,
    *,
    selected: list[Requirement] | None = None,
    target: dict[str, object] | None = None,
    protocol: str = "ok",
    profile: str = "default",
    seed: int = 0,
    started_at: str = "",
) -> dict[str, object]:
    """The report of a run the kit refused (no server, port in use, bad input): nothing
    judged, every requirement says why, and `refusal` holds the record front ends read."""
    doc = build(
        results={},
        selected=selected if selected is not None else list(REQUIREMENTS),
        target=target or {"mode": "launch", "port": None},
        protocol=protocol,
        profile=profile,
        seed=seed,
        model="unknown",
        started_at=started_at,
        duration_s=0.0,
        excluded={},
        serialised=[],
        strict=False,
    )
    for r in cast(list[dict[str, object]], doc["requirements"]):
        r["detail"] = f"not judged: the kit could not run ({refusal.kind}): see refusal"
    doc["refusal"] = refusal.record()
    return doc


def exit_code(doc: dict[str, object]) -> int:
    """1 when a MUST failed (or a SHOULD under --strict); else 3 when the kit itself failed
    on a requirement (its verdict is unknown); else 0."""
    strict = bool(doc["strict"])
    reqs = cast("list[dict[str, str]]", doc["requirements"])
    for r in reqs:
        if r["outcome"] == "failed" and (r["level"] == "MUST" or strict):
            return 1
    if any(r["outcome"] == "kit-error" for r in reqs):
        return KIT_ERROR_EXIT
    return 0


def write(doc: dict[str, object], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)


def summary_lines(doc: dict[str, object]) -> list[str]:
    """One row per category: outcome and the IDs that failed (or why it did not apply)."""
    reqs = cast("list[dict[str, str]]", doc["requirements"])
    lines = [f"{'category':<12} {'outcome':<15} requirements"]
    for category, outcome in cast("dict[str, str]", doc["categories"]).items():
        mine = [r for r in reqs if r["category"] == category]
        failing = [f"{r['id']} ({r['level']})" for r in mine if r["outcome"] == "failed"]
        blocked = [f"{r['id']} blocked by {r['blocked_by']}" for r in mine if r.get("blocked_by")]
        if failing:
            note = "failed: " + ", ".join(failing + blocked)
        elif blocked:
            note = ", ".join(blocked)
        else:
            note = ", ".join(f"{r['id']} {r['outcome']}" for r in mine) or "-"
        lines.append(f"{category:<12} {outcome:<15} {note}")
    counts = {o: sum(r["outcome"] == o for r in reqs) for o in OUTCOMES}
    tally = ", ".join(f"{n} {o}" for o, n in counts.items() if n)
    if doc.get("interrupted"):
        lines.append("INTERRUPTED: the run was stopped before every check ran")
    lines.append(
        f"model: {doc['model']} | protocol: {doc['protocol']} | profile: {doc['profile']} | "
        f"seed: {doc['seed']} | {tally} | score {doc['score']:g}/{doc['max_score']:g}"
    )
    return lines + note_lines(doc)


def note_lines(doc: dict[str, object]) -> list[str]:
    """What a reader should know besides the verdicts: requirements not judged and why, the
    kit's notes, time spent waiting for starts, checks kept on one worker."""
    reqs = cast("list[dict[str, str]]", doc["requirements"])
    lines = []
    for r in reqs:
        if r["outcome"] == "skipped" and r["detail"] and r["detail"] != NOT_RUN_INTERRUPTED:
            why = r["detail"].splitlines()[0].removeprefix("not judged: ")
            lines.append(f"not judged: {r['id']}: {why}")
    for note in cast("list[str]", doc.get("notes") or []):
        lines.append(f"note: {note}")
    waited = cast("float", doc.get("start_wait_s") or 0.0)
    if waited >= START_WAIT_SHOWN:
        lines.append(
            f"waited {waited:.1f} s in all for launched servers to listen (of "
            f"{doc['duration_s']:.1f} s; --start-timeout {doc.get('start_timeout_s', 5):g} s)"
        )
    if doc.get("serialised"):
        lines.append(
            "kept on one xdist worker (they need a quiet server): "
            + ", ".join(cast("list[str]", doc["serialised"]))
        )
    return lines
