"""Helpers for the report tests: one kit run per zoo server, every output of it kept.

A failing run is run once and read many ways (terminal, JSON, JUnit, HTML), so each
category costs one kit run, not one per output.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import psutil
import xmlschema

from conformance.harness.polling import wait_until
from tests.conftest import ROOT, kit
from tests.servers import zoo

SCHEMA = json.loads((ROOT / "conformance" / "report.schema.json").read_text())
XUNIT2 = xmlschema.XMLSchema(str(Path(__file__).with_name("xunit2.xsd")))

#: One Python zoo server per category (no compiler needed), each run on its own category
#: only, at the quick profile: what its defect breaks, and nothing else to wait for.
BY_CATEGORY: dict[str, str] = {
    "protocol": "python-wrong_reply-ok",
    "concurrency": "python-serial-ok",
    "exit": "python-exit_no_close-ok",
    "zombies": "python-no_reap-ok",
    "fd-child": "python-child_keeps_listener-ok",
    "fd-parent": "python-parent_keeps_conn-ok",
    "fd-leak": "python-fd_leak-ok",
    "eintr": "python-winch_stops-ok",
    "isolation": "python-shared_buffer-echo",
}
#: The categories whose run is in the fast tier (the README's command); the rest run with
#: --full-matrix. One of each kind of picture: sessions (zombies), waits (concurrency).
FAST = ("protocol", "concurrency", "zombies")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    doc: dict
    junit: Path
    html: Path


def run(tmp_path: Path, *args: str, env: dict[str, str | None] | None = None) -> Run:
    """`conformance run ARGS` writing every report into tmp_path; the JSON one validated."""
    out = {name: tmp_path / name for name in ("report.json", "junit.xml", "report.html")}
    result = kit(
        "run",
        *args,
        "--json-report",
        str(out["report.json"]),
        "--junit-xml",
        str(out["junit.xml"]),
        "--html",
        str(out["report.html"]),
        env=env,
    )
    doc = json.loads(out["report.json"].read_text())
    jsonschema.validate(doc, SCHEMA)
    return Run(
        result.returncode, result.stdout, result.stderr, doc, out["junit.xml"], out["report.html"]
    )


def run_zoo(tmp_path: Path, category: str, *extra: str) -> Run:
    server = zoo.find(BY_CATEGORY[category])
    args = ["--server-cmd", zoo.command(server, tmp_path), "--protocol", server.protocol]
    return run(tmp_path, *args, "--profile", "quick", "--requirement", category, *extra)


# -- the HTML page ----------------------------------------------------------------------------
class Page(HTMLParser):
    """What the report tests read of an HTML page: every element's tag and attributes, in
    order, and its text (no browser needed; test_html_browser.py renders it for real)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        """Elements with this tag whose attributes contain these (class: one of its words)."""

        def matches(have: dict[str, str]) -> bool:
            for key, want in attrs.items():
                key = key.rstrip("_")
                if key == "class":
                    if not set(want.split()) <= set(have.get("class", "").split()):
                        return False
                elif have.get(key.replace("_", "-")) != want:
                    return False
            return True

        return [a for t, a in self.elements if t == tag and matches(a)]


def chromium() -> str | None:
    """Debian's chromium, which Playwright drives (its own browser download is not needed)."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def render(html: Path, screenshot: Path | None = None) -> dict:
    """Open the page in headless chromium; return its console errors, the verdict and what
    its pictures drew; with `screenshot`, a picture of the whole page there."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    before = {p.pid for p in psutil.Process().children()}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(html.as_uri())
            drawn = page.evaluate(
                """() => [...document.querySelectorAll('svg.chart')].map(svg => ({
                    kind: svg.classList.contains('waits') ? 'waits' : 'samples',
                    requirement: svg.dataset.requirement,
                    width: svg.getBoundingClientRect().width,
                    height: svg.getBoundingClientRect().height,
                    lines: [...svg.querySelectorAll('polyline')].map(l => ({
                        series: l.classList[1], points: l.points.numberOfItems,
                        last: Number(l.dataset.last), length: l.getTotalLength()})),
                    bars: [...svg.querySelectorAll('rect.wait')].map(r => ({
                        answered: r.classList.contains('answered'),
                        width: r.getBBox().width})),
                }))"""
            )
            verdict = page.inner_text("#verdict")
            if screenshot is not None:
                # Down to the end of the first failure (with its pictures), when there is one.
                box = page.locator("section.failure").first.bounding_box() if drawn else None
                clip = {"x": 0, "y": 0, "width": 1100, "height": box["y"] + box["height"] + 16}
                page.screenshot(
                    path=str(screenshot),
                    full_page=True,
                    clip=clip if box else None,
                    **({"type": "jpeg", "quality": 80} if screenshot.suffix == ".jpg" else {}),
                )
        finally:
            browser.close()
    _reap_browser(before)
    return {"errors": errors, "charts": drawn, "verdict": verdict}


def _reap_browser(before: set[int]) -> None:
    """Chromium's helpers (crashpad, the zygote) are orphaned when it exits, and this test
    process is a subreaper (conftest.py), so they end as its zombie children: reap them, as
    the kit reaps a server's orphans."""

    def reaped() -> bool:
        left = [p for p in psutil.Process().children() if p.pid not in before]
        for proc in left:
            with contextlib.suppress(psutil.Error, ChildProcessError):
                if proc.status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(proc.pid, 0)
        return not [p for p in psutil.Process().children() if p.pid not in before]

    wait_until(reaped, 10)
