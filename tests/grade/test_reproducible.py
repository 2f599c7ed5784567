"""Issue 14: the same submission gets the same grade, however busy the grading machine is.

What the grader decides on its own is proven here without timing: a run stopped by the
sandbox scores 0 for every requirement whatever the kit had judged before the stop, and says
why; a check that never ran says why in the grader's words; a submission that cannot start
gets its reason once per test, with a hint for the grader, not for `conformance run`; scores
are integers; `--only` keeps the class in the summary. The slow tests grade folders of the
sample class (examples/class) for real. The load itself is examples/class/reproducibility.py.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conformance import report as kit_report
from conformance.errors import Refusal
from conformance.grade import autograders, submission
from conformance.grade import config as gradeconfig
from conformance.grade.submission import Grader, Options
from conformance.settings import PORT_ELSEWHERE_HINT, START_TIMEOUT_HINT
from tests.grade.test_grading import (
    _class,
    _grade,
    needs_cc,
    needs_root,
    valid_gradescope,
    valid_report,
)

CONFIG = gradeconfig.parse(
    '[assignment]\nrun = "./server {port}"\n[points]\n"CONC-1" = 3\n'
    '[exclude]\n"EINTR-3" = "not in this course"\n',
    "grading.toml",
)
#: The refusal the kit's report carries for frank (the server listens on 8080, not where told).
FRANK_REFUSAL = Refusal(
    "never-listened",
    "the server could not be started: the server did not listen on port 14547 within 5 s. "
    "It listens on port(s) 8080 instead.\n"
    "  command: /venv/bin/python -m conformance.grade.sandbox --nproc=512 --uid 62003 -- "
    "./server {port}\n"
    "  last lines of its stderr:\n"
    "    (empty)",
    PORT_ELSEWHERE_HINT,
    (8080,),
)


def _grader(tmp_path: Path, config: gradeconfig.GradingConfig = CONFIG) -> Grader:
    options = Options(config, None, tmp_path / "out", tmp_path / "scratch")
    grader = Grader("grace", tmp_path, options, uid=None)
    grader.out.mkdir(parents=True)
    (grader.out / "run.log").write_text("")
    return grader


def _partial_report(passed: list[str]) -> dict[str, object]:
    """What the kit writes when it is stopped after judging `passed`: the rest not run."""
    doc = autograders.unrun_report(CONFIG, "x")
    for r in doc["requirements"]:  # type: ignore[attr-defined]
        if r["max_score"]:
            judged = r["id"] in passed
            r["outcome"] = "passed" if judged else "skipped"
            r["detail"] = (
                "" if judged else "not judged: its check was not run (deselected with -k?)"
            )
            r["score"] = float(r["max_score"]) if judged else 0.0
    doc["score"] = float(sum(r["score"] for r in doc["requirements"]))  # type: ignore[attr-defined]
    return doc


# -- a run stopped by the sandbox ----------------------------------------------------------------
@pytest.mark.parametrize("passed", [[], ["CONC-3"], ["PROTO-1", "PROTO-3", "CONC-3", "ZOMB-1"]])
def test_a_stopped_run_scores_zero_whenever_it_was_stopped(
    tmp_path: Path, passed: list[str]
) -> None:
    """Stopped early or late (fewer or more checks judged), the same zero and the same text."""
    grader = _grader(tmp_path)
    report = grader.out / "report.json"
    report.write_text(json.dumps(_partial_report(passed)))
    doc = grader._judged(report, -15, "the suite took longer than 240 s")
    counted = autograders.counted(doc)
    assert doc["score"] == 0 and doc["max_score"] == 24
    assert {r["score"] for r in counted} == {0}
    assert {r["detail"] for r in counted} == {
        "not judged: the run was stopped because the suite took longer than 240 s"
    }
    assert grader.notes == [
        "the run was stopped because the suite took longer than 240 s: no requirement was judged"
    ]


def test_reaching_the_process_limit_is_a_stop_whether_or_not_the_watchdog_stopped_it(
    tmp_path: Path,
) -> None:
    """grace (a fork bomb) passes CONC-3 when the watchdog does not stop her; whether it does
    depends on the load, so reaching the limit is what counts, in one wording."""
    details = set()
    for stopped in (None, "it kept 512 processes and threads running (the limit) for 3 s"):
        grader = _grader(tmp_path / str(stopped is None))
        grader.peak_tasks = 470  # the watchdog's samples miss zombies and the fastest peaks
        report = grader.out / "report.json"
        report.write_text(json.dumps(_partial_report(["CONC-3"])))
        doc = grader._judged(report, 1, stopped)
        assert doc["score"] == 0
        details |= {str(r["detail"]) for r in autograders.counted(doc)}
    assert details == {
        "not judged: the run was stopped because it reached its limit of 512 processes and "
        "threads (a fork bomb?)"
    }


def test_a_server_the_kernel_refused_to_start_reached_the_process_limit(tmp_path: Path) -> None:
    """The sandbox wrapper's EAGAIN, quoted in the kit's refusal record (not read from run.log)."""
    grader = _grader(tmp_path)
    refusal = Refusal(
        "exited",
        "the server could not be started: the server exited with status 126\n"
        "    conformance.grade.sandbox: cannot run './server': Resource temporarily unavailable",
    )
    report = grader.out / "report.json"
    report.write_text(json.dumps(kit_report.refused(refusal)))
    doc = grader._judged(report, 2, None)
    assert "reached its limit of 512 processes" in str(doc["requirements"][0]["detail"])  # type: ignore[index]


def test_a_server_printing_eagain_is_not_taken_for_a_fork_bomb(tmp_path: Path) -> None:
    grader = _grader(tmp_path)
    report = grader.out / "report.json"
    doc = _partial_report(["PROTO-1"])
    doc["requirements"][0]["detail"] = "recv: Resource temporarily unavailable"  # type: ignore[index]
    report.write_text(json.dumps(doc))
    assert grader._judged(report, 1, None)["score"] == 2


def test_a_check_that_never_ran_says_why_in_the_graders_words(tmp_path: Path) -> None:
    grader = _grader(tmp_path)
    report = grader.out / "report.json"
    report.write_text(json.dumps(_partial_report(["PROTO-1"])))
    doc = grader._judged(report, 1, None)
    texts = json.dumps(autograders.gradescope(doc, CONFIG))
    assert "deselected" not in texts and "-k" not in texts
    assert "not judged: the suite ended before this check ran (see run.log)" in texts


# -- a submission that cannot start ---------------------------------------------------------------
def test_the_kits_reason_is_said_once_with_the_graders_hint(tmp_path: Path) -> None:
    """The grader reads the kit's refusal record and phrases its own fix (run.log is only
    kept for people)."""
    grader = _grader(tmp_path)
    (grader.out / "run.log").write_text("nothing the grader reads\n")
    report = grader.out / "report.json"
    report.write_text(json.dumps(kit_report.refused(FRANK_REFUSAL)))
    doc = grader._judged(report, 2, None)
    why = str(doc["requirements"][0]["detail"])  # type: ignore[index]
    # The drawn port is not in it: the same submission reads the same note every time.
    first = (
        "the server could not be started: it listens on port(s) 8080, not on the port it was "
        "given (`{port}`). It must listen on the port given in its arguments"
    )
    assert f"the suite could not run: {first}" in why
    assert "14547" not in why
    # The other wording of the same fault (a second instance found 8080 taken): the same note.
    clash = {
        **FRANK_REFUSAL.record(),
        "message": "the server could not be started: the server exited with status 1 before "
        "it listened on port 19561. It says its address is already in use, though that port "
        "is free; another instance of it listens on port(s) 8080. It listens on port(s) 8080 "
        "instead.\n  command: ./server {port}",
    }
    other = submission.refusal_text(clash, CONFIG)
    assert other.startswith(first)
    plain = submission.refusal_text(FRANK_REFUSAL.record(), CONFIG)
    assert other.splitlines()[0] == plain.splitlines()[0]
    assert "_pytest" not in why and "!" not in why and "nothing the grader" not in why
    assert "--port" not in why and "conformance.grade.sandbox" not in why
    assert "`./server {port}`" in why and "`port = 8080` under [assignment]" in why
    assert why.endswith("command: ./server {port}\n  last lines of its stderr:\n    (empty)")
    fixed = gradeconfig.with_run(CONFIG, run="./server 9090", port=9090)
    text = submission.refusal_text(FRANK_REFUSAL.record(), fixed)
    assert "the grading config has `port = 9090`" in text.lower()


def test_a_slow_start_is_told_in_the_configs_terms(tmp_path: Path) -> None:
    """The kit's `--start-timeout` hint becomes the config's `start_timeout`, and the grader
    passes the config's value to the kit."""
    refusal = {
        "kind": "never-listened",
        "message": "the server could not be started: the server did not listen on port "
        "14547 within 5 s\n  command: ./server {port}",
        "fix": START_TIMEOUT_HINT,
    }
    why = submission.refusal_text(refusal, CONFIG)
    assert "--start-timeout" not in why
    assert "`start_timeout = SECONDS` under [assignment] (now 5 s)" in why
    slow = gradeconfig.parse('[assignment]\nrun = "./server {port}"\nstart_timeout = 30\n')
    assert slow.start_timeout == 30
    grader = _grader(tmp_path / "g", slow)
    seen: list[list[str]] = []

    def supervise(argv: list[str], *args: object) -> tuple[int, None]:
        seen.append(argv)
        return 2, None

    grader._supervise = supervise  # type: ignore[method-assign]
    grader._run_suite()
    assert seen[0][seen[0].index("--start-timeout") + 1] == "30"


def test_a_test_not_judged_reads_its_reason_alone(tmp_path: Path) -> None:
    """No requirement's "why it matters": nothing of that rule failed."""
    doc = autograders.unrun_report(CONFIG, "the suite could not run: the server could not start")
    for test in autograders.gradescope(doc, CONFIG)["tests"]:  # type: ignore[attr-defined]
        assert test["output"] == (
            "not judged: the suite could not run: the server could not start"
        ), test


# -- integer scores -------------------------------------------------------------------------------
def test_whole_points_are_written_as_integers() -> None:
    floats = _partial_report(["PROTO-1", "CONC-1"])
    floats["max_score"] = 24.0
    doc = autograders.with_whole_scores(floats)
    results = autograders.gradescope(floats, CONFIG)
    autolab = json.loads(autograders.autolab(floats))["scores"]
    scores = [doc["score"], doc["max_score"], results["score"], *autolab.values()]
    scores += [r[k] for r in doc["requirements"] for k in ("score", "max_score")]  # type: ignore[attr-defined]
    scores += [t[k] for t in results["tests"] for k in ("score", "max_score")]  # type: ignore[attr-defined]
    assert {type(s) for s in scores} == {int}
    assert (doc["score"], doc["max_score"], autolab["CONC-1"]) == (5, 24, 3)
    halves = gradeconfig.parse('[points]\n"PROTO-1" = 2.5\n')
    assert autograders.unrun_report(halves, "x", patterns=["PROTO-1"])["max_score"] == 2.5


# -- for real, on the sample class ----------------------------------------------------------------
@needs_cc
@needs_root
@pytest.mark.slow
@pytest.mark.full_matrix  # its 512 processes take the CPU from every test beside it
def test_the_fork_bomb_scores_zero_with_a_reason_in_every_test(tmp_path: Path) -> None:
    """Without the policy grace passes CONC-3 (64 connects succeed before the bomb matters)
    whenever the watchdog is too slow to stop her: one point on a quiet machine, none on a
    busy one."""
    subs = _class(tmp_path, ["grace"])
    picks = ["--requirement", "PROTO-1", "--requirement", "CONC-3"]
    docs = _grade(subs, tmp_path / "out", "-j", "1", *picks, timeout=120)
    assert docs["grace"]["score"] == 0
    results = valid_gradescope(tmp_path / "out" / "grace" / "results.json")
    reason = "the run was stopped because it reached its limit of 512 processes and threads"
    assert [t["output"] for t in results["tests"]] == [f"not judged: {reason} (a fork bomb?)"] * 2
    assert results["output"].startswith(f"NOTE: {reason}")
    assert "deselected" not in json.dumps(results)


@needs_cc
@needs_root
@pytest.mark.slow
def test_a_server_that_cannot_start_gets_one_clear_note_per_test(tmp_path: Path) -> None:
    subs = _class(tmp_path, ["frank"])
    picks = ["--requirement", "PROTO-1", "--requirement", "CONC-1", "--requirement", "ZOMB-1"]
    docs = _grade(subs, tmp_path / "out", *picks, timeout=120)
    assert (docs["frank"]["score"], docs["frank"]["max_score"]) == (0, 6)
    path = tmp_path / "out" / "frank" / "results.json"
    results = valid_gradescope(path)
    for test in results["tests"]:
        output = test["output"]
        assert output.startswith("not judged: the suite could not run: the server could not "), (
            output
        )
        assert output.count("could not be started") == 1, output
        for noise in ("_pytest", "Exit:", "Why it matters", "--port", "conformance.grade.sandbox"):
            assert noise not in output, output
        assert isinstance(test["score"], int) and isinstance(test["max_score"], int)
    # Integer scores (execution_time is a float, and may well end in .0).
    assert isinstance(results["score"], int)


@needs_cc
@pytest.mark.slow
def test_only_regrades_one_student_and_the_summary_keeps_the_class(tmp_path: Path) -> None:
    subs = _class(tmp_path, ["alice", "dave", "ivan"])
    out = tmp_path / "out"
    picks = ["--requirement", "PROTO-3"]
    _grade(subs, out, "-j", "2", *picks)
    before = {n: (out / n / "report.json").stat().st_mtime for n in ("alice", "dave", "ivan")}
    (subs / "dave" / "server.c").write_text(
        (subs / "dave" / "server.c").read_text().replace('"OK!!!\\n", 6', '"OK!!!", 5')
    )
    _grade(subs, out, "--only", "dave", *picks)
    after = {n: (out / n / "report.json").stat().st_mtime for n in before}
    assert [n for n in before if after[n] != before[n]] == ["dave"]
    with open(out / "summary.csv") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert sorted(rows) == ["alice", "dave", "ivan"]
    assert rows["alice"]["PROTO-3"] == "1"
    markdown = (out / "summary.md").read_text()
    assert "3 submissions graded" in markdown and "Not graded yet" not in markdown
    valid_report(out / "dave" / "report.json")
