"""Run a GitHub Actions workflow's steps here, as a script: the same commands, in the same order.

    python .ci/workflow.py WORKFLOW.yml [--matrix JSON] [--keep DIR]

CI runs examples/ci/conformance.yml this way (.ci/run), so the workflow users copy is proven
on every change. Each job runs in a scratch workspace of its own, as on GitHub's fresh
machines: `actions/checkout` copies this working tree there; `actions/setup-python` makes a
fresh virtual environment (the Python running this script) and puts it first on PATH;
`actions/upload-artifact` and `actions/download-artifact` copy files through a scratch
artifact store; `mikepenz/action-junit-report` reads the JUnit files with junitparser and
fails if there are none or they do not parse. Any other action is an error, not a silent
skip. `run:` steps go through `bash --noprofile --norc -eo pipefail`, GitHub's own shell.

The workflow's `env:` is what a user sets; a variable of the same name in this script's
environment wins (CI installs the kit from this clone with `KIT=.`). `--matrix` replaces each
job's matrix entries with the given one (a JSON object). Expressions supported: `matrix.X`,
`env.X`; `if:` supports `always()` and nothing else. Where `sudo` is missing and this runs as
root (a container), a `sudo` that just runs its command is put on PATH.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
EXPR = re.compile(r"\$\{\{\s*([\w.\-()]+)\s*\}\}")
#: What `actions/checkout` leaves out of the copy: built or installed things, not sources.
NOT_SOURCES = (".git", ".venv", ".tox", "__pycache__", "*.egg-info", ".mypy_cache", ".ruff_cache")


class StepFailed(Exception):
    pass


def expand(text: str, matrix: dict[str, Any], env: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        expr = match[1]
        scope, _, name = expr.partition(".")
        if scope == "matrix" and name in matrix:
            return str(matrix[name])
        if scope == "env" and name in env:
            return env[name]
        raise StepFailed(f"unsupported expression ${{{{ {expr} }}}}")

    return EXPR.sub(value, text)


class Runner:
    def __init__(self, workflow: dict[str, Any], matrix: dict[str, Any] | None, scratch: Path):
        self.workflow = workflow
        self.matrix = matrix
        self.scratch = scratch
        self.artifacts = scratch / "artifacts"
        self.artifacts.mkdir()
        self.env = {k: str(v) for k, v in (workflow.get("env") or {}).items()}
        for name in self.env:
            if name in os.environ:
                self.env[name] = os.environ[name]
        self.shims = scratch / "shims"
        self.shims.mkdir()
        if shutil.which("sudo") is None and os.geteuid() == 0:
            sudo = self.shims / "sudo"
            sudo.write_text('#!/bin/sh\nexec "$@"\n')
            sudo.chmod(0o755)

    def run(self) -> int:
        failed: set[str] = set()
        jobs: dict[str, dict[str, Any]] = self.workflow["jobs"]
        for name, job in jobs.items():
            needs = job.get("needs") or []
            needs = [needs] if isinstance(needs, str) else needs
            if any(n in failed for n in needs) and job.get("if") != "always()":
                print(f"== job {name}: skipped ({', '.join(needs)} failed)", flush=True)
                failed.add(name)
                continue
            entries = self._entries(job)
            for i, entry in enumerate(entries):
                if not self._job(f"{name}-{i}", job, entry):
                    failed.add(name)
        print(f"== workflow: {'failed: ' + ', '.join(sorted(failed)) if failed else 'passed'}")
        return 1 if failed else 0

    def _entries(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        matrix = (job.get("strategy") or {}).get("matrix")
        if not matrix:
            return [{}]
        if self.matrix is not None:
            return [self.matrix]
        if set(matrix) != {"include"}:
            raise StepFailed("only a matrix of `include` entries is supported")
        return list(matrix["include"])

    def _job(self, name: str, job: dict[str, Any], matrix: dict[str, Any]) -> bool:
        workspace = self.scratch / name
        workspace.mkdir()
        path = [str(self.shims)]
        summary = self.scratch / f"{name}-summary.md"
        print(f"== job {name} {json.dumps(matrix) if matrix else ''}", flush=True)
        ok = True
        for step in job["steps"]:
            label = step.get("name") or step.get("uses") or step["run"].splitlines()[0]
            if not ok and step.get("if") != "always()":
                print(f"-- {label}: skipped (a step before failed)", flush=True)
                continue
            if step.get("if") not in (None, "always()"):
                raise StepFailed(f"unsupported if: {step['if']}")
            print(f"-- {label}", flush=True)
            env = {**os.environ, **self.env}
            env.update(
                {k: expand(str(v), matrix, self.env) for k, v in (step.get("env") or {}).items()}
            )
            env["PATH"] = os.pathsep.join([*path, os.environ["PATH"]])
            env["GITHUB_STEP_SUMMARY"] = str(summary)
            env["GITHUB_WORKSPACE"] = str(workspace)
            env.pop("VIRTUAL_ENV", None)
            try:
                if "uses" in step:
                    self._action(step, matrix, workspace, path)
                else:
                    script = expand(step["run"], matrix, self.env)
                    subprocess.run(
                        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                        cwd=workspace,
                        env=env,
                        check=True,
                    )
            except (StepFailed, subprocess.CalledProcessError) as exc:
                print(f"-- {label}: FAILED ({exc})", flush=True)
                ok = False
        if summary.exists():
            print(f"-- job summary ({summary}):\n{summary.read_text()}", flush=True)
        return ok

    def _action(
        self, step: dict[str, Any], matrix: dict[str, Any], workspace: Path, path: list[str]
    ) -> None:
        action = step["uses"].split("@")[0]
        args = {k: expand(str(v), matrix, self.env) for k, v in (step.get("with") or {}).items()}
        if action == "actions/checkout":
            shutil.copytree(
                ROOT, workspace, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*NOT_SOURCES)
            )
        elif action == "actions/setup-python":
            env_dir = workspace.parent / f"{workspace.name}-python"
            venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
            path.insert(0, str(env_dir / "bin"))
        elif action == "actions/upload-artifact":
            source = workspace / args["path"]
            if not source.exists():
                raise StepFailed(f"upload-artifact: nothing at {args['path']}")
            target = self.artifacts / args["name"]
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        elif action == "actions/download-artifact":
            pattern = args.get("pattern") or args.get("name") or "*"
            found = [
                a for a in sorted(self.artifacts.iterdir()) if fnmatch.fnmatch(a.name, pattern)
            ]
            if not found:
                raise StepFailed(f"download-artifact: no artifact matches {pattern}")
            for artifact in found:
                merge = str(args.get("merge-multiple", "false")).lower() == "true"
                target = workspace / args.get("path", ".") / ("" if merge else artifact.name)
                shutil.copytree(artifact, target, dirs_exist_ok=True)
        elif action == "mikepenz/action-junit-report":
            self._junit(workspace, args["report_paths"])
        else:
            raise StepFailed(f"action {action} is not known to this runner")

    @staticmethod
    def _junit(workspace: Path, pattern: str) -> None:
        import junitparser

        files = sorted(workspace.glob(pattern))
        if not files:
            raise StepFailed(f"action-junit-report: no file matches {pattern}")
        for path in files:
            try:
                xml = junitparser.JUnitXml.fromfile(str(path))
            except Exception as exc:  # what the action would fail on: not JUnit
                raise StepFailed(f"{path.name}: not JUnit XML ({exc})") from exc
            print(
                f"   {path.name}: {xml.tests} test cases, {xml.failures} failures, "
                f"{xml.skipped} skipped",
                flush=True,
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workflow", type=Path)
    parser.add_argument("--matrix", type=json.loads, help="one matrix entry, as a JSON object")
    parser.add_argument("--keep", type=Path, help="keep the workspaces and artifacts here")
    ns = parser.parse_args()
    workflow = yaml.safe_load(ns.workflow.read_text())
    scratch = Path(tempfile.mkdtemp(prefix="workflow-"))
    try:
        return Runner(workflow, ns.matrix, scratch).run()
    except StepFailed as exc:
        print(f"== workflow: cannot run it here: {exc}", file=sys.stderr)
        return 2
    finally:
        if ns.keep is not None:
            shutil.copytree(scratch, ns.keep, dirs_exist_ok=True, symlinks=True)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
