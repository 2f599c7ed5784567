"""A check passes only on a server that lived through it (conformance/harness/deaths.py).

Every check ends through the same hook, so one stand-in check per requirement, which kills
the server the kit launched for it and then returns as a pass would, proves the rule for
every requirement at once: no pass for a server that died during its check; a death by
SIGPIPE blocks the check by EXIT-3 (and fails EXIT-2 and EXIT-3, whose business it is); a
crash fails the check it happened in, saying so. The real checks meet real deaths in the
zoo (reap_once_accept_fatal, tests/servers/fixed/tut_thread_tutorial.c).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conformance import protocols
from conformance.harness.deaths import SIGPIPE_OWNERS, SIGPIPE_RULE, STOPPING
from conformance.spec import REQUIREMENTS

REFERENCES = Path(__file__).resolve().parents[2] / "reference_servers"

#: Requirements the stand-in checks cover: all but the ones whose checks stop the server
#: on purpose, and those the `ok` profile rules out.
COVERED = [
    r.id
    for r in REQUIREMENTS
    if r.id not in STOPPING and protocols.inapplicable(r, protocols.get("ok")) is None
]
#: The fork reference with SIGPIPE's default action back (Python ignores it at startup).
SERVER = """
import runpy, signal, sys
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
sys.argv = [sys.argv[1], *sys.argv[2:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""

CHECKS = """
import os, signal, time
from conformance.marks import requirement

def _kill(server, sig):
    os.kill(server.process.pid, sig)
    deadline = time.monotonic() + 5
    while server.alive() and time.monotonic() < deadline:
        time.sleep(0.01)
""" + "".join(
    f"""
@requirement({req_id!r})
def test_{req_id.replace("-", "_")}(server):
    _kill(server, signal.{{sig}})
"""
    for req_id in COVERED
)


def _verdicts(pytester: pytest.Pytester, sig: str) -> dict[str, dict[str, str]]:
    pytester.makepyfile(test_dies=CHECKS.replace("{sig}", sig))
    server = pytester.path / "server.py"
    server.write_text(SERVER)
    command = (
        f"{sys.executable} {server} {REFERENCES / 'fork_server.py'} --host 127.0.0.1 "
        "--port {port} --log-level WARNING"
    )
    report = pytester.path / "report.json"
    pytester.runpytest_subprocess(
        "test_dies.py",
        "--conformance-server-cmd",
        command,
        "--conformance-profile",
        "quick",
        "--conformance-json-report",
        str(report),
    )
    doc = json.loads(report.read_text())
    return {r["id"]: r for r in doc["requirements"] if r["id"] in COVERED}


def test_no_check_passes_on_a_server_that_crashed_during_it(pytester: pytest.Pytester) -> None:
    verdicts = _verdicts(pytester, "SIGSEGV")
    wrong = {i: r["outcome"] for i, r in verdicts.items() if r["outcome"] != "failed"}
    assert not wrong, wrong
    for req_id, r in verdicts.items():
        assert "the server died during it" in r["detail"], (req_id, r["detail"])
        assert "SIGSEGV" in r["detail"], (req_id, r["detail"])


def test_a_death_by_sigpipe_is_exit3s_and_blocks_the_others(pytester: pytest.Pytester) -> None:
    verdicts = _verdicts(pytester, "SIGPIPE")
    for req_id, r in verdicts.items():
        if req_id in SIGPIPE_OWNERS:
            assert r["outcome"] == "failed", (req_id, r)
            assert "SIGPIPE" in r["detail"], (req_id, r["detail"])
        else:
            assert (r["outcome"], r.get("blocked_by")) == ("blocked", SIGPIPE_RULE), (req_id, r)
            assert "SIG_IGN" in r["detail"], (req_id, r["detail"])
