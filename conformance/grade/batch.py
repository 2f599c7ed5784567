"""`conformance grade DIR`: grade every submission folder in DIR, then summarise the class.

Each folder is graded in a slot (grade/submission.py): with `-j N` there are N slots, each
with its own uid when the grader is root (so limits and cleanup never mix two submissions) and
its own network namespace when it can have one (so hard-coded ports do not collide and no
submission sees another's traffic). Without namespaces, submissions with a fixed port are
graded one at a time. `--shard i/N` takes every N-th folder in name order, so N machines
split a class without talking to each other; a folder whose report is newer than its sources
and was made with the same config is not graded again unless `--force`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import pwd
import queue
import shutil
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conformance import options, protocols
from conformance.errors import INTERRUPTED_EXIT, USAGE_EXIT, UsageError
from conformance.grade import cgroups, containment, summary
from conformance.grade import config as gradeconfig
from conformance.grade.progress import Progress
from conformance.grade.sandbox import SandboxError, enter_netns, isolation_problem
from conformance.grade.submission import (
    CANCELLED,
    Cancelled,
    Grader,
    Options,
    Result,
    live_cgroups,
    live_children,
    load_result,
    up_to_date,
)
from conformance.harness.reaper import become_subreaper, reap_adopted
from conformance.spec import select

#: First uid of the sandbox slots (slot k runs as UID_BASE + k); override with --uid-base.
UID_BASE = 62000
CONFIG_NAME = "grading.toml"


#: `conformance grade --help`'s description: what it does, in the user's terms.
DESCRIPTION = (
    "Grade every submission folder in SUBMISSIONS_DIR: copy it, build it, check its server "
    "against the spec in a sandbox, score it by the grading config, then summarise the class. "
    "With -j N, N submissions are graded at once, each as its own user when the grader is root "
    "and in its own network namespace when it can have one. A folder whose report is newer "
    "than its sources and was made with the same config is not graded again (--force "
    "regrades). docs/grading.md has the config and the sandbox."
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "grade",
        help="grade a class of submissions",
        description=DESCRIPTION,
        epilog="exit statuses: 0 every submission graded (whatever its score), 1 the grader "
        "itself failed on a submission, 2 usage error (a bad option, config or folder), "
        "130 interrupted (the next run grades the rest)",
        formatter_class=options.HelpFormatter,
    )
    p.add_argument(
        "submissions", metavar="SUBMISSIONS_DIR", help="one folder per submission (its name)"
    )
    p.add_argument("--config", metavar="TOML", help=f"grading config (default: DIR/{CONFIG_NAME})")
    p.add_argument(
        "--build",
        help="build command, run in each submission, e.g. 'make' (overrides the grading "
        "config's [assignment] build)",
    )
    p.add_argument(
        "--run",
        help="launch command, e.g. './server {port}' (overrides the grading config's "
        "[assignment] run)",
    )
    options.add_cli_options(p, "grade")
    p.add_argument("--out", metavar="DIR", help="where reports go (default: DIR-grades)")
    p.add_argument("-j", "--jobs", type=int, default=1, help="submissions graded at once")
    p.add_argument("--shard", metavar="I/N", help="grade only the I-th of N shares (1-based)")
    p.add_argument("--force", action="store_true", help="regrade up-to-date submissions too")
    p.add_argument("--only", action="append", default=[], metavar="NAME", help="only these folders")
    p.add_argument(
        "--sandbox",
        choices=("auto", "limits", "bwrap"),
        default="auto",
        help="auto: a view of its own per submission through namespaces where they work, "
        "else resource limits only; limits: resource limits only; bwrap: bubblewrap's view",
    )
    p.add_argument(
        "--netns",
        choices=("auto", "always", "never"),
        default="auto",
        help="a network namespace per submission (auto: as root, where it works)",
    )
    p.add_argument(
        "--uid-base",
        type=int,
        default=UID_BASE,
        help="as root, slot k runs as uid UID_BASE+k",
    )
    p.add_argument("--keep-work", action="store_true", help="keep each build's work directory")
    p.add_argument(
        "--cgroups",
        choices=("auto", "never"),
        default="auto",
        help="auto: a cgroup per submission (the memory and tasks of all its processes "
        "together) where one can be made here; never: the per-process limits only",
    )


def parse_shard(text: str | None) -> tuple[int, int]:
    if text is None:
        return 1, 1
    index, sep, count = text.partition("/")
    if not (sep and index.isdigit() and count.isdigit()) or not 1 <= int(index) <= int(count):
        raise UsageError(f"--shard {text!r}: write I/N with 1 <= I <= N, e.g. 2/4")
    return int(index), int(count)


def discover(directory: Path, out_dir: Path, only: list[str]) -> list[str]:
    """Submission folders: every directory but hidden ones, `__pycache__`/`__MACOSX`-style
    debris (a leading `__`) and the output directory."""
    names = sorted(
        p.name
        for p in directory.iterdir()
        if p.is_dir() and not p.name.startswith((".", "__")) and p.resolve() != out_dir.resolve()
    )
    unknown = [n for n in only if n not in names]
    if unknown:
        raise UsageError(f"--only: no submission folder named {', '.join(unknown)} in {directory}")
    return [n for n in names if not only or n in only]


def in_summary(directory: Path, out_dir: Path, picked: list[str], only: list[str]) -> list[str]:
    """Whom the class summary covers. Regrading one resubmission (`--only NAME`) must not
    drop the rest of the class from the grade book: with --only it covers every folder with
    a report in out_dir as well as the ones picked; without, every folder (one without a
    report yet, e.g. another shard's, is listed as not graded yet)."""
    if not only:
        return picked
    everyone = discover(directory, out_dir, [])
    return [n for n in everyone if n in picked or (out_dir / n / "report.json").exists()]


def shard_of(names: list[str], index: int, count: int) -> list[str]:
    """Every count-th name from index-1: deterministic, and balanced across shards."""
    return names[index - 1 :: count]


def _config(
    ns: argparse.Namespace, directory: Path
) -> tuple[gradeconfig.GradingConfig, Path | None]:
    given = Path(ns.config) if ns.config else directory / CONFIG_NAME
    path: Path | None = given
    if ns.config or given.exists():
        config = gradeconfig.load(given)
    else:
        config, path = gradeconfig.DEFAULT, None
    overrides = {"build": ns.build, "run": ns.run}
    overrides.update(
        (o.config_key, getattr(ns, o.name))
        for o in options.OPTIONS
        if o.config_key and "grade" in o.commands
    )
    changes = {k: v for k, v in overrides.items() if v is not None}
    config = gradeconfig.with_run(config, **changes)
    if not config.run:
        raise UsageError("no run command: give --run './server {port}' or assignment.run")
    if "{port}" not in config.run and config.port is None:
        raise UsageError(f"the run command {config.run!r} has no {{port}}: add it or give --port")
    path = path.resolve() if path else None
    _check_adapter(config, path)
    return config, path


def _check_adapter(config: gradeconfig.GradingConfig, config_path: Path | None) -> None:
    """Build the config's protocol adapter now: a broken one is a usage error before any
    submission is built, not 0 points for every student. (The grader's own reports, for a
    submission the suite could not run against, use it too.)"""
    with _importable_from(gradeconfig.adapter_path(config_path)):
        protocols.configure(
            config.protocol, {"line_reply": config.line_reply, "http_path": config.http_path}
        )


@contextlib.contextmanager
def _importable_from(directories: list[str]) -> Iterator[None]:
    saved = list(sys.path)
    sys.path[:0] = directories
    try:
        yield
    finally:
        sys.path[:] = saved


def _netns_works() -> bool:
    """Can this process make network namespaces? Tried in a throwaway child."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            enter_netns()
            os._exit(0)
        except (SandboxError, OSError):
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


#: Locks held for the grader's lifetime: a uid is one grader's at a time.
_UID_LOCKS: list[int] = []
UID_SEARCH = 1000


def _slot_uids(base: int, jobs: int) -> list[int]:
    """`jobs` uids from `base` up that no user owns, no process runs as, and no other
    grader on this machine holds (an flock per uid), so concurrent graders never share one:
    the sandbox kills every process of its uids."""
    uids: list[int] = []
    for uid in range(base, base + UID_SEARCH):
        if len(uids) == jobs:
            break
        try:
            pwd.getpwuid(uid)
            continue  # a real user's uid
        except KeyError:
            pass
        fd = os.open(f"/tmp/conformance-grade-uid-{uid}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # another grader's slot
        if containment.slot_processes(uid, "-"):
            os.close(fd)
            continue
        _UID_LOCKS.append(fd)
        uids.append(uid)
    if len(uids) < jobs:
        raise UsageError(f"found only {len(uids)} free uids from {base}: choose --uid-base")
    return uids


def main(ns: argparse.Namespace) -> int:
    try:
        return _grade(ns)
    except (UsageError, gradeconfig.ConfigError, ValueError) as exc:
        print(f"conformance grade: {exc}", file=sys.stderr)
        return USAGE_EXIT


def _grade(ns: argparse.Namespace) -> int:
    directory = Path(ns.submissions)
    if not directory.is_dir():
        raise UsageError(f"{directory} is not a directory of submission folders")
    out_dir = Path(ns.out) if ns.out else directory.parent / f"{directory.name}-grades"
    config, config_path = _config(ns, directory)
    if ns.requirement:
        select(ns.requirement)  # a typo is a usage error now, not 200 failed runs later
    if ns.jobs < 1:
        raise UsageError("-j must be at least 1")
    index, count = parse_shard(ns.shard)
    names = discover(directory, out_dir, ns.only)
    mine = shard_of(names, index, count)
    root = os.geteuid() == 0
    jobs = max(1, min(ns.jobs, len(mine)))
    uids: list[int | None] = list(_slot_uids(ns.uid_base, jobs)) if root else [None] * jobs
    netns = ns.netns == "always" or (ns.netns == "auto" and root and _netns_works())
    isolation = _isolation(ns.sandbox)
    if ns.sandbox == "bwrap" and shutil.which("bwrap") is None:
        raise UsageError("--sandbox bwrap: bubblewrap (bwrap) is not installed")
    delegation, no_cgroup = (
        cgroups.delegation() if ns.cgroups == "auto" else (None, "--cgroups never")
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="conformance-grade-"))
    scratch.chmod(0o711)
    options = Options(
        config=config,
        config_path=config_path,
        out_dir=out_dir.resolve(),
        scratch=scratch,
        bwrap=ns.sandbox == "bwrap",
        isolate=isolation is None,
        netns=netns,
        requirements=tuple(ns.requirement),
        keep_work=ns.keep_work,
        cgroups=delegation,
    )
    everyone = names if not ns.only else discover(directory, out_dir, [])
    summary.write_class(out_dir, directory.resolve().name, everyone, f"{index}/{count}")
    _announce(len(names), mine, index, count, jobs, root, netns, out_dir)
    _announce_isolation(ns.sandbox, isolation)
    _announce_memory(config, delegation, no_cgroup)
    become_subreaper()
    results = _run_all(directory, mine, options, uids, ns.force, config)
    covered = in_summary(directory, out_dir, names, ns.only)
    graded, _ = summary.write(out_dir, covered, directory.resolve().name)
    if ns.keep_work:
        print(f"work directories kept in {scratch}", file=sys.stderr)
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    if results is not None and any(r.failed for r in results):
        broken = ", ".join(r.name for r in results if r.failed)
        print(f"conformance grade: the grader failed on {broken}: see above", file=sys.stderr)
        return 1
    if results is None:
        print(
            f"interrupted: {len(graded)} of {len(names)} have a report; the next run grades "
            "the rest (up-to-date reports are kept)",
            file=sys.stderr,
        )
        return INTERRUPTED_EXIT
    print(f"reports in {out_dir}/NAME/; class summary: {out_dir}/summary.md, {out_dir}/summary.csv")
    return 0


def _isolation(sandbox: str) -> str | None:
    """None if each submission gets a view of its own (`--sandbox auto`, where namespaces
    work), else why not."""
    if sandbox == "limits":
        return "--sandbox limits"
    if sandbox == "bwrap":
        return None  # bubblewrap gives the same view (sandbox.bwrap_argv)
    problem = isolation_problem()
    return None if problem is None else f"namespaces are not available here: {problem}"


#: What a submission can read when it has no view of its own (the README says the same).
EXPOSED = (
    "everything this machine lets {who} read, among them the class directory (every student's "
    "sources), the other submissions' work copies, the output directory (their reports, as "
    "they are written), the grading config, and every process's command line"
)


def _announce_isolation(sandbox: str, problem: str | None) -> None:
    """Said once, at start: what a submission can see."""
    if problem is None:
        how = "bubblewrap" if sandbox == "bwrap" else "namespaces"
        print(
            f"isolation ({how}): each build and server sees only its work directory, the "
            "system's read-only directories (/usr, /etc, ...) and a private /tmp, and only "
            "its own processes",
            file=sys.stderr,
        )
        return
    who = "the slot's uid" if os.geteuid() == 0 else "this user"
    print(
        f"WARNING: no isolation ({problem}): a submission can read {EXPOSED.format(who=who)}",
        file=sys.stderr,
    )


def _announce_memory(
    config: gradeconfig.GradingConfig, delegation: cgroups.Delegation | None, problem: str
) -> None:
    """Said once, at start: what bounds a submission's memory."""
    limits = config.limits
    if delegation is not None:
        print(
            f"memory ({delegation.describe()}): a cgroup per submission, at most "
            f"{limits.memory_mb} MiB and {limits.nproc} tasks for all its processes together; "
            "what is left of it is killed with the cgroup",
            file=sys.stderr,
        )
        return
    print(
        f"WARNING: no cgroup per submission ({problem}): each process may map "
        f"{limits.address_space_mb} MiB (RLIMIT_AS) and a submission may run {limits.nproc} "
        "processes, so nothing bounds their memory together",
        file=sys.stderr,
    )


def _announce(
    total: int, mine: list[str], index: int, count: int, jobs: int, root: bool, netns: bool,
    out_dir: Path,
) -> None:  # fmt: skip
    share = f" (shard {index}/{count})" if count > 1 else ""
    isolation = ("a uid per slot" if root else "resource limits only (not root: no uid drop)") + (
        ", a network namespace per submission" if netns else ""
    )
    print(
        f"grading {len(mine)} of {total} submissions{share}, {jobs} at a time; "
        f"sandbox: {isolation}; reports in {out_dir}",
        file=sys.stderr,
    )


def _run_all(
    directory: Path,
    names: list[str],
    options: Options,
    uids: list[int | None],
    force: bool,
    config: gradeconfig.GradingConfig,
) -> list[Result] | None:
    """Grade `names` in len(uids) slots; None when interrupted."""
    slots: queue.Queue[int | None] = queue.Queue()
    for uid in uids:
        slots.put(uid)
    # Without a namespace each, servers on one hard-coded port must take turns.
    fixed_port = config.port is not None and "{port}" not in (config.run or "")
    one_at_a_time = threading.Lock() if fixed_port and not options.netns else None
    if one_at_a_time is not None:
        print(
            f"port {config.port} is fixed and there are no network namespaces: "
            "one submission at a time",
            file=sys.stderr,
        )
    progress = Progress(len(names), len(uids))
    stop_reaper = threading.Event()
    reaper = threading.Thread(target=_reap_loop, args=(stop_reaper,), daemon=True)
    reaper.start()

    def one(name: str) -> Result:
        out = options.out_dir / name
        if not force and up_to_date(directory / name, out, options):
            result = load_result(name, out)
            progress.finish(name, _score(result), 0, reused=True)
            return result
        uid = slots.get()
        try:
            if CANCELLED.is_set():
                raise Cancelled(name)
            lock = one_at_a_time or contextlib.nullcontext()
            with lock:
                progress.start(name)
                result = Grader(name, (directory / name).resolve(), options, uid).grade()
        except Cancelled:
            raise
        except Exception:
            # A bug of the grader, not the student's fault: no report (the next run retries
            # it), the traceback for whoever runs the grader, and the other submissions go on.
            print(f"conformance grade: grading {name} failed:", file=sys.stderr)
            traceback.print_exc()
            result = Result(name, notes=["the grader failed on this submission"], failed=True)
        finally:
            slots.put(uid)
        progress.finish(name, _score(result), result.duration_s, reused=False)
        return result

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupted)
    pool = ThreadPoolExecutor(max_workers=len(uids))
    try:
        return list(pool.map(one, names))
    except (KeyboardInterrupt, Cancelled):
        CANCELLED.set()
        for pid in live_children():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        for group in live_cgroups():
            group.kill()
        for uid in uids:
            if uid is not None:
                containment.kill_all(None, uid, "-")
        pool.shutdown(wait=True, cancel_futures=True)
        return None
    finally:
        pool.shutdown(wait=True)
        signal.signal(signal.SIGTERM, previous)
        stop_reaper.set()
        reaper.join(timeout=5)
        reap_adopted(live_children())
        progress.close()


def _score(result: Result) -> str:
    return f"{result.score:g}/{result.max_score:g}" + (" (see notes)" if result.notes else "")


def _reap_loop(stop: threading.Event) -> None:
    while not stop.wait(1.0):
        reap_adopted(live_children())
