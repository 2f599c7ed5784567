"""The kit on real, unmodified servers (issue 16): Apache httpd (prefork), gunicorn (sync
workers), nginx, redis-server, Python's http.server, socat and tcpserver.

Each runs with the launch command of examples/real-servers/servers.toml, at the quick profile,
and must get the verdict recorded there (what failed, was blocked, was not judged); every
other requirement passes or is not-applicable. docs/real-servers.md explains each verdict
from the server's documentation or source; its table must agree with servers.toml, and so
must the commands in examples/real-servers/README.md. A server not installed here is skipped
with the reason (`.ci/run` installs them). The servers run with --full-matrix (CI's second
step); the tables' agreement is checked by every run.
"""

from __future__ import annotations

import importlib.util
import re
import shlex

import pytest

from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location(
    "real_server_verdicts", ROOT / "examples" / "real-servers" / "verdicts.py"
)
assert _spec is not None and _spec.loader is not None
verdicts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(verdicts)
SERVERS = verdicts.SERVERS

DOCS = ROOT / "docs" / "real-servers.md"
README = ROOT / "examples" / "real-servers" / "README.md"


@pytest.mark.slow
@pytest.mark.full_matrix
@pytest.mark.parametrize("name", list(SERVERS))
def test_real_server_gets_its_recorded_verdict(name: str) -> None:
    server = SERVERS[name]
    if gone := verdicts.missing(server):
        pytest.skip(f"{name}: {', '.join(gone)} not installed (.ci/run installs it)")
    got = verdicts.verdict(server, "quick")
    assert got == verdicts.expected(server)


def _table_rows() -> dict[str, str]:
    rows = {}
    for line in DOCS.read_text().splitlines():
        m = re.match(r"\| `(?P<name>[\w-]+)` \|", line)
        if m:
            rows[m["name"]] = line
    return rows


def test_docs_table_agrees_with_the_manifest() -> None:
    rows = _table_rows()
    assert set(rows) == set(SERVERS)
    for name, row in rows.items():
        cells = [c.strip() for c in row.strip("|").split("|")]
        failed = set(re.findall(r"[A-Z]+-\d", cells[2]))
        blocked = set(re.findall(r"[A-Z]+-\d", cells[3]))
        not_judged = set(re.findall(r"[A-Z]+-\d", cells[4]))
        assert failed == set(SERVERS[name].get("failed", [])), name
        assert blocked == set(SERVERS[name].get("blocked", [])), name
        assert not_judged == set(SERVERS[name].get("skipped", [])), name


def test_readme_gives_each_servers_command() -> None:
    text = README.read_text()
    for name, server in SERVERS.items():
        assert f"# {name}: {server['design']}\n" in text, name
        assert shlex.quote(server["command"]) in text, name
