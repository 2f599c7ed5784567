"""Grading: scores, the config, Gradescope and Autolab output, batch grading and the sandbox.

The batch tests grade a few folders of the sample class (examples/class) against two or three
requirements each, so they cost seconds, not the minutes of the whole suite. The hostile ones
(a fork bomb, a log flood, a build that hangs) must end with a zero, a note that says why, and
nothing left running: the guard in conftest.py fails the test otherwise.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import sys
from pathlib import Path

import jsonschema
import pytest

from conformance.grade import autograders
from conformance.grade import config as gradeconfig
from conformance.grade.batch import discover, parse_shard, shard_of
from conformance.grade.summary import Graded, pass_rates
from conformance.spec import REQUIREMENTS
from tests.conftest import ROOT, kit
from tests.protocols.test_adapters import NetstringAdapter

CLASS = ROOT / "examples" / "class"
SCHEMA = json.loads((ROOT / "conformance" / "report.schema.json").read_text())
#: Gradescope's results.json, as documented at
#: https://gradescope-autograders.readthedocs.io/en/latest/specs/
GRADESCOPE_SCHEMA = {
    "type": "object",
    "required": ["score", "execution_time", "output", "tests"],
    "properties": {
        "score": {"type": "number"},
        "execution_time": {"type": "number"},
        "output": {"type": "string"},
        "visibility": {"enum": ["visible", "hidden", "after_due_date", "after_published"]},
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "score", "max_score", "status", "output", "visibility"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "number": {"type": "string"},
                    "score": {"type": "number"},
                    "max_score": {"type": "number"},
                    "status": {"enum": ["passed", "failed"]},
                    "output": {"type": "string"},
                    "visibility": {
                        "enum": ["visible", "hidden", "after_due_date", "after_published"]
                    },
                },
            },
        },
    },
}
needs_cc = pytest.mark.skipif(
    shutil.which("cc") is None or shutil.which("make") is None, reason="needs cc and make"
)
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the uid sandbox and netns need root")


def valid_report(path: Path) -> dict:
    doc = json.loads(path.read_text())
    jsonschema.validate(doc, SCHEMA)
    return doc


def valid_gradescope(path: Path) -> dict:
    doc = json.loads(path.read_text())
    jsonschema.validate(doc, GRADESCOPE_SCHEMA)
    return doc


# -- scores and outputs of one run ------------------------------------------------------------
def test_run_scores_and_writes_gradescope_and_autolab(tmp_path: Path) -> None:
    config = tmp_path / "grading.toml"
    config.write_text(
        '[points]\nMUST = 2\n"PROTO-3" = 5\n[exclude]\n"PROTO-2" = "covered by PROTO-1"\n'
        '[gradescope]\nvisibility = "after_published"\n'
    )
    out, gs = tmp_path / "r.json", tmp_path / "results.json"
    result = kit(
        "run", "--server", "thread", "--profile", "quick",
        "--requirement", "PROTO", "--requirement", "ZOMB-1",
        "--grading-config", str(config), "--json-report", str(out),
        "--gradescope", str(gs), "--autolab",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    doc = valid_report(out)
    scores = {r["id"]: (r["score"], r["max_score"]) for r in doc["requirements"]}
    # passed, excluded, for the other protocol, not-applicable to a thread server
    assert scores["PROTO-3"] == (5, 5)
    assert scores["PROTO-2"] == (0, 0)
    assert scores["PROTO-4"] == (0, 0)
    assert scores["ZOMB-1"] == (2, 2)
    assert (doc["score"], doc["max_score"]) == (9, 9)
    grades = valid_gradescope(gs)
    assert grades["score"] == 9
    assert [t["number"] for t in grades["tests"]] == ["PROTO-1", "PROTO-3", "ZOMB-1"]
    assert {t["visibility"] for t in grades["tests"]} == {"after_published"}
    last = result.stdout.rstrip("\n").splitlines()[-1]
    assert json.loads(last) == {"scores": {"PROTO-1": 2, "PROTO-3": 5, "ZOMB-1": 2}}


def test_a_failure_scores_zero_with_its_diagnostic(tmp_path: Path) -> None:
    gs = tmp_path / "results.json"
    server = f"{sys.executable} {ROOT / 'tests/servers/py/wrong_reply.py'} --port {{port}}"
    result = kit("run", "--server-cmd", server, "--requirement", "PROTO-3", "--gradescope", str(gs))
    assert result.returncode == 1
    (test,) = valid_gradescope(gs)["tests"]
    assert (test["score"], test["max_score"], test["status"]) == (0, 1, "failed")
    assert "Expected: exactly b'OK!!!' on A and nothing more" in test["output"]
    assert "Why it matters:" in test["output"]


def test_hidden_details_show_only_the_verdict() -> None:
    config = gradeconfig.parse('[gradescope]\nhide_details = ["PROTO"]\n')
    doc = autograders.unrun_report(config, "secret diagnostic", patterns=["PROTO-1", "CONC-1"])
    tests = {t["number"]: t for t in autograders.gradescope(doc, config)["tests"]}
    assert tests["PROTO-1"]["output"] == autograders.HIDDEN_DETAIL
    assert "secret diagnostic" in tests["CONC-1"]["output"]


def test_unrun_report_is_a_valid_report_worth_zero() -> None:
    doc = autograders.unrun_report(gradeconfig.DEFAULT, "the build failed")
    jsonschema.validate(doc, SCHEMA)
    expected = sum(r.default_points for r in REQUIREMENTS if "ok" in r.protocols)
    assert (doc["score"], doc["max_score"]) == (0, expected)


# -- the config -------------------------------------------------------------------------------
def test_points_resolve_most_specific_first() -> None:
    config = gradeconfig.parse('[points]\n"CONC-1" = 5\nconcurrency = 2\nMUST = 1\nSHOULD = 0.5\n')
    assert config.points["CONC-1"] == 5
    assert config.points["CONC-2"] == 2
    assert config.points["EXIT-1"] == 1
    assert config.points["EXIT-5"] == 0.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[assignment]\nrunn = 'x'\n", "unknown key [assignment] 'runn'"),
        ("[nope]\n", "unknown key 'nope'"),
        ("[assignment]\nprofile = 'fast'\n", "assignment.profile must be one of"),
        ("[assignment]\nrun = './server'\n", "has no {port}"),
        ("[assignment]\nport = 'x'\n", "assignment.port must be a int"),
        ("[points]\n'CONC-99' = 1\n", "matches no requirement"),
        ("[points]\nMUST = -1\n", "is negative"),
        ("[exclude]\n'EXIT-5' = ''\n", "has no reason"),
        ("[gradescope]\nvisibility = 'secret'\n", "must be one of visible, hidden"),
        ("[limits]\nnproc = 0\n", "limits.nproc must be positive"),
        ("[limits\n", "not valid TOML"),
        ("[assignment]\nprotocol = 'smtp'\n", "or module:ClassName"),
        ("[assignment]\nprotocol = 'a.b:C()'\n", "or module:ClassName"),
        ("[assignment]\nline_reply = 'OK'\n", "line_reply is an option of protocol 'line'"),
        (
            "[assignment]\nprotocol = 'line'\nline_reply = 'OK ('\n",
            "line_reply is not a regular expression",
        ),
        ("[assignment]\nprotocol = 'http'\nhttp_path = 'x'\n", "must start with /"),
        ("[assignment]\nstart_timeout = 0\n", "start_timeout must be positive"),
        ("[assignment]\nstart_timeout = 900\n", "start_timeout must be at most 600 s"),
    ],
)
def test_bad_config_is_one_clear_line(text: str, message: str) -> None:
    with pytest.raises(gradeconfig.ConfigError, match=None) as info:
        gradeconfig.parse(text, "g.toml")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_config_is_a_usage_error_of_grade(tmp_path: Path) -> None:
    (tmp_path / "subs" / "a").mkdir(parents=True)
    (tmp_path / "g.toml").write_text("[assignment]\nbulid = 'make'\n")
    result = kit("grade", str(tmp_path / "subs"), "--config", str(tmp_path / "g.toml"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"conformance grade: {tmp_path / 'g.toml'}: unknown key [assignment] 'bulid'; "
        "allowed: build, build_timeout, debug_info, http_path, line_reply, port, profile, "
        "protocol, run, seed, start_timeout, timeout"
    ]


def test_config_names_the_builtin_adapters_options() -> None:
    config = gradeconfig.parse("[assignment]\nprotocol = 'line'\nline_reply = 'OK .*'\n")
    assert (config.protocol, config.line_reply) == ("line", "OK .*")
    assert gradeconfig.parse("[assignment]\nprotocol = 'pkg.mod:Mine'\n").protocol == "pkg.mod:Mine"


#: A user's adapter beside grading.toml: the netstring adapter of tests/protocols/test_adapters.py.
ADAPTER_MODULE = (
    "from typing import ClassVar\n\nfrom hypothesis import strategies as st\n\n"
    "from conformance.protocols import ProtocolAdapter\n\n\n" + inspect.getsource(NetstringAdapter)
)
PROTO_SERVER = ROOT / "tests" / "servers" / "py" / "adapters" / "proto_server.py"


def _netstring_class(tmp_path: Path, module: str = ADAPTER_MODULE) -> Path:
    """Two students serving netstrings (bob's replies are not upper-cased) and a config whose
    protocol is an adapter module in the class directory."""
    subs = tmp_path / "class"
    for name, defect in (("alice", ""), ("bob", " --defect lowercase")):
        (subs / name / "adapters").mkdir(parents=True)
        shutil.copy(PROTO_SERVER, subs / name / "adapters")
        shutil.copy(PROTO_SERVER.parent.parent / "_common.py", subs / name)
        (subs / name / "run.sh").write_text(
            'exec python3 adapters/proto_server.py --port "$1" --protocol netstring '
            f"--model thread{defect}\n"
        )
    (subs / "netstring_adapter.py").write_text(module)
    (subs / "grading.toml").write_text(
        '[assignment]\nrun = "sh run.sh {port}"\nprotocol = "netstring_adapter:NetstringAdapter"'
        '\nprofile = "quick"\n'
    )
    return subs


@pytest.mark.slow
def test_a_config_names_its_own_adapter_beside_it(tmp_path: Path) -> None:
    subs = _netstring_class(tmp_path)
    picks = ["--requirement", "PROTO-6", "--requirement", "CONC-1"]
    reports = _grade(subs, tmp_path / "out", "-j", "2", *picks)
    outcomes = {
        n: {r["id"]: r["outcome"] for r in d["requirements"] if r["id"] in ("PROTO-6", "CONC-1")}
        for n, d in reports.items()
    }
    assert outcomes == {
        "alice": {"PROTO-6": "passed", "CONC-1": "passed"},
        "bob": {"PROTO-6": "failed", "CONC-1": "passed"},
    }
    assert {d["protocol"] for d in reports.values()} == {"netstring"}


def test_a_config_with_a_broken_adapter_is_a_usage_error_before_grading(tmp_path: Path) -> None:
    subs = _netstring_class(tmp_path, module="class NetstringAdapter:\n    pass\n")
    result = kit("grade", str(subs), "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "NetstringAdapter" in result.stderr and "ProtocolAdapter" in result.stderr
    assert not (tmp_path / "out" / "alice").exists()


# -- shards and the summary ----------------------------------------------------------------------
def test_shards_split_a_class_exactly_once() -> None:
    names = [f"s{i:02d}" for i in range(11)]
    shards = [shard_of(names, i, 3) for i in (1, 2, 3)]
    assert sorted(name for shard in shards for name in shard) == names
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    with pytest.raises(ValueError, match="write I/N"):
        parse_shard("4/3")


def test_only_submission_folders_are_graded(tmp_path: Path) -> None:
    for name in ("bob", "alice", ".git", "__pycache__", "__MACOSX", "grades"):
        (tmp_path / name).mkdir()
    (tmp_path / "grading.toml").write_text("")
    assert discover(tmp_path, tmp_path / "grades", []) == ["alice", "bob"]
    with pytest.raises(ValueError, match="no submission folder named carol"):
        discover(tmp_path, tmp_path / "grades", ["carol"])


def test_pass_rates_put_the_worst_first() -> None:
    def doc(outcomes: dict[str, str]) -> dict:
        reqs = [{"id": k, "outcome": v, "score": 0, "max_score": 1} for k, v in outcomes.items()]
        return {"requirements": reqs, "excluded": [], "protocol": "ok"}

    graded = [
        Graded("a", doc({"PROTO-1": "passed", "ZOMB-1": "failed", "CONC-1": "passed"}), ()),
        Graded("b", doc({"PROTO-1": "failed", "ZOMB-1": "not-applicable", "CONC-1": "passed"}), ()),
    ]
    assert pass_rates(graded) == [
        ("ZOMB-1", 0, 1, 1),
        ("PROTO-1", 1, 2, 0),
        ("CONC-1", 2, 2, 0),
    ]


# -- batch grading ------------------------------------------------------------------------------
def _class(tmp_path: Path, names: list[str], config: str | None = None) -> Path:
    subs = tmp_path / "class"
    for name in names:
        shutil.copytree(CLASS / name, subs / name)
    (subs / "grading.toml").write_text(config or (CLASS / "grading.toml").read_text())
    return subs


def _grade(subs: Path, out: Path, *args: str, timeout: float = 240) -> dict[str, dict]:
    result = kit("grade", str(subs), "--out", str(out), *args, timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return {
        p.parent.name: valid_report(p)
        | {"_meta": json.loads((p.parent / "grade.json").read_text())}
        for p in out.glob("*/report.json")
    }


@needs_cc
@pytest.mark.slow
@pytest.mark.full_matrix  # end to end in CI's second step; the README's command keeps the units
def test_parallel_grading_gives_the_same_scores_and_resumes(tmp_path: Path) -> None:
    subs = _class(tmp_path, ["alice", "dave", "ivan"])
    picks = ["--requirement", "PROTO-1", "--requirement", "PROTO-3", "--requirement", "ZOMB-1"]
    one = _grade(subs, tmp_path / "j1", "-j", "1", *picks)
    two = _grade(subs, tmp_path / "j2", "-j", "2", *picks)
    scores = {n: (d["score"], d["max_score"]) for n, d in one.items()}
    assert scores == {n: (d["score"], d["max_score"]) for n, d in two.items()}
    # PROTO-1 is worth 2 (the registry's default), ZOMB-1 is not-applicable to ivan's threads.
    assert scores == {"alice": (4, 4), "dave": (1, 4), "ivan": (4, 4)}
    for name in scores:
        valid_gradescope(tmp_path / "j2" / name / "results.json")
        assert json.loads((tmp_path / "j2" / name / "autolab.json").read_text())["scores"]
    csv_rows = (tmp_path / "j2" / "summary.csv").read_text().splitlines()
    assert csv_rows[0].startswith("student,score,max_score,model,PROTO-1,PROTO-3,ZOMB-1")
    assert "| PROTO-1 | MUST | 2/3 | 67% | 0 |" in (tmp_path / "j2" / "summary.md").read_text()
    # Resumable: nothing changed, nothing regraded; a touched source is regraded.
    before = {n: (tmp_path / "j2" / n / "report.json").stat().st_mtime for n in scores}
    (subs / "dave" / "server.c").touch()
    result = kit("grade", str(subs), "--out", str(tmp_path / "j2"), "-j", "2", *picks)
    assert result.returncode == 0
    after = {n: (tmp_path / "j2" / n / "report.json").stat().st_mtime for n in scores}
    assert [n for n in scores if after[n] != before[n]] == ["dave"]
    assert result.stderr.count("up to date") == 2


@needs_cc
@needs_root
@pytest.mark.slow
@pytest.mark.full_matrix  # its 512 processes take the CPU from every test beside it
def test_fork_bomb_and_log_flood_are_contained(tmp_path: Path) -> None:
    config = (CLASS / "grading.toml").read_text().replace("file_size_mb = 8", "file_size_mb = 1")
    subs = _class(tmp_path, ["grace", "heidi"], config)
    # FDL-1's 200 sessions log 200 x 64 KiB: well past the 1 MiB file size limit.
    docs = _grade(
        subs, tmp_path / "out", "-j", "2", "--requirement", "PROTO-2", "--requirement", "FDL-1"
    )
    grace, heidi = docs["grace"], docs["heidi"]
    assert grace["score"] == 0
    # Each check stops grace's server, and its bomb, after its own 2 s deadline, so whether
    # the bomb also held the limit for the watchdog's 3 s depends on the machine's load: the
    # note says "fork bomb?" or "reached its limit". Either says why; the watchdog's own stop
    # is proven by test_a_build_that_forks_without_end_is_stopped_as_a_fork_bomb.
    assert any(
        "fork bomb" in n or "reached its limit of 512 processes" in n
        for n in grace["_meta"]["notes"]
    ), grace["_meta"]
    # Its sessions may end before the limit kills the logging child: it keeps what it did.
    assert any("SIGXFSZ" in n for n in heidi["_meta"]["notes"]), heidi["_meta"]
    output = valid_gradescope(tmp_path / "out" / "heidi" / "results.json")["output"]
    assert output.startswith("NOTE: a process was killed for writing a file larger than 1 MiB")


BOMB = r"""
#include <unistd.h>
int main(void)
{
    for (;;)
        if (fork() < 0)
            usleep(10000); /* at the limit: try again, never exit */
}
"""


@needs_cc
@needs_root
def test_a_build_that_forks_without_end_is_stopped_as_a_fork_bomb(tmp_path: Path) -> None:
    """The watchdog's rule, on its own: a step that holds the process limit for 3 s is
    stopped as a fork bomb, and nothing of it is left."""
    subs = tmp_path / "class"
    (subs / "bomb").mkdir(parents=True)
    (subs / "bomb" / "bomb.c").write_text(BOMB)
    (subs / "bomb" / "Makefile").write_text("all:\n\tcc -o bomb bomb.c && ./bomb\n")
    (subs / "grading.toml").write_text(
        '[assignment]\nbuild = "make"\nrun = "./server {port}"\nbuild_timeout = 60\n'
        "[limits]\nnproc = 64\n"
    )
    docs = _grade(subs, tmp_path / "out", "--requirement", "PROTO-1", timeout=90)
    assert docs["bomb"]["score"] == 0
    assert docs["bomb"]["_meta"]["notes"] == [
        "the build was stopped: it kept 64 processes and threads running (the limit) for "
        "3 s: a fork bomb?; see build.log"
    ]


@needs_root
def test_a_build_that_hangs_is_stopped(tmp_path: Path) -> None:
    subs = tmp_path / "class"
    (subs / "hangs").mkdir(parents=True)
    (subs / "hangs" / "Makefile").write_text("all:\n\tsleep 600 & sleep 600\n")
    (subs / "grading.toml").write_text(
        '[assignment]\nbuild = "make"\nrun = "./server {port}"\nbuild_timeout = 2\n'
    )
    docs = _grade(subs, tmp_path / "out", "--requirement", "PROTO-1", timeout=60)
    assert docs["hangs"]["score"] == 0
    assert docs["hangs"]["_meta"]["notes"] == [
        "the build was stopped: the build took longer than 2 s; see build.log"
    ]


@needs_cc
@needs_root
@pytest.mark.slow
def test_hard_coded_ports_run_side_by_side_in_their_own_netns(tmp_path: Path) -> None:
    subs = _class(
        tmp_path,
        ["frank"],
        '[assignment]\nbuild = "make"\nrun = "./server 8080"\nport = 8080\nprofile = "quick"\n',
    )
    shutil.copytree(subs / "frank", subs / "frank2")
    docs = _grade(subs, tmp_path / "out", "-j", "2", "--requirement", "PROTO-3")
    assert {n: d["score"] for n, d in docs.items()} == {"frank": 1, "frank2": 1}
    assert all(d["_meta"]["netns"] for d in docs.values())


@needs_root
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_bwrap_gives_a_build_a_private_tmp_and_a_read_only_system(tmp_path: Path) -> None:
    escape = Path(f"/tmp/conformance-escape-{os.getpid()}")
    # Root may write /usr, so only the sandbox's read-only bind stops this (the checkout may
    # itself live under /tmp, which the sandbox hides, so it would prove nothing here).
    system = Path(f"/usr/conformance-escape-{os.getpid()}")
    subs = tmp_path / "class"
    (subs / "sneaky").mkdir(parents=True)
    (subs / "grading.toml").write_text(
        f'[assignment]\nbuild = "touch {escape} && touch {system}"\nrun = "./server {{port}}"\n'
    )
    docs = _grade(subs, tmp_path / "out", "--sandbox", "bwrap", "--requirement", "PROTO-1")
    assert not escape.exists()
    assert not system.exists()
    assert docs["sneaky"]["score"] == 0
    assert "Read-only file system" in (tmp_path / "out" / "sneaky" / "build.log").read_text()


@needs_cc
def test_a_build_that_fails_scores_zero_with_the_compiler_output(tmp_path: Path) -> None:
    subs = tmp_path / "class"
    shutil.copytree(CLASS / "alice", subs / "typo")
    (subs / "typo" / "server.c").write_text("int main(void) { return 0 }\n")
    (subs / "grading.toml").write_text('[assignment]\nbuild = "make"\nrun = "./server {port}"\n')
    docs = _grade(subs, tmp_path / "out", "--requirement", "PROTO-1", timeout=60)
    assert docs["typo"]["score"] == 0
    (note,) = docs["typo"]["_meta"]["notes"]
    assert note.startswith("the build exited with status 2: see build.log")
    assert "error: expected" in note
    tests = valid_gradescope(tmp_path / "out" / "typo" / "results.json")["tests"]
    assert "error: expected" in tests[0]["output"]


def test_a_submission_that_fills_the_disk_is_stopped(tmp_path: Path) -> None:
    subs = tmp_path / "class"
    (subs / "filler").mkdir(parents=True)
    fill = "for i in 1 2 3 4 5 6; do head -c 1000000 /dev/zero > junk$i; done; sleep 30"
    (subs / "grading.toml").write_text(
        f'[assignment]\nbuild = "{fill}"\nrun = "./server {{port}}"\n[limits]\ndisk_mb = 2\n'
    )
    docs = _grade(subs, tmp_path / "out", "--requirement", "PROTO-1", timeout=60)
    assert docs["filler"]["_meta"]["notes"] == [
        "the build was stopped: it wrote more than 2 MiB to disk; see build.log"
    ]


SPINNER = r"""
#include <arpa/inet.h>
#include <stdlib.h>
#include <sys/socket.h>
int main(int argc, char **argv)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    listen(fd, 16);
    for (;;)
        ; /* an infinite loop instead of accept() */
}
"""


@needs_cc
@needs_root
def test_an_infinite_loop_scores_zero_and_is_stopped(tmp_path: Path) -> None:
    """Whether the CPU limit (SIGXCPU) or the kit's stop ends each server depends on the
    load; either way it scores zero and nothing is left spinning (the guard checks)."""
    subs = tmp_path / "class"
    (subs / "spins").mkdir(parents=True)
    (subs / "spins" / "server.c").write_text(SPINNER)
    (subs / "grading.toml").write_text(
        '[assignment]\nbuild = "cc -o server server.c"\nrun = "./server {port}"\n'
        "[limits]\ncpu_s = 1\n"
    )
    docs = _grade(subs, tmp_path / "out", "--requirement", "PROTO-2", timeout=120)
    assert docs["spins"]["score"] == 0
    detail = docs["spins"]["requirements"][0]["detail"]
    # The kit waited for a reply in vain, or the CPU limit struck before the kit (slowed by
    # the spinning server on a busy machine) had even seen it listen.
    # Or, as it never answers, the kit saw that before the checks and PROTO-2 is blocked;
    # or the CPU limit ended it while the kit was still asking its questions before them.
    assert (
        "Expected: b'OK!!!' on A" in detail
        or "CPU time limit exceeded" in detail
        or "blocked by PROTO-1" in detail
        or "the server stopped answering before any check began" in detail
    ), detail
