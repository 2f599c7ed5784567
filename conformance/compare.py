"""`conformance compare`: one table across implementations, from their JSON reports.

Autobahn's testsuite index in the kit's terms: a row per requirement, a column per server, the
same mark in each cell as the terminal shows (`ok`, `FAIL`, `WARN`, `BLOCKED`, `ERROR`, `skip`,
`n/a`), and above them each server's model and score. Plain text by default, `--md` for a
README or a CI job summary, `--html PATH` for a page that links each server to its own page
(written beside it, htmlreport.py) and each failure to its text there.

A CI matrix runs `conformance run --json-report NAME.json` once per implementation, collects
the reports, and runs this once (docs/ci.md). Reports from different runs may have selected
different requirements: a requirement a report does not have is shown as `-`.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance import htmlreport
from conformance.errors import USAGE_EXIT
from conformance.spec import REQUIREMENTS
from conformance.terminal import MARKS, verdict

#: A cell for a requirement the report does not have (not selected in that run).
ABSENT = "-"


@dataclass(frozen=True)
class Column:
    """One server: its label (the column's head) and its report."""

    label: str
    doc: dict[str, Any]

    def mark(self, req_id: str) -> str:
        shown = self.shown(req_id)
        return ABSENT if shown is None else MARKS[shown][0]

    def shown(self, req_id: str) -> str | None:
        for r in self.doc["requirements"]:
            if r["id"] == req_id:
                return verdict(r["outcome"], r["level"], bool(self.doc.get("strict")))
        return None

    @property
    def score(self) -> str:
        if self.doc.get("refusal"):
            return "not run"
        return f"{self.doc['score']:g}/{self.doc['max_score']:g}"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="one table of several servers' JSON reports: requirements x servers",
        description="A row per requirement, a column per server (from `conformance run "
        "--json-report` files), the same marks as the terminal: ok, FAIL, WARN (a SHOULD "
        "not met), BLOCKED, ERROR (the kit's), skip, n/a; '-' where a report lacks the "
        "requirement.",
        epilog="exit statuses: 0 the table was written, 2 a report could not be read",
    )
    p.add_argument(
        "reports",
        nargs="+",
        metavar="[LABEL=]REPORT.json",
        help="a JSON report; the column is LABEL, else the file's name without .json",
    )
    p.add_argument("--md", action="store_true", help="print a Markdown table instead of text")
    p.add_argument(
        "--html",
        metavar="PATH",
        help="also write an HTML page of the table here, with each server's own page beside "
        "it (LABEL.html), linked from its column",
    )


def load(specs: list[str]) -> list[Column]:
    """The columns, in the order given; ValueError saying which report is unreadable."""
    columns = []
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep:
            label, path = Path(spec).stem, spec
        try:
            doc = json.loads(Path(path).read_text())
            if not isinstance(doc.get("requirements"), list):  # a report, not any JSON
                raise ValueError("it has no requirements")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a readable conformance report ({exc})") from None
        columns.append(Column(label, doc))
    labels = [c.label for c in columns]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise ValueError(f"two reports are labelled {', '.join(dupes)}: give LABEL=REPORT.json")
    return columns


def rows(columns: list[Column]) -> list[str]:
    """The requirement IDs in spec order: every one some report has."""
    present = {r["id"] for c in columns for r in c.doc["requirements"]}
    return [r.id for r in REQUIREMENTS if r.id in present]


def text(columns: list[Column]) -> str:
    ids = rows(columns)
    widths = [max(len(c.label), len(c.score), len(c.doc.get("model", "")), 7) for c in columns]
    first = max(len("requirement"), *(len(i) + 7 for i in ids), 8 + 1 + len("SHOULD"))

    def line(head: str, cells: list[str]) -> str:
        return (
            f"{head:<{first}}  " + "  ".join(f"{c:<{w}}" for c, w in zip(cells, widths))
        ).rstrip()

    out = [
        line("", [c.label for c in columns]),
        line("model", [str(c.doc.get("model", "")) for c in columns]),
        line("score", [c.score for c in columns]),
    ]
    levels = {r.id: r.level for r in REQUIREMENTS}
    for req_id in ids:
        out.append(line(f"{req_id:<8} {levels[req_id]}", [c.mark(req_id) for c in columns]))
    return "\n".join(out) + "\n"


def markdown(columns: list[Column]) -> str:
    titles = {r.id: r for r in REQUIREMENTS}
    out = [
        "| requirement | level | " + " | ".join(c.label for c in columns) + " |",
        "|---|---|" + "---|" * len(columns),
        "| model | | " + " | ".join(str(c.doc.get("model", "")) for c in columns) + " |",
        "| score | | " + " | ".join(c.score for c in columns) + " |",
    ]
    for req_id in rows(columns):
        req = titles[req_id]
        cells = " | ".join(c.mark(req_id) for c in columns)
        out.append(f"| {req_id} | {req.level} | {cells} |")
    return "\n".join(out) + "\n"


def write_html(columns: list[Column], path: Path) -> None:
    """The table as a page, and each server's own page beside it (LABEL.html)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    e = html.escape
    titles = {r.id: r for r in REQUIREMENTS}
    pages = {}
    for c in columns:
        page = path.parent / f"{_file_name(c.label)}.html"
        if page.resolve() == path.resolve():
            page = path.parent / f"{_file_name(c.label)}-report.html"
        htmlreport.write(c.doc, page)
        pages[c.label] = page.name
    head = "".join(
        f'<th><a href="{e(pages[c.label])}">{e(c.label)}</a><br>'
        f"<small>{e(str(c.doc.get('model', '')))}<br>{e(c.score)}</small></th>"
        for c in columns
    )
    body = []
    for req_id in rows(columns):
        req = titles[req_id]
        cells = []
        for c in columns:
            shown = c.shown(req_id)
            if shown is None:
                cells.append(f"<td>{ABSENT}</td>")
                continue
            mark = e(MARKS[shown][0])
            css = htmlreport.CSS_CLASS[shown]
            if shown in ("failed", "warning", "kit-error"):
                mark = f'<a href="{e(pages[c.label])}#{e(req_id)}">{mark}</a>'
            cells.append(
                f'<td class="mark {css}" data-server="{e(c.label)}" data-outcome="{e(shown)}">'
                f"{mark}</td>"
            )
        body.append(
            f'<tr data-requirement="{e(req_id)}"><td class="id" title="{e(req.title)}">'
            f"{e(req_id)}</td><td>{e(req.level)}</td>{''.join(cells)}</tr>"
        )
    index = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>tcp-conformance: {len(columns)} servers</title>"
        f"<style>{htmlreport.STYLE} td.mark {{ text-align: center; }}</style></head><body>"
        f"<h1>tcp-conformance: {len(columns)} servers</h1>"
        '<table id="compare"><tr><th>requirement</th><th>level</th>'
        f"{head}</tr>{''.join(body)}</table></body></html>\n"
    )
    path.write_text(index, encoding="utf-8")


def _file_name(label: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label) or "server"


def main(ns: argparse.Namespace) -> int:
    try:
        columns = load(ns.reports)
    except ValueError as exc:
        print(f"conformance compare: {exc}", file=sys.stderr)
        return USAGE_EXIT
    sys.stdout.write(markdown(columns) if ns.md else text(columns))
    if ns.html:
        write_html(columns, Path(ns.html))
    return 0
