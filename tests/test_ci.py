"""The CI workflow users copy: documented as it is, run by CI, and its runner honest.

`.ci/run` runs examples/ci/conformance.yml with .ci/workflow.py (the whole run, about a minute,
is CI's); here: the docs show the file as it is, CI runs it, every action in it is one the
runner knows, and the runner fails a failing step, runs `if: always()` steps after it, and
refuses an action it does not know.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT

WORKFLOW = ROOT / "examples" / "ci" / "conformance.yml"
RUNNER = ROOT / ".ci" / "workflow.py"
KNOWN = {
    "actions/checkout",
    "actions/setup-python",
    "actions/upload-artifact",
    "actions/download-artifact",
    "mikepenz/action-junit-report",
}


def test_the_docs_show_the_workflow_as_it_is() -> None:
    assert WORKFLOW.read_text() in (ROOT / "docs" / "ci.md").read_text()


def test_ci_runs_the_workflow() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert "python .ci/workflow.py examples/ci/conformance.yml" in script


def test_every_action_is_one_the_runner_knows() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    used = {
        step["uses"].split("@")[0]
        for job in workflow["jobs"].values()
        for step in job["steps"]
        if "uses" in step
    }
    assert used <= KNOWN
    for action in KNOWN:
        assert f'"{action}"' in RUNNER.read_text()


def run(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "wf.yml"
    path.write_text(text)
    return subprocess.run(
        [sys.executable, str(RUNNER), str(path)], capture_output=True, text=True, timeout=60
    )


def test_a_failing_step_fails_and_always_steps_still_run(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "env: {WORD: hello}\n"
        "jobs:\n  one:\n    steps:\n"
        '      - run: echo "$WORD ${{ matrix.x }}" > out.txt\n'
        "      - run: exit 3\n"
        "      - run: echo never\n"
        "      - if: always()\n        run: cat out.txt\n"
        "    strategy: {matrix: {include: [{x: world}]}}\n",
    )
    assert result.returncode == 1
    assert "hello world" in result.stdout
    assert "echo never: skipped" in result.stdout


def test_an_unknown_action_is_refused(tmp_path: Path) -> None:
    result = run(tmp_path, "jobs:\n  one:\n    steps:\n      - uses: someone/else@v1\n")
    assert result.returncode == 1
    assert "not known to this runner" in result.stdout
