"""The class summary: a CSV for the grade book and a Markdown page for the instructor.

The CSV has one row per student and one column per requirement (its score), so it opens in a
spreadsheet and joins a roster by name. The Markdown page answers the two questions a class
raises: what did each student get (the distribution and the table), and which rule did the
class get wrong most (the pass rate of every requirement, worst first). A pass rate counts
only the students to whom the requirement applied: not-applicable is neither pass nor fail.
"""

from __future__ import annotations

import csv
import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from conformance.grade.autograders import counted
from conformance.spec import BY_ID


@dataclass(frozen=True, slots=True)
class Graded:
    name: str
    doc: dict[str, object]
    notes: tuple[str, ...]


#: In every output directory of `conformance grade`: the class's name and its submission
#: folders, so `conformance grade-merge` can write the summary one machine would have.
CLASS_FILE = "class.json"


def title_of(class_name: str) -> str:
    return f"Class summary: {class_name}"


def write_class(out_dir: Path, class_name: str, names: list[str], shard: str) -> None:
    """What a merge needs beyond the reports: the class's name (the summary's title) and
    every submission folder (to list those no shard has graded yet)."""
    doc = {"class": class_name, "submissions": names, "shard": shard}
    (out_dir / CLASS_FILE).write_text(json.dumps(doc, indent=2) + "\n")


def write(out_dir: Path, names: list[str], class_name: str) -> tuple[list[Graded], list[str]]:
    """summary.csv and summary.md of out_dir for these students (in this order): the one
    place both files are written, so a merge of shards and one machine's grading write the
    same bytes from the same reports."""
    graded, missing = collect(out_dir, names)
    write_csv(graded, out_dir / "summary.csv")
    (out_dir / "summary.md").write_text(markdown(graded, missing, title_of(class_name)))
    return graded, missing


def collect(out_dir: Path, names: list[str]) -> tuple[list[Graded], list[str]]:
    """The reports in out_dir for these students, and the names that have none yet."""
    graded, missing = [], []
    for name in names:
        report, meta = out_dir / name / "report.json", out_dir / name / "grade.json"
        if not report.exists():
            missing.append(name)
            continue
        notes = json.loads(meta.read_text()).get("notes", []) if meta.exists() else []
        graded.append(Graded(name, json.loads(report.read_text()), tuple(notes)))
    return graded, missing


def _ids(graded: list[Graded]) -> list[str]:
    ids: list[str] = []
    for g in graded:
        for r in counted(g.doc):
            if r["id"] not in ids:
                ids.append(str(r["id"]))
    return ids


def write_csv(graded: list[Graded], path: Path) -> None:
    ids = _ids(graded)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "score", "max_score", "model", *ids, "notes"])
        for g in graded:
            scores = {r["id"]: r["score"] for r in counted(g.doc)}
            writer.writerow(
                [
                    g.name,
                    _num(g.doc["score"]),
                    _num(g.doc["max_score"]),
                    g.doc["model"],
                    *(_num(scores.get(i, "")) for i in ids),
                    " | ".join(n.splitlines()[0] for n in g.notes),
                ]
            )


def _num(value: object) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def pass_rates(graded: list[Graded]) -> list[tuple[str, int, int, int]]:
    """(ID, passed, applicable, not-applicable) per requirement, worst pass rate first."""
    rows = []
    for req_id in _ids(graded):
        outcomes = [r["outcome"] for g in graded for r in counted(g.doc) if r["id"] == req_id]
        applicable = [o for o in outcomes if o != "not-applicable"]
        passed = sum(o == "passed" for o in applicable)
        rows.append((req_id, passed, len(applicable), len(outcomes) - len(applicable)))
    return sorted(rows, key=lambda row: (row[1] / row[2] if row[2] else 2.0, row[0]))


def histogram(percents: list[float], buckets: int = 10) -> list[str]:
    counts = [0] * buckets
    for p in percents:
        counts[min(buckets - 1, int(p * buckets / 100))] += 1
    width = 100 // buckets
    lines = []
    for i in reversed(range(buckets)):
        low, high = i * width, 100 if i == buckets - 1 else (i + 1) * width - 1
        lines.append(f"{low:>3}-{high:<3}% | {'#' * counts[i]} {counts[i] or ''}".rstrip())
    return lines


def markdown(graded: list[Graded], missing: list[str], title: str) -> str:
    percents = [
        100.0 * cast(float, g.doc["score"]) / cast(float, g.doc["max_score"])
        if g.doc["max_score"]
        else 0.0
        for g in graded
    ]
    lines = [f"# {title}", ""]
    if not graded:
        return "\n".join([*lines, "No submission has been graded yet.", ""])
    first = graded[0].doc
    lines += [
        f"{len(graded)} submissions graded (protocol `{first['protocol']}`, profile "
        f"`{first['profile']}`, seed {first['seed']}, kit {first['kit_version']}).",
    ]
    if missing:
        lines.append(f"Not graded yet: {', '.join(missing)}.")
    lines += [
        "",
        "## Score distribution",
        "",
        f"Mean {statistics.mean(percents):.0f}%, median {statistics.median(percents):.0f}%, "
        f"min {min(percents):.0f}%, max {max(percents):.0f}%.",
        "",
        "```",
        *histogram(percents),
        "```",
        "",
        "## Pass rate per requirement, worst first",
        "",
        "| requirement | level | passed | pass rate | n/a | title |",
        "|---|---|---|---|---|---|",
    ]
    for req_id, passed, applicable, na in pass_rates(graded):
        req = BY_ID.get(req_id)
        rate = f"{100 * passed / applicable:.0f}%" if applicable else "-"
        title_text = req.title if req else ""
        level = req.level if req else ""
        lines.append(
            f"| {req_id} | {level} | {passed}/{applicable} | {rate} | {na} | {title_text} |"
        )
    lines += [
        "",
        "## Students",
        "",
        "| student | score | model | failed | notes |",
        "|---|---|---|---|---|",
    ]
    for g in graded:
        mine = counted(g.doc)
        failed = [str(r["id"]) for r in mine if r["outcome"] in ("failed", "skipped")]
        failed_text = "all" if failed and len(failed) == len(mine) else ", ".join(failed) or "-"
        notes = "; ".join(n.splitlines()[0] for n in g.notes).replace("|", "\\|")
        lines.append(
            f"| {g.name} | {_num(g.doc['score'])}/{_num(g.doc['max_score'])} | "
            f"{g.doc['model']} | {failed_text} | {notes or '-'} |"
        )
    return "\n".join(lines) + "\n"
