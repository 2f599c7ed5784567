"""The `conformance` command: `run` the checks, `list` the requirements, `grade`, `bench`,
`compare` reports across servers.

`run` is a thin layer over `pytest.main` with the plugin's options, so everything it does is
also available as `pytest --pyargs conformance --server ...`; it only adds friendlier names
(`--strict`, `--junit-xml`) and maps pytest's exit codes onto the kit's: 0 every MUST passed,
1 a requirement failed, 2 usage error or the server could not be started, 3 the kit failed
on a requirement (kit-error), 130 interrupted (conformance/errors.py has them all).
With a grading config it also scores the run and writes what autograders read (Gradescope's
results.json, Autolab's last line); `grade` (conformance/grade/) does that for a whole class.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import __version__, bench, compare, doctor, options
from conformance.errors import INTERRUPTED_EXIT, USAGE_EXIT
from conformance.spec import REQUIREMENTS, render_markdown, select

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKS_DIR = PACKAGE_DIR / "checks"


def _run_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="check a server",
        description="Check a server against the spec.",
        epilog=options.exit_status_help(),
        formatter_class=options.HelpFormatter,
    )
    options.add_cli_options(p, "run")
    # The command's own options, which the plugin does not have (pytest's, under other names).
    p.add_argument("--gradescope", metavar="PATH", help="write Gradescope's results.json here")
    p.add_argument(
        "--autolab", action="store_true", help="end stdout with Autolab's autoresult line"
    )
    p.add_argument(
        "-n",
        dest="workers",
        default=None,
        help="pytest-xdist workers, a number or auto (default: none, one process)",
    )
    p.add_argument(
        "-k",
        dest="keyword",
        default=None,
        help="pytest -k expression over the checks' names (test_...); to choose requirements "
        "by ID use --requirement",
    )
    p.add_argument("-v", "--verbose", action="count", default=0, help="more detail (repeatable)")
    p.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")


def pytest_args(ns: argparse.Namespace) -> list[str]:
    """The pytest command line for `conformance run`: the package's checks, its own ini file,
    the table's options under their pytest names, then pytest's own."""
    args = [
        str(CHECKS_DIR),
        "-p",
        "conformance.pytest_entry",
        "--rootdir",
        str(PACKAGE_DIR),
        "-c",
        str(PACKAGE_DIR / "pytest.ini"),
        *options.pytest_argv(vars(ns)),
    ]
    for flag, value in (("-n", ns.workers), ("-k", ns.keyword)):
        if value is not None:
            args += [flag, str(value)]
    args.append("-" + "v" * ns.verbose if ns.verbose else "-q")
    return args + ns.pytest_args


class _Observer:
    """Tells an interrupted run (pytest's exit code 2) from a usage error (also 2)."""

    interrupted = False
    #: Tells the plugin the run is this command's, so its hints use the short option names.
    conformance_front = "cli"

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        # pytest.exit() (our usage errors) reaches this hook too; only Ctrl-C/SIGTERM count.
        self.interrupted = excinfo.errisinstance(KeyboardInterrupt)


def _validate(ns: argparse.Namespace) -> str | None:
    """Catch bad input before pytest starts, to say it in one clean line."""
    from conformance.errors import UsageError
    from conformance.exclusions import Exclusions
    from conformance.grade.config import load
    from conformance.settings import adapter_options, target_from_options

    try:
        options.fill_defaults(ns)
        adapter_options(ns.protocol, ns.line_reply, ns.http_path)
        target_from_options(ns.server, ns.server_cmd, ns.target, ns.port, ns.protocol)
        select(ns.requirement or None)
        if ns.exclusions:
            Exclusions.load(Path(ns.exclusions))
        if ns.grading_config:
            load(Path(ns.grading_config))
    except (UsageError, ValueError) as exc:
        return str(exc)
    return None


def run(ns: argparse.Namespace) -> int:
    problem = _validate(ns)
    if problem:
        print(f"conformance: {problem}", file=sys.stderr)
        if ns.json_report or ns.junit_xml or ns.html:
            # Bad input is a refusal like any other: the report says so, as the plugin's does.
            from conformance import report
            from conformance.errors import Refusal
            from conformance.plugin import write_outputs

            doc = report.refused(Refusal("usage", problem))
            write_outputs(doc, ns.json_report, ns.junit_xml, ns.html)
        return USAGE_EXIT

    # SIGTERM to the kit must clean up like Ctrl-C does: fixtures stop the servers.
    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    graded = ns.gradescope or ns.autolab
    scratch = None
    if graded and not ns.json_report:
        scratch = tempfile.TemporaryDirectory(prefix="conformance-report-")
        ns.json_report = str(Path(scratch.name) / "report.json")
    observer = _Observer()
    started = time.monotonic()
    with _private_basetemp(ns.pytest_args) as basetemp:
        code = int(pytest.main(pytest_args(ns) + basetemp, plugins=[observer]))
    if observer.interrupted:
        return INTERRUPTED_EXIT
    if graded:
        _write_grades(ns, code, time.monotonic() - started)
    if scratch is not None:
        scratch.cleanup()
    if code in (0, 1, USAGE_EXIT):
        return code
    if code in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.NO_TESTS_COLLECTED):
        return USAGE_EXIT
    return code


@contextlib.contextmanager
def _private_basetemp(extra: list[str]) -> Iterator[list[str]]:
    """`--basetemp` in a directory of this run's own, removed after it (unless the pytest
    arguments name one).

    Without it, pytest numbers a directory under /tmp/pytest-of-USER for every session and,
    at its end, deletes all but the newest three there: every run of the kit deleted the
    user's own pytest sessions' directories (and, in the kit's own tests, some 200 runs
    deleted each other's and the suite's old ones, a quarter of a short run's CPU).
    """
    if any(arg == "--basetemp" or arg.startswith("--basetemp=") for arg in extra):
        yield []
        return
    with tempfile.TemporaryDirectory(prefix="conformance-run-") as parent:
        yield ["--basetemp", str(Path(parent) / "tmp")]


def _write_grades(ns: argparse.Namespace, code: int, elapsed: float) -> None:
    """Gradescope's file and Autolab's line from the JSON report (or a zero without one)."""
    from conformance.grade import autograders
    from conformance.grade import config as gradeconfig

    config = gradeconfig.load(Path(ns.grading_config)) if ns.grading_config else gradeconfig.DEFAULT
    config = gradeconfig.with_run(config, protocol=ns.protocol, profile=ns.profile, seed=ns.seed)
    path = Path(ns.json_report)
    if path.exists():
        doc = json.loads(path.read_text())
    else:
        doc = autograders.unrun_report(
            config,
            f"the suite could not run (exit status {code}): see the log above",
            elapsed,
            ns.requirement,
        )
    if ns.gradescope:
        autograders.write_json(
            autograders.gradescope(doc, config, execution_time=elapsed), Path(ns.gradescope)
        )
    if ns.autolab:
        sys.stdout.flush()
        print(autograders.autolab(doc), flush=True)


def list_requirements(ns: argparse.Namespace) -> int:
    if ns.markdown:
        sys.stdout.write(render_markdown())
        return 0
    try:
        chosen = select(ns.requirement or None)
    except ValueError as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return USAGE_EXIT
    for r in chosen:
        scope = []
        if len(r.protocols) == 1:
            scope.append(
                "protocol adapters" if r.protocols == ("adapter",) else f"{r.protocols[0]} profile"
            )
        if r.models:
            scope.append("/".join(r.models) + " servers")
        if r.launch_only:
            scope.append("launch mode")
        extra = f"  [{'; '.join(scope)}]" if scope else ""
        print(f"{r.id:<8} {r.level:<6} {r.category:<11} {r.title}{extra}")
    print(f"{len(chosen)} of {len(REQUIREMENTS)} requirements", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="conformance",
        description=__doc__.splitlines()[0],
        epilog=options.exit_status_help() + " (each command's --help has its own)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _run_parser(sub)
    lp = sub.add_parser(
        "list",
        help="print the requirements without running anything",
        description="Print the requirements (ID, level, category, title, scope).",
        epilog="exit statuses: 0 printed, 2 a --requirement matches nothing",
    )
    lp.add_argument(
        "--requirement",
        action="append",
        default=[],
        metavar="ID_OR_PREFIX",
        help=options.BY_NAME["requirement"].help,
    )
    lp.add_argument("--markdown", action="store_true", help="print SPEC.md")
    bench.add_parser(sub)
    compare.add_parser(sub)
    doctor.add_parser(sub)
    from conformance.grade import batch, classroom, gradescope, merge

    batch.add_parser(sub)
    merge.add_parser(sub)
    gradescope.add_parser(sub)
    classroom.add_parser(sub)
    ns = parser.parse_args(argv)
    if ns.command == "bench":
        return bench.run(ns)
    if ns.command == "compare":
        return compare.main(ns)
    if ns.command == "doctor":
        return doctor.main(ns)
    if ns.command == "grade":
        return batch.main(ns)
    if ns.command == "grade-merge":
        return merge.main(ns)
    if ns.command == "gradescope":
        return gradescope.main(ns)
    if ns.command == "classroom":
        return classroom.main(ns)
    if ns.command == "list":
        try:
            return list_requirements(ns)
        except BrokenPipeError:  # `conformance list | head`: the reader left, that is fine
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep the final flush quiet
            return 0
    return run(ns)
