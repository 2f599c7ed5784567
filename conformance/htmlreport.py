"""One self-contained HTML page from the JSON report: the page a validator sends a server's
authors, and a student would rather look at than read.

The verdict, the score, the model, a table of every requirement, each failure in full, and
pictures where people would rather look than read: the server's child processes, zombies,
descriptors and threads over the sessions a check ran (a leak is a line that climbs, a pool
one that levels off), and for a failure where a reply never came, which client waited and for
how long. The pictures are inline SVG drawn from what the report recorded (`samples`,
`waits`), so the page needs no script, no network and no other file: it can be mailed,
attached to a CI run, or opened years later.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from conformance.terminal import MARKS, verdict

#: One colour per measured series, and the order of the legend.
SERIES: dict[str, tuple[str, str]] = {
    "children": ("#1f77b4", "child processes"),
    "zombies": ("#d62728", "zombies"),
    "fds": ("#2ca02c", "descriptors"),
    "threads": ("#9467bd", "threads"),
}
#: Series drawn per requirement: one per check that ran sessions, at most this many.
CHARTS_PER_REQUIREMENT = 2
#: Outcome -> CSS class of its mark.
CSS_CLASS = {
    "passed": "ok",
    "failed": "fail",
    "warning": "warn",
    "blocked": "blocked",
    "kit-error": "error",
    "skipped": "skip",
    "not-applicable": "na",
}

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1100px;
       padding: 1em 1.5em 3em; color: #222; }
h1 { font-size: 1.5em; margin: .3em 0; }
h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.verdict { display: inline-block; padding: .2em .7em; border-radius: 4px; color: #fff;
           font-weight: bold; }
.verdict.v-pass { background: #2e7d32; } .verdict.v-fail { background: #c62828; }
.verdict.v-error { background: #6a1b9a; } .verdict.v-refused { background: #555; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: .1em 1em; }
dl.facts dt { color: #666; } dl.facts dd { margin: 0; font-family: monospace; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .25em .5em; border-bottom: 1px solid #eee;
         vertical-align: top; }
td.id { font-family: monospace; white-space: nowrap; }
.mark { font-family: monospace; font-weight: bold; white-space: nowrap; }
.ok { color: #2e7d32; } .fail { color: #c62828; } .warn { color: #b26a00; }
.blocked { color: #8d6e00; } .error { color: #6a1b9a; } .skip, .na { color: #777; }
pre { background: #f6f6f6; padding: .7em; overflow-x: auto; font-size: 13px;
      white-space: pre-wrap; }
.failure { border-left: 4px solid #c62828; padding-left: 1em; margin: 1.2em 0; }
.failure.is-warn { border-color: #b26a00; } .failure.is-error { border-color: #6a1b9a; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: .5em 0; } figcaption { color: #555; font-size: 13px; }
svg text { font: 11px system-ui, sans-serif; fill: #444; }
.categories span { margin-right: 1em; white-space: nowrap; }
"""


def render(doc: dict[str, Any]) -> str:
    """The whole page, as one string."""
    strict = bool(doc.get("strict"))
    reqs: list[dict[str, Any]] = doc["requirements"]
    target = doc.get("target") or {}
    where = str(target.get("command") or target.get("address") or "")
    title = f"tcp-conformance: {where}" if where else "tcp-conformance"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        _summary(doc, strict),
        _categories(doc),
        _table(reqs, strict),
        _failures(reqs, strict),
        _measures(reqs, strict),
        _notes(doc),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def write(doc: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(doc), encoding="utf-8")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _verdict(doc: dict[str, Any], strict: bool) -> tuple[str, str]:
    """(CSS class, words) of the run's verdict, as its exit status says it."""
    if doc.get("refusal"):
        return "refused", "NOT RUN: the kit could not run"
    shown = [verdict(r["outcome"], r["level"], strict) for r in doc["requirements"]]
    if "failed" in shown:
        return "fail", "FAILED: a requirement is not met"
    if "kit-error" in shown:
        return "error", "UNKNOWN: the kit failed on a requirement"
    if "warning" in shown:
        return "pass", "PASSED, with warnings (a SHOULD not met)"
    return "pass", "PASSED: every requirement checked is met"


def _summary(doc: dict[str, Any], strict: bool) -> str:
    css, words = _verdict(doc, strict)
    facts = [
        ("score", f"{doc['score']:g} / {doc['max_score']:g}"),
        ("model", doc.get("model")),
        ("protocol", doc.get("protocol")),
        ("profile", doc.get("profile")),
        ("seed", doc.get("seed")),
        ("strict", "yes" if strict else "no"),
        ("started", doc.get("started_at")),
        ("duration", f"{float(doc.get('duration_s') or 0):.1f} s"),
        ("kit", doc.get("kit_version")),
    ]
    env = doc.get("environment") or {}
    if env:
        facts.append(("environment", ", ".join(f"{k} {v}" for k, v in env.items())))
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts if v is not None)
    out = f'<p><span class="verdict v-{css}" id="verdict">{_e(words)}</span></p>'
    out += f'<dl class="facts" id="facts">{rows}</dl>'
    refusal = doc.get("refusal")
    if refusal:
        out += f"<pre>{_e(refusal['kind'])}: {_e(refusal['message'])}"
        if refusal.get("fix"):
            out += f"\nfix: {_e(refusal['fix'])}"
        out += "</pre>"
    return out


def _categories(doc: dict[str, Any]) -> str:
    cats = doc.get("categories") or {}
    spans = " ".join(
        f'<span class="{CSS_CLASS.get(o, "skip")}">{_e(c)}: {_e(o)}</span>' for c, o in cats.items()
    )
    return f'<p class="categories">{spans}</p>' if spans else ""


def _mark(shown: str) -> str:
    return f'<span class="mark {CSS_CLASS[shown]}">{_e(MARKS[shown][0])}</span>'


def _table(reqs: list[dict[str, Any]], strict: bool) -> str:
    rows = []
    for r in reqs:
        shown = verdict(r["outcome"], r["level"], strict)
        rid = _e(r["id"])
        name = f'<a href="#{rid}">{rid}</a>' if shown in ("failed", "warning", "kit-error") else rid
        note = ""
        if shown not in ("passed", "failed", "warning", "kit-error") and r.get("detail"):
            note = f'<br><small class="{CSS_CLASS[shown]}">{_e(_first(r["detail"]))}</small>'
        rows.append(
            f'<tr data-requirement="{rid}" data-outcome="{_e(shown)}"><td>{_mark(shown)}</td>'
            f'<td class="id">{name}</td><td>{_e(r["level"])}</td><td>{_e(r["category"])}</td>'
            f"<td>{_e(r['title'])}{note}</td></tr>"
        )
    head = "<tr><th></th><th>ID</th><th>level</th><th>category</th><th>requirement</th></tr>"
    return f'<h2>Requirements</h2><table id="requirements">{head}{"".join(rows)}</table>'


def _first(text: str, limit: int = 240) -> str:
    line = " ".join(part.strip() for part in text.splitlines())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _failures(reqs: list[dict[str, Any]], strict: bool) -> str:
    blocks = []
    for r in reqs:
        shown = verdict(r["outcome"], r["level"], strict)
        if shown not in ("failed", "warning", "kit-error"):
            continue
        note = (
            "<p>A SHOULD: this fails the run only with <code>--strict</code>.</p>"
            if shown == "warning"
            else ""
        )
        blocks.append(
            f'<section class="failure is-{CSS_CLASS[shown]}" id="{_e(r["id"])}">'
            f"<h3>{_mark(shown)} {_e(r['id'])} {_e(r['level'])}: {_e(r['title'])}</h3>{note}"
            f"<pre>{_e(r['detail'])}</pre>{_charts(r)}</section>"
        )
    if not blocks:
        return ""
    return "<h2>Failures</h2>" + "".join(blocks)


def _measures(reqs: list[dict[str, Any]], strict: bool) -> str:
    """The pictures of requirements that did not fail: what a correct server looks like."""
    figures = []
    for r in reqs:
        shown = verdict(r["outcome"], r["level"], strict)
        if shown in ("failed", "warning", "kit-error") or not r.get("samples"):
            continue
        figures.append(
            f'<section id="measured-{_e(r["id"])}"><h3>{_mark(shown)} {_e(r["id"])}: '
            f"{_e(r['title'])}</h3>{_charts(r)}</section>"
        )
    if not figures:
        return ""
    return "<h2>What the checks measured</h2>" + "".join(figures)


def _charts(r: dict[str, Any]) -> str:
    figures = [
        _samples_chart(r["id"], series)
        for series in (r.get("samples") or [])[:CHARTS_PER_REQUIREMENT]
        if len(series) >= 2
    ]
    if r.get("waits"):
        figures.append(_waits_chart(r["id"], r["waits"]))
    return f'<div class="charts">{"".join(figures)}</div>' if figures else ""


# -- pictures ---------------------------------------------------------------------------------
W, H = 520, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 130, 14, 36


def _samples_chart(req_id: str, samples: list[dict[str, int]]) -> str:
    """A line per measured count over the sessions the check ran."""
    xs = [s["session"] for s in samples]
    x0, x1 = min(xs), max(xs)
    top = max(1, *(s[k] for s in samples for k in SERIES))
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM

    def x(v: float) -> float:
        return LEFT + (v - x0) / max(1, x1 - x0) * plot_w

    def y(v: float) -> float:
        return TOP + plot_h - v / top * plot_h

    out = [
        f'<svg class="chart samples" data-requirement="{_e(req_id)}" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" role="img" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_e(req_id)}: the server's counts after each session</title>",
        _axes(plot_w, plot_h, top, x0, x1, "sessions"),
    ]
    for i, (key, (colour, label)) in enumerate(SERIES.items()):
        points = " ".join(f"{x(s['session']):.1f},{y(s[key]):.1f}" for s in samples)
        last = samples[-1][key]
        out.append(
            f'<polyline class="series {key}" data-last="{last}" points="{points}" fill="none" '
            f'stroke="{colour}" stroke-width="2"><title>{_e(label)}: '
            f"{', '.join(str(s[key]) for s in samples)}</title></polyline>"
        )
        ly = TOP + 14 + i * 18
        out.append(
            f'<line x1="{W - RIGHT + 10}" y1="{ly - 4}" x2="{W - RIGHT + 26}" y2="{ly - 4}" '
            f'stroke="{colour}" stroke-width="3"/>'
            f'<text x="{W - RIGHT + 30}" y="{ly}">{_e(label)} ({last})</text>'
        )
    out.append("</svg>")
    caption = (
        f"Counted after each of sessions {x0}..{x1}: a line that climbs is a leak; a pool "
        "levels off."
    )
    return f"<figure>{''.join(out)}<figcaption>{_e(caption)}</figcaption></figure>"


def _axes(plot_w: float, plot_h: float, top: float, x0: float, x1: float, unit: str) -> str:
    bottom = TOP + plot_h
    return (
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="#999"/>'
        f'<line x1="{LEFT}" y1="{bottom}" x2="{LEFT + plot_w}" y2="{bottom}" stroke="#999"/>'
        f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">{top:g}</text>'
        f'<text x="{LEFT - 6}" y="{bottom + 4}" text-anchor="end">0</text>'
        f'<text x="{LEFT}" y="{bottom + 16}" text-anchor="middle">{x0:g}</text>'
        f'<text x="{LEFT + plot_w}" y="{bottom + 16}" text-anchor="middle">{x1:g}</text>'
        f'<text x="{LEFT + plot_w / 2}" y="{bottom + 30}" text-anchor="middle">{_e(unit)}</text>'
    )


def _waits_chart(req_id: str, waits: list[dict[str, Any]]) -> str:
    """A bar per client: how long it waited for its reply (CONC-3: its connection); red
    where it did not come within its limit."""
    limit = max(float(w["limit_s"]) for w in waits)
    longest = max(limit, *(float(w["waited_s"]) for w in waits))
    bar, gap, label_w = 16, 4, 110
    plot_w = W - label_w - 120
    height = TOP + len(waits) * (bar + gap) + 30
    out = [
        f'<svg class="chart waits" data-requirement="{_e(req_id)}" width="{W}" '
        f'height="{height}" viewBox="0 0 {W} {height}" role="img" '
        'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_e(req_id)}: how long each client waited for its reply</title>",
    ]
    for i, w in enumerate(waits):
        yy = TOP + i * (bar + gap)
        width = max(1.0, float(w["waited_s"]) / longest * plot_w)
        colour = "#2e7d32" if w["answered"] else "#c62828"
        said = "in time" if w["answered"] else "not in time"
        out.append(
            f'<text x="{label_w - 6}" y="{yy + bar - 4}" text-anchor="end">{_e(w["client"])}</text>'
            f'<rect class="wait {"answered" if w["answered"] else "unanswered"}" '
            f'data-client="{_e(w["client"])}" x="{label_w}" y="{yy}" width="{width:.1f}" '
            f'height="{bar}" fill="{colour}"><title>{_e(w["client"])}: waited '
            f"{float(w['waited_s']):.3f} s, {said}</title></rect>"
            f'<text x="{label_w + width + 4:.1f}" y="{yy + bar - 4}">'
            f"{float(w['waited_s']):.2f} s{'' if w['answered'] else ', ' + said}</text>"
        )
    lx = label_w + limit / longest * plot_w
    bottom = TOP + len(waits) * (bar + gap)
    out.append(
        f'<line class="limit" x1="{lx:.1f}" y1="{TOP - 4}" x2="{lx:.1f}" y2="{bottom}" '
        f'stroke="#555" stroke-dasharray="4 3"/>'
        f'<text x="{lx:.1f}" y="{bottom + 14}" text-anchor="middle">limit {limit:g} s</text>'
        "</svg>"
    )
    caption = (
        "How long each client waited for its reply (or its connection); red: not within its limit."
    )
    return f"<figure>{''.join(out)}<figcaption>{_e(caption)}</figcaption></figure>"


def _notes(doc: dict[str, Any]) -> str:
    items = [f"<li>{_e(n)}</li>" for n in doc.get("notes") or []]
    items += [
        f"<li>excluded {_e(x['id'])}: {_e(x['reason'])}</li>" for x in doc.get("excluded") or []
    ]
    if doc.get("interrupted"):
        items.insert(0, "<li>the run was interrupted before every check ran</li>")
    return f'<h2>Notes</h2><ul id="notes">{"".join(items)}</ul>' if items else ""
