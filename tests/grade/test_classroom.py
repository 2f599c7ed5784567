"""`conformance classroom`: the GitHub Classroom workflow, and the commands it runs, run here.

The workflow is read the way the runner reads it (each step's `run:` or the command grader's
`command:` and `max-score:`), and its commands are run in a copy of a sample student's
repository, in order: build, the kit once, then one check per requirement. The points of the
checks that pass must add up to the kit's own score, and to `conformance grade`'s for the same
submission; each check's exit status must be its requirement's verdict.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.grade import autograders, classroom
from conformance.grade import config as gradeconfig
from tests.conftest import ROOT, kit

CLASS = ROOT / "examples" / "class"
CONFIG = gradeconfig.load(CLASS / "grading.toml")
needs_cc = pytest.mark.skipif(
    shutil.which("cc") is None or shutil.which("make") is None, reason="needs cc and make"
)


def _steps(text: str) -> list[dict[str, str]]:
    """Each step of the (generated, regular) workflow: its keys, values JSON-decoded."""
    steps: list[dict[str, str]] = []
    for line in text.splitlines():
        stripped = line.strip()
        if line.startswith("      - "):
            steps.append({})
            stripped = stripped[2:]
        if not steps or ":" not in stripped or line.startswith("        env:"):
            continue
        key, _, value = stripped.partition(":")
        value = value.strip()
        if value.startswith('"'):
            value = json.loads(value)
        steps[-1].setdefault(key, value)
    return steps


def _workflow(tmp_path: Path) -> str:
    result = kit("classroom", str(CLASS / "grading.toml"), "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / classroom.CONFIG).read_bytes() == (CLASS / "grading.toml").read_bytes()
    return (tmp_path / classroom.WORKFLOW).read_text()


def test_one_test_per_requirement_with_its_points(tmp_path: Path) -> None:
    text = _workflow(tmp_path)
    graders = [
        s
        for s in _steps(text)
        if s.get("uses", "").startswith("classroom-resources/autograding-command")
    ]
    ids = [s["test-name"] for s in graders]
    unrun = autograders.unrun_report(CONFIG, "")
    counted = {str(r["id"]): r["max_score"] for r in autograders.counted(unrun)}
    counted = {k: v for k, v in counted.items() if k not in CONFIG.excluded}
    assert ids == list(counted) and "EINTR-3" not in ids  # excluded by the config
    assert {s["test-name"]: int(s["max-score"]) for s in graders} == counted
    assert sum(int(s["max-score"]) for s in graders) == unrun["max_score"]
    reporter = _steps(text)[-1]
    assert reporter["runners"].split(",") == [s["id"] for s in graders]
    for s in graders:
        assert f'{s["test-name"]}_RESULTS: "${{{{steps.{s["id"]}.outputs.result}}}}"' in text


def test_a_check_says_the_verdict_and_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = autograders.unrun_report(CONFIG, "the build failed")
    doc["requirements"][0].update(outcome="passed", detail="")  # type: ignore[index]
    (tmp_path / "r.json").write_text(json.dumps(doc))
    assert classroom.check(tmp_path / "r.json", "PROTO-1") == 0
    assert classroom.check(tmp_path / "r.json", "PROTO-2") == 1
    out = capsys.readouterr().out
    assert "PROTO-1 " in out and ": passed" in out and "not judged: the build failed" in out
    assert classroom.check(tmp_path / "missing.json", "PROTO-1") == 1
    assert "the kit wrote no report" in capsys.readouterr().out


@needs_cc
@pytest.mark.slow
@pytest.mark.full_matrix  # end to end in CI's second step; the README's command keeps the units
def test_the_workflows_commands_grade_a_student_as_conformance_grade_does(tmp_path: Path) -> None:
    repo = tmp_path / "student"
    shutil.copytree(CLASS / "dave", repo)  # fails PROTO-1..3 (the README's summary: 20/24)
    text = _workflow(repo)
    steps = _steps(text)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    def sh(command: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-c", command], cwd=repo, env=env, text=True,
                              capture_output=True, timeout=timeout)  # fmt: skip

    build = next(s for s in steps if s.get("name") == "build")
    assert sh(build["run"], 120).returncode == 0
    run = next(s for s in steps if s.get("id") == classroom.KIT_STEP)
    done = sh(run["run"], 600)
    report = json.loads((repo / classroom.REPORT).read_text())
    assert "refusal" not in report, done.stdout + done.stderr
    earned = 0
    for s in steps:
        if "command" not in s:
            continue
        check = sh(s["command"], 60)
        verdict = next(r for r in report["requirements"] if r["id"] == s["test-name"])
        assert (check.returncode == 0) == (verdict["outcome"] in ("passed", "not-applicable"))
        assert check.stdout.startswith(s["test-name"]), check.stdout
        earned += int(s["max-score"]) if check.returncode == 0 else 0
    assert earned == report["score"]
    # The student's workflow runs the kit with no sandbox: the grader's closest is limits only.
    graded = kit("grade", str(CLASS), "--only", "dave", "--out", str(tmp_path / "grades"),
                 "--sandbox", "limits", timeout=600)  # fmt: skip
    assert graded.returncode == 0, graded.stderr
    grade = json.loads((tmp_path / "grades" / "dave" / "report.json").read_text())
    differ = {
        r["id"]: (r["outcome"], g["outcome"], g["detail"])
        for r, g in zip(report["requirements"], grade["requirements"])
        if (r["id"], r["outcome"]) != (g["id"], g["outcome"])
    }
    assert (earned, report["max_score"]) == (grade["score"], grade["max_score"]), differ
    assert earned == 20  # the README's summary
