"""Make the README's pictures of the HTML report: a zombie-leaking and a serial server.

    python -m tests.reports.screenshots [OUT_DIR]      (default: docs/img)

Runs the kit (profile quick) on the zoo's Python `no_reap` and `serial` servers, writes each
run's HTML page, and takes a screenshot of the page's top and of its first failure with its
pictures in headless chromium (tests/reports/reports.py: render). Needs chromium and
Playwright, like tests/reports/test_html_browser.py.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.conftest import ROOT
from tests.reports.reports import render, run

SERVERS = {"zombies": "no_reap", "serial": "serial"}


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for picture, name in SERVERS.items():
        with tempfile.TemporaryDirectory() as scratch:
            # As a user would type it, from the repository's top (the kit runs there).
            command = f"python3 -S tests/servers/py/{name}.py --port {{port}}"
            result = run(Path(scratch), "--server-cmd", command, "--profile", "quick")
            seen = render(result.html, out / f"report-{picture}.png")
            if seen["errors"]:
                sys.exit(f"{name}: console errors: {seen['errors']}")
            print(f"{out / f'report-{picture}.png'}: {seen['verdict']}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "img")
