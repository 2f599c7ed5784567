"""GitHub Classroom: an autograding workflow where each requirement is a test with its points.

`conformance classroom grading.toml -o DIR` writes, for the assignment's template repository,
`DIR/.github/workflows/classroom.yml` and `DIR/.github/classroom/grading.toml`. The workflow
installs the kit at this version, builds the student's server with the config's build
command, runs the kit **once** (`conformance run --grading-config ... --json-report`), and
then has one GitHub Classroom test per requirement of the assignment
(`classroom-resources/autograding-command-grader`, with the requirement's points as its
`max-score`), whose command only reads that report: `python -m conformance.grade.classroom
REPORT ID` prints what the student needs (the verdict, the failure, why the rule matters) and
exits 0 when the requirement earned its points. The reporter step
(`autograding-grading-reporter`) sums them for the Classroom's grade book.

A test per requirement, not per category: the points of a grading config are per requirement
(a category would be all or nothing), and the student then reads which rule failed, which is
what Gradescope shows too (docs/design.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from conformance import __version__, options, protocols
from conformance.errors import USAGE_EXIT, UsageError
from conformance.grade import autograders
from conformance.grade import config as gradeconfig
from conformance.report import EARNING
from conformance.spec import select

WORKFLOW = Path(".github/workflows/classroom.yml")
CONFIG = Path(".github/classroom/grading.toml")
REPORT = "conformance-report.json"
#: The kit's own step: generous, as the config's `timeout` is per submission too.
KIT_STEP = "kit"

DESCRIPTION = (
    "Write a GitHub Classroom autograding workflow for a grading config: one run of the kit, "
    "then one Classroom test per requirement with its points. Copy DIR/.github into the "
    "assignment's template repository."
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "classroom",
        help="write a GitHub Classroom autograding workflow for a grading config",
        description=DESCRIPTION,
        epilog="exit statuses: 0 written, 2 usage error (a bad config)",
        formatter_class=options.HelpFormatter,
    )
    p.add_argument("config", metavar="GRADING_TOML", help="the assignment's grading config")
    p.add_argument(
        "-o", "--out", metavar="DIR", default=".", help="where .github/ is written (default: .)"
    )
    p.add_argument(
        "--kit",
        metavar="PIP_SPEC",
        default=f"tcp-conformance=={__version__}",
        help="what pip installs for the kit (default: this version from the package index; a "
        "git URL where the kit is not on an index)",
    )


def tests_of(config: gradeconfig.GradingConfig) -> list[tuple[str, str, float]]:
    """(ID, title, points) of every requirement the assignment counts, in the spec's order."""
    adapter = protocols.get(config.protocol)
    return [
        (req.id, req.title, config.points_of(req))
        for req in select(None)
        if req.id not in config.excluded and protocols.inapplicable(req, adapter) is None
    ]


def _quote(text: str) -> str:
    return json.dumps(text)  # a JSON string is a YAML double-quoted scalar


def kit_command(config: gradeconfig.GradingConfig) -> str:
    if not config.run:
        raise UsageError("the config has no [assignment] run command: the workflow needs one")
    values = {
        **options.from_config(config),
        "server_cmd": config.run,
        "grading_config": str(CONFIG),
        "json_report": REPORT,
    }
    argv = options.cli_argv(values)
    return f"conformance run {' '.join(_shell(a) if _needs_quotes(a) else a for a in argv)} || true"


def _needs_quotes(word: str) -> bool:
    return not word or any(c in word for c in " '\"$`\\{}|&;<>()*?[]#~!")


def _shell(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def workflow(config: gradeconfig.GradingConfig, kit: str) -> str:
    tests = tests_of(config)
    step_id = {req_id: req_id.lower() for req_id, _, _ in tests}
    minutes = max(10, int(config.timeout + config.build_timeout) // 60 + 5)
    lines = [
        "# GitHub Classroom autograding, written by `conformance classroom` "
        f"(tcp-conformance {__version__}).",
        "# One run of the kit, then one test per requirement with its points.",
        "name: Autograding Tests",
        "on: [push, repository_dispatch]",
        "permissions:",
        "  checks: write",
        "  actions: read",
        "  contents: read",
        "jobs:",
        "  run-autograding-tests:",
        "    runs-on: ubuntu-latest",
        "    if: github.actor != 'github-classroom[bot]'",
        f"    timeout-minutes: {minutes}",
        "    steps:",
        "      - uses: actions/checkout@v4",
        "      - uses: actions/setup-python@v5",
        "        with:",
        '          python-version: "3.12"',
        "      - name: install the kit and strace",
        "        run: |",
        "          sudo apt-get install -y -qq --no-install-recommends strace",
        f"          python -m pip install --quiet {_shell(kit)}",
    ]
    if config.build:
        lines += [
            "      - name: build",
            f"        run: {_quote(config.build)}",
            "        continue-on-error: true",
        ]
    lines += [
        f"      - name: run the kit once ({config.profile} profile, seed {config.seed})",
        f"        id: {KIT_STEP}",
        f"        timeout-minutes: {max(1, int(config.timeout) // 60 + 1)}",
        f"        run: {_quote(kit_command(config))}",
    ]
    for req_id, title, points in tests:
        command = f"python -m conformance.grade.classroom {REPORT} {req_id}"
        lines += [
            f"      - name: {_quote(f'{req_id} {title}')}",
            f"        id: {step_id[req_id]}",
            "        uses: classroom-resources/autograding-command-grader@v1",
            "        with:",
            f"          test-name: {_quote(req_id)}",
            f"          command: {_quote(command)}",
            "          timeout: 1",
            f"          max-score: {autograders.whole(float(points))}",
        ]
    lines += [
        "      - name: Autograding Reporter",
        "        uses: classroom-resources/autograding-grading-reporter@v1",
        "        env:",
        *(
            f'          {req_id}_RESULTS: "${{{{steps.{step_id[req_id]}.outputs.result}}}}"'
            for req_id, _, _ in tests
        ),
        "        with:",
        f"          runners: {','.join(step_id[r] for r, _, _ in tests)}",
    ]
    return "\n".join(lines) + "\n"


def write(config_path: Path, out: Path, kit: str) -> list[Path]:
    config = gradeconfig.load(config_path)
    if gradeconfig.user_adapter(config.protocol):
        raise UsageError(
            "the config names its own protocol adapter: GitHub Classroom runs the kit in the "
            "student's repository, where the adapter module is not (use Gradescope)"
        )
    text = workflow(config, kit)
    (out / WORKFLOW).parent.mkdir(parents=True, exist_ok=True)
    (out / CONFIG).parent.mkdir(parents=True, exist_ok=True)
    (out / WORKFLOW).write_text(text)
    (out / CONFIG).write_bytes(config_path.read_bytes())
    return [out / WORKFLOW, out / CONFIG]


def check(report_path: Path, req_id: str) -> int:
    """One Classroom test: say what the report says of req_id; 0 if it earned its points."""
    try:
        doc = json.loads(report_path.read_text())
    except (OSError, ValueError) as exc:
        print(
            f"{req_id}: not judged: the kit wrote no report ({exc}); see the step "
            "'run the kit once' (did the build fail?)"
        )
        return 1
    if "refusal" in doc:
        refusal = doc["refusal"]
        print(f"{req_id}: not judged: the suite could not run: {refusal.get('message', '')}")
        if refusal.get("fix"):
            print(refusal["fix"])
        return 1
    for r in autograders.counted(doc):
        if r["id"] == req_id:
            print(f"{req_id} {r['title']}: {autograders.test_output(r)}")
            return 0 if r["outcome"] in EARNING else 1
    print(f"{req_id}: not in the kit's report (was the workflow written for another config?)")
    return 1


def main(ns: argparse.Namespace) -> int:
    try:
        written = write(Path(ns.config), Path(ns.out), ns.kit)
    except (UsageError, gradeconfig.ConfigError, OSError) as exc:
        print(f"conformance classroom: {exc}", file=sys.stderr)
        return USAGE_EXIT
    print(
        f"wrote {', '.join(map(str, written))}: copy .github/ into the assignment's template "
        "repository"
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: python -m conformance.grade.classroom REPORT_JSON REQUIREMENT_ID")
        sys.exit(USAGE_EXIT)
    sys.exit(check(Path(sys.argv[1]), sys.argv[2]))
