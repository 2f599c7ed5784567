"""`conformance compare`: servers side by side, the right mark in every cell.

From synthetic reports (every outcome, a requirement one report lacks, bad input), and from
real runs: the four references and three zoo servers, each on the requirements the zoo
servers are built to break (and PROTO-1), at the quick profile.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conformance import compare
from tests.conftest import ROOT, kit
from tests.reports.reports import Page
from tests.reports.test_junit import synthetic


def write(tmp_path: Path, name: str, doc: dict) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_a_row_per_requirement_a_column_per_server(tmp_path: Path) -> None:
    a = synthetic()
    b = synthetic(strict=True)
    b["requirements"] = [r for r in b["requirements"] if r["id"] != "EINTR-3"]
    result = kit("compare", write(tmp_path, "a", a), f"strict={write(tmp_path, 'b', b)}")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line.split()[2:] for line in result.stdout.splitlines()[3:]}
    assert result.stdout.splitlines()[0].split() == ["a", "strict"]
    assert lines["PROTO-1"] == ["FAIL", "FAIL"]
    assert lines["EXIT-5"] == ["WARN", "FAIL"]  # a SHOULD: a failure only under --strict
    assert lines["CONC-1"] == ["BLOCKED", "BLOCKED"]
    assert lines["ZOMB-1"] == ["n/a", "n/a"]
    assert lines["FDL-1"] == ["ERROR", "ERROR"]
    assert lines["EINTR-3"] == ["skip", "-"]  # not in b's run
    assert lines["PROTO-2"] == ["ok", "ok"]


def test_markdown_and_html_say_the_same(tmp_path: Path) -> None:
    a = write(tmp_path, "a", synthetic())
    md = kit("compare", "--md", a, "--html", str(tmp_path / "out" / "index.html"))
    assert md.returncode == 0, md.stderr
    assert "| requirement | level | a |" in md.stdout
    assert "| EXIT-5 | SHOULD | WARN |" in md.stdout
    page = Page((tmp_path / "out" / "index.html").read_text())
    (cell,) = page.find("td", data_server="a", data_outcome="warning")
    assert page.find("a", href="a.html")  # the column links to the server's own page
    assert page.find("a", href="a.html#PROTO-1")  # a failure links to its text there
    assert "FAILED" in (tmp_path / "out" / "a.html").read_text()
    assert cell["class"] == "mark warn"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.json"], "not a readable conformance report"),
        (["x=a.json", "x=a.json"], "two reports are labelled x"),
    ],
)
def test_bad_input_is_a_usage_error(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "a.json").write_text(json.dumps(synthetic()))
    result = kit("compare", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr


#: The zoo servers compared with the references, and what each fails of REQUIREMENTS.
ZOO = {"serial": "CONC-1", "no_reap": "ZOMB-1", "fd_leak": "FDL-1"}
REQUIREMENTS = ["PROTO-1", "CONC-1", "ZOMB-1", "FDL-1"]


@pytest.mark.full_matrix
def test_the_references_and_three_zoo_servers(tmp_path: Path) -> None:
    reports = []
    select = [arg for r in REQUIREMENTS for arg in ("--requirement", r)]
    for name in ("fork", "thread", "select", "pool", *ZOO):
        where = (
            [
                "--server-cmd",
                f"{sys.executable} -S {ROOT}/tests/servers/py/{name}.py --port {{port}}",
            ]
            if name in ZOO
            else ["--server", name]
        )
        out = tmp_path / f"{name}.json"
        run = kit("run", *where, "--profile", "quick", *select, "--json-report", str(out))
        assert run.returncode == (1 if name in ZOO else 0), run.stdout[-3000:]
        reports.append(str(out))
    table = compare.load(reports)
    for column in table:
        for req_id in REQUIREMENTS:
            broken = ZOO.get(column.label) == req_id
            fork_only = req_id == "ZOMB-1" and column.doc["model"] != "fork"
            want = "FAIL" if broken else "n/a" if fork_only else "ok"
            assert column.mark(req_id) == want, (column.label, req_id)
    text = kit("compare", *reports).stdout
    assert text.splitlines()[0].split() == ["fork", "thread", "select", "pool", *ZOO]
