"""Grade one submission: copy it, build it, run the suite against it, write its reports.

Everything the submission does happens in other processes (a sandboxed build, then the kit in
a subprocess that launches the sandboxed server), so a submission that crashes, hangs, forks
without end or fills the disk can cost the grader time, never the grader itself. Each step has
a wall-clock limit, and when it ends, whatever the submission left running is killed (see
containment.py). What it could not do scores zero, with a note that says why.

Files written in OUT/NAME/: `report.json` (the kit's report, with scores), `results.json`
(Gradescope), `autolab.json` (Autolab's autoresult), `junit.xml` (one test case per
requirement), `build.log`, `run.log`, `grade.json`
(notes, timings and the fingerprint that makes a re-run skip it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

from conformance import __version__
from conformance import options as run_options
from conformance.errors import Refusal
from conformance.grade import autograders, containment
from conformance.grade.cgroups import CgroupError, Delegation, Group
from conformance.grade.config import DEBUG_ENV, GradingConfig, adapter_path, user_adapter
from conformance.grade.sandbox import Sandbox, netns_argv, tasks_of
from conformance.harness.processes import describe_exit

#: How often the watchdog looks at the clock, the disk and the process count.
WATCH_INTERVAL = 0.5
#: Seconds at the process limit after which a submission is treated as a fork bomb.
NPROC_SUSTAINED = 3.0
#: The share of its process limit at which the watchdog's samples count as the limit reached:
#: a correct server stays far below it (64 clients at once, 200 sessions' zombies, with the
#: default 512), and the samples miss the zombies the kernel counts, and the fastest peaks.
PROCESS_LIMIT_SEEN = 0.9
#: Between SIGTERM to the kit (it stops its servers and writes a partial report) and SIGKILL.
KIT_STOP_GRACE = 10.0
_SHELL_CHARS = set("|&;<>()$`\\\"'*?[]#~=%")
#: What a resource limit looks like when it ends a process, and what to tell the student.
LIMIT_SIGNS = {
    "SIGXFSZ": "a process was killed for writing a file larger than {file_size_mb} MiB "
    "(SIGXFSZ): does the server log every message to stdout or a file?",
    "SIGXCPU": "a process was killed after {cpu_s} s of CPU time (SIGXCPU): a busy loop?",
    "Resource temporarily unavailable": "fork() or pthread_create() failed: the submission "
    "reached its limit of {nproc} processes and threads",
}


#: Set when the grader is interrupted: running submissions stop at once and write nothing, so
#: an interrupted run never leaves a zero that a resumed run would take as up to date.
CANCELLED = threading.Event()


class Cancelled(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Options:
    config: GradingConfig
    config_path: Path | None
    out_dir: Path
    scratch: Path
    bwrap: bool = False
    netns: bool = False
    #: Each build and server sees only its work directory, the system's read-only
    #: directories and a private /tmp, in a PID namespace of its own (isolation.py).
    isolate: bool = False
    requirements: tuple[str, ...] = ()
    keep_work: bool = False
    #: Where a cgroup per submission can be made (memory and tasks of all its processes
    #: together); None: the per-process limits only.
    cgroups: Delegation | None = None


@dataclass
class Result:
    name: str
    score: float = 0.0
    max_score: float = 0.0
    notes: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    reused: bool = False
    #: The grader itself failed (a bug, not the submission): there is no report.
    failed: bool = False


def fingerprint(options: Options) -> str:
    """What a grade depends on besides the sources: config, seed, selection, kit version."""
    parts = [
        __version__,
        repr(options.config),
        options.config_path.read_text() if options.config_path else "",
        ",".join(options.requirements),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def newest_mtime(directory: Path) -> float:
    newest = directory.stat().st_mtime
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            with contextlib.suppress(OSError):
                newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
    return newest


def up_to_date(source: Path, out: Path, options: Options) -> bool:
    """A report newer than every source file, made with the same config: no need to regrade."""
    meta, report = out / "grade.json", out / "report.json"
    if not (meta.exists() and report.exists()):
        return False
    try:
        recorded = json.loads(meta.read_text()).get("fingerprint")
    except (OSError, ValueError):
        return False
    return recorded == fingerprint(options) and report.stat().st_mtime > newest_mtime(source)


def load_result(name: str, out: Path) -> Result:
    doc = json.loads((out / "report.json").read_text())
    meta = json.loads((out / "grade.json").read_text())
    return Result(
        name, doc["score"], doc["max_score"], meta.get("notes", []), meta["duration_s"], True
    )


def _command_argv(command: str) -> list[str]:
    return ["/bin/sh", "-c", command] if _SHELL_CHARS & set(command) else shlex.split(command)


def _join(argv: list[str]) -> str:
    """A command line the launcher runs without a shell when it can: a quoted word would
    make it use /bin/sh, whose exit status would then hide the signal that killed the server.
    The launcher's placeholders stay bare so it can fill them in."""
    bare = [a.replace("{port}", "").replace("{protocol}", "") for a in argv]
    return " ".join(
        a if b == shlex.quote(b) or not b else shlex.quote(a) for a, b in zip(argv, bare)
    )


class Grader:
    """Grades one submission in one slot (its own uid when root, its own ports or netns)."""

    def __init__(self, name: str, source: Path, options: Options, uid: int | None) -> None:
        self.name, self.source, self.options, self.uid = name, source, options, uid
        self.config = options.config
        self.out = options.out_dir / name
        self.base = options.scratch / name
        self.work = self.base / "work"
        self.kit_tmp = self.base / "kit-tmp"
        self.token = uuid.uuid4().hex
        self.notes: list[str] = []
        #: The most tasks the slot's uid ran at once, and the largest file seen: the
        #: evidence for a note when a limit stopped something before the kit could say so.
        self.peak_tasks = 0
        self.largest_file = 0
        #: The submission's cgroup while it is graded (None without one).
        self.cgroup: Group | None = None
        #: What the cgroup's kernel counters said at the end (oom_kill, pids_max).
        self.cgroup_events: dict[str, int] = {}
        self.cgroup_peak_mb: float | None = None
        self.sandbox = Sandbox(
            self.config.limits,
            uid,
            bwrap_dir=str(self.work) if options.bwrap else None,
            isolate_dir=str(self.work) if options.isolate and not options.bwrap else None,
        )

    # -- the steps --------------------------------------------------------------------------
    def grade(self) -> Result:
        t0 = time.monotonic()
        self._prepare()
        self._make_cgroup()
        try:
            doc = self._build_and_run()
            if CANCELLED.is_set():
                with contextlib.suppress(FileNotFoundError):
                    (self.out / "report.json").unlink()
                raise Cancelled(self.name)
        finally:
            if self.cgroup is not None:
                self.cgroup_peak_mb = self.cgroup.peak_mb()
                self.cgroup.remove()
                with _LIVE_LOCK:
                    _GROUPS.discard(self.cgroup)
            containment.kill_all(None, self.uid, self.token)
            if not self.options.keep_work:
                shutil.rmtree(self.base, ignore_errors=True)
        elapsed = time.monotonic() - t0
        self._write(doc, elapsed)
        score, most = cast(float, doc["score"]), cast(float, doc["max_score"])
        return Result(self.name, score, most, self.notes, elapsed)

    def _prepare(self) -> None:
        for stale in ("report.json", "results.json", "autolab.json", "grade.json", "junit.xml"):
            with contextlib.suppress(FileNotFoundError):
                (self.out / stale).unlink()
        self.out.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.base, ignore_errors=True)
        self.base.mkdir(parents=True)
        self.base.chmod(0o711)  # the sandbox user may pass through to work/, not list it
        shutil.copytree(self.source, self.work, symlinks=True)
        self.kit_tmp.mkdir(mode=0o700)
        if self.uid is not None:
            for root, dirs, files in os.walk(self.work):
                for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
                    os.lchown(name, self.uid, self.uid)

    def _make_cgroup(self) -> None:
        delegation = self.options.cgroups
        if delegation is None:
            return
        limits = self.config.limits
        try:
            self.cgroup = delegation.create(self.token, limits.memory_mb, limits.nproc)
        except CgroupError as exc:
            # The grader said at start that cgroups work: one that cannot be made now is
            # the machine's problem, not the student's. Grade with the per-process limits.
            print(f"conformance grade: {self.name}: {exc}", file=sys.stderr)
            return
        with _LIVE_LOCK:
            _GROUPS.add(self.cgroup)
        procs = tuple(str(d / "cgroup.procs") for d in self.cgroup.dirs)
        self.sandbox = dataclasses.replace(self.sandbox, cgroup_procs=procs)

    def _memory_stop(self) -> str | None:
        """Why the cgroup stopped the submission, if it did: the OOM killer ended one of its
        processes for the memory limit of all of them together."""
        if self.cgroup is None:
            return None
        self.cgroup_events = self.cgroup.events()
        if self.cgroup_events.get("oom_kill", 0) > 0:
            mb = self.config.limits.memory_mb
            return (
                f"its processes together used more than the memory limit of {mb} MiB "
                "(the kernel's OOM killer ended one of them)"
            )
        return None

    def _build_and_run(self) -> dict[str, object]:
        config = self.config
        if config.build:
            problem = self._build()
            if problem is not None:
                self.notes.append(problem)
                return self._unrun(problem)
        if not config.run:
            problem = "no run command: set assignment.run in the config or give --run"
            self.notes.append(problem)
            return self._unrun(problem)
        return self._run_suite()

    def _env(self) -> dict[str, str]:
        env = dict(
            os.environ,
            HOME=str(self.work),
            TMPDIR=str(self.kit_tmp),
            **{containment.TOKEN_VAR: self.token},
        )
        if user_adapter(self.config.protocol):
            # The config's own adapter is imported by the kit (never by the submission, whose
            # sandbox has an environment of its own) from the config's directory.
            paths = [*adapter_path(self.options.config_path), env.get("PYTHONPATH", "")]
            env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        return env

    def _build(self) -> str | None:
        assert self.config.build is not None
        # A network namespace of its own too: a build reaches nothing but its own loopback.
        script = self.config.build
        if self.config.debug_info:
            # Through the shell: the sandbox gives a submission only the variables it keeps.
            script = f"export {shlex.join(f'{k}={v}' for k, v in DEBUG_ENV.items())}; {script}"
        argv = self.sandbox.argv(["/bin/sh", "-c", script], netns=self.options.netns)
        with open(self.out / "build.log", "wb") as log:
            code, stopped = self._supervise(argv, log, self.config.build_timeout, "build")
        stopped = stopped or self._memory_stop()
        if stopped:
            return f"the build was stopped: {stopped}; see build.log"
        if code != 0:
            return f"the build {describe_exit(code)}: see build.log\n" + _tail(
                self.out / "build.log"
            )
        return None

    def _run_suite(self) -> dict[str, object]:
        config, report = self.config, self.out / "report.json"
        server = _join(self.sandbox.argv(_command_argv(config.run or "")))
        values = {
            **run_options.from_config(config),
            "server_cmd": server,
            "json_report": str(report),
            "grading_config": self.options.config_path,
            "requirement": list(self.options.requirements),
        }
        argv = [
            sys.executable, "-m", "conformance", "run", *run_options.cli_argv(values),
            "--junit-xml", str(self.out / "junit.xml"),
        ]  # fmt: skip
        argv += ["--", "-p", "no:cacheprovider"]
        if self.options.netns:
            argv = netns_argv(argv)
        with open(self.out / "run.log", "wb") as log:
            code, stopped = self._supervise(argv, log, config.timeout, "suite")
        return self._judged(report, code, stopped)

    def _unrun(self, reason: str) -> dict[str, object]:
        return autograders.unrun_report(
            self.config, reason, patterns=list(self.options.requirements)
        )

    # -- what the student is told -----------------------------------------------------------
    def _judged(self, report: Path, code: int, stopped: str | None) -> dict[str, object]:
        """The report the grade comes from, after the policy for a run the sandbox stopped.

        A run the watchdog stopped (a fork bomb, the disk limit, the wall-clock timeout), or
        in which the submission reached its process limit at any moment, is not judged at
        all: every requirement scores 0 and says "not judged: the run was stopped because
        ...", whatever the kit had checked before the stop. When the stop comes depends on
        the machine's load (how fast a bomb grows, how long each check takes, when the
        watchdog looks), so keeping the verdicts reached before it would give the same
        submission a grade that depends on how busy the grading machine was; and reaching the
        process limit, unlike the moment of the stop, does not depend on the load (a fork bomb
        reaches it during the first check that connects, busy machine or not). A process
        killed by a per-process limit (CPU time, file size) is not a stop: the kernel kills it
        at a point fixed by what it consumed, the run goes on, the checks judge what the
        server then did as they judge any crash, and a note names the limit.
        """
        stop = self._stop_reason(stopped)
        if stop is not None:
            self.notes.append(f"the run was stopped because {stop}: no requirement was judged")
            doc = self._unrun(f"the run was stopped because {stop}")
        elif report.exists() and "refusal" in (kit := json.loads(report.read_text())):
            why = f"the suite could not run: {refusal_text(kit['refusal'], self.config)}"
            self.notes.append(why)
            doc = self._unrun(why)
        elif report.exists():
            doc = _in_students_words(kit)
        else:
            # No report at all: the kit itself broke (or was killed); its log is the evidence.
            why = f"the suite could not run: the kit exited with status {code}"
            self.notes.append(why)
            doc = self._unrun(why + "\n" + _tail(self.out / "run.log"))
        self._note_limits(doc)
        return doc

    def _stop_reason(self, stopped: str | None) -> str | None:
        """Why the run does not count, in one wording per cause: reaching the process limit
        first, so a fork bomb reads the same whether or not the watchdog also stopped it.

        The limit counts as reached when the watchdog saw PROCESS_LIMIT_SEEN of it (it samples
        live tasks every WATCH_INTERVAL, and the kernel's count also holds the zombies it
        cannot see), or when the kernel refused to start a server because the submission's
        uid still held its limit (the sandbox wrapper's exec failed with EAGAIN), or the
        submission's cgroup refused a fork (pids.events). Then the cgroup's memory limit: an
        OOM kill in it stops the run as well, since which process the kernel picks, and when,
        depends on how the submission's processes raced; reaching the limit does not."""
        nproc = self.config.limits.nproc
        memory = self._memory_stop()  # reads the cgroup's counters
        refused = self.cgroup_events.get("pids_max", 0) > 0  # the cgroup refused a fork
        if (
            self.peak_tasks >= nproc * PROCESS_LIMIT_SEEN
            or refused
            or _start_refused(self.out / "report.json")
        ):
            return f"it reached its limit of {nproc} processes and threads (a fork bomb?)"
        return memory or stopped

    # -- supervision ------------------------------------------------------------------------
    def _supervise(
        self, argv: list[str], log: BinaryIO, limit: float, what: str
    ) -> tuple[int, str | None]:
        """Run argv in its own session under the watchdog; (exit status, why it was stopped)."""
        proc = subprocess.Popen(
            argv,
            cwd=self.work,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self._env(),
            start_new_session=True,
        )
        with _LIVE_LOCK:
            _LIVE.add(proc.pid)
        stopped: str | None = None
        deadline = time.monotonic() + limit
        at_limit_since: float | None = None
        try:
            while proc.poll() is None:
                now = time.monotonic()
                if CANCELLED.is_set():
                    stopped = "the grader was interrupted"
                elif now > deadline:
                    stopped = f"the {what} took longer than {limit:g} s"
                elif self._disk_used() > self.config.limits.disk_mb * 1024 * 1024:
                    stopped = f"it wrote more than {self.config.limits.disk_mb} MiB to disk"
                elif (memory := self._memory_stop()) is not None:
                    stopped = memory
                else:
                    # Not root, the slots share this user's uid: count the step's own tree.
                    tasks = (
                        tasks_of(self.uid)
                        if self.uid is not None
                        else containment.tasks_in_tree(proc.pid)
                    )
                    self.peak_tasks = max(self.peak_tasks, tasks)
                    busy = tasks >= self.config.limits.nproc - 2
                    at_limit_since = (at_limit_since or now) if busy else None
                    if at_limit_since is not None and now - at_limit_since > NPROC_SUSTAINED:
                        stopped = (
                            f"it kept {self.config.limits.nproc} processes and threads running "
                            f"(the limit) for {NPROC_SUSTAINED:g} s: a fork bomb?"
                        )
                if stopped:
                    # A graceful stop lets the kit write what it checked; not while a bomb it
                    # cannot be told apart from (no uid of its own) still forks.
                    bomb = at_limit_since is not None and self.uid is None
                    graceful = what == "suite" and not CANCELLED.is_set() and not bomb
                    self._stop(proc, graceful=graceful)
                    break
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(WATCH_INTERVAL)
            code = proc.wait()
        finally:
            if proc.poll() is None:
                self._stop(proc, graceful=False)
            with _LIVE_LOCK:
                _LIVE.discard(proc.pid)
            if self.cgroup is not None:
                self.cgroup.kill()  # whatever of the step is left, wherever it went
            containment.kill_all(proc.pid, self.uid, self.token)
        return code, stopped

    def _stop(self, proc: subprocess.Popen[bytes], graceful: bool) -> None:
        # The submission's own processes first, so a bomb cannot outrun the kit's cleanup.
        if self.cgroup is not None:
            self.cgroup.kill()
        if self.uid is not None:
            containment.kill_all(None, self.uid, "-")
        if graceful:
            # SIGTERM makes the kit stop its servers and write the report of what it checked.
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(KIT_STOP_GRACE)
        containment.kill_all(proc.pid, self.uid, self.token)

    def _disk_used(self) -> int:
        total, largest = containment.disk_usage([self.work, self.kit_tmp])
        self.largest_file = max(self.largest_file, largest)
        return total

    # -- notes and files --------------------------------------------------------------------
    def _note_limits(self, doc: dict[str, object]) -> None:
        text = "\n".join(str(r["detail"]) for r in _requirements(doc))
        limits = self.config.limits
        # The kit measures each server's output before it deletes it; the disk watch may
        # miss a file that lived between two of its looks.
        largest = max(self.largest_file, int(str(doc.get("largest_output_bytes", 0))))
        if largest >= limits.file_size_mb * 1024 * 1024:
            text += "SIGXFSZ"  # the writer died of it, even if the server did not
        for sign, note in LIMIT_SIGNS.items():
            if sign in text:
                self.notes.append(
                    note.format(
                        file_size_mb=limits.file_size_mb, cpu_s=limits.cpu_s, nproc=limits.nproc
                    )
                )

    def _write(self, doc: dict[str, object], elapsed: float) -> None:
        notes = [f"NOTE: {n}" for n in self.notes]
        doc = autograders.with_whole_scores(doc)
        autograders.write_json(doc, self.out / "report.json")
        autograders.write_json(
            autograders.gradescope(doc, self.config, notes, execution_time=elapsed),
            self.out / "results.json",
        )
        (self.out / "autolab.json").write_text(autograders.autolab(doc) + "\n")
        meta = {
            "name": self.name,
            "fingerprint": fingerprint(self.options),
            "duration_s": round(elapsed, 3),
            "notes": self.notes,
            "uid": self.uid,
            "netns": self.options.netns,
            "cgroup": None
            if self.cgroup is None
            else {
                "dirs": [str(d) for d in self.cgroup.dirs],
                "peak_memory_mb": self.cgroup_peak_mb,
                **self.cgroup_events,
            },
        }
        autograders.write_json(meta, self.out / "grade.json")


#: Pids of the Popen children being supervised, so the orphan reaper leaves them alone.
_LIVE: set[int] = set()
_LIVE_LOCK = threading.Lock()
#: The cgroups of the submissions being graded, killed at once when the grader is interrupted.
_GROUPS: set[Group] = set()


def live_cgroups() -> list[Group]:
    with _LIVE_LOCK:
        return list(_GROUPS)


def live_children() -> set[int]:
    with _LIVE_LOCK:
        return set(_LIVE)


def refusal_text(refusal: dict[str, Any], config: GradingConfig) -> str:
    """The kit's refusal record (its JSON report's `refusal`) in the grader's terms: the
    message without the sandbox wrapper, and the grader's own fix for a server that listens
    elsewhere (the run command's `{port}`, or the config's `port =`; a grader's run has no
    --port to give). The record's `fix` speaks of `conformance run`'s options: not used."""
    message = autograders.without_sandbox(str(refusal.get("message", "")))
    elsewhere = [int(p) for p in refusal.get("elsewhere", [])]
    if config.port is None:
        # The port is a free one drawn for this run: in the note it would make the same
        # submission's summary differ from one grading to the next (and a merge of shards
        # from one machine's grading), and the student could not use the number anyway.
        message = _DRAWN_PORT.sub(r"\1 the port it was given (`{port}`)", message)
        if refusal.get("kind") == "never-listened" and elsewhere:
            # The kit words this two ways, by which instance of the server bound the
            # hard-coded port first (a timing matter): the first line is said one way here.
            ports = ", ".join(map(str, elsewhere))
            rest = message.partition("\n")[2]
            message = (
                f"the server could not be started: it listens on port(s) {ports}, not on the "
                "port it was given (`{port}`)." + ("\n" + rest if rest else "")
            )
    fix = ""
    if refusal.get("kind") == "never-listened" and elsewhere:
        if config.port is None:
            fix = (
                f"It must listen on the port given in its arguments (the grader runs "
                f"`{config.run}` with a free port for `{{port}}`); if the assignment fixes the "
                f"port, the grading config says so with `port = {elsewhere[0]}` under "
                "[assignment] and a run command without `{port}`."
            )
        else:
            fix = (
                f"The grading config has `port = {config.port}` (the port every submission "
                f"must listen on) and runs `{config.run}`."
            )
    elif refusal.get("kind") == "never-listened":
        fix = (
            "If it is only slow to start, give it longer with `start_timeout = SECONDS` under "
            f"[assignment] (now {config.start_timeout:g} s)."
        )
    return Refusal(str(refusal.get("kind", "")), message, fix).text()


_DRAWN_PORT = re.compile(r"(did not listen on|before it listened on) port \d+")


def _start_refused(report: Path) -> bool:
    """Did the kernel refuse to start a server for the process limit? (The sandbox wrapper
    says so in the server's stderr, which the kit quotes in its report: in the refusal, or in
    a check that could not start its server.) Only the wrapper's own line counts: a server's
    "recv: Resource temporarily unavailable" is EAGAIN of a socket."""
    try:
        doc = json.loads(report.read_text())
    except (OSError, ValueError):
        return False
    texts = [str(doc.get("refusal", {}).get("message", ""))]
    texts += [str(r.get("detail", "")) for r in doc.get("requirements", [])]
    return any(
        "conformance.grade.sandbox: cannot run" in line and "temporarily unavailable" in line
        for text in texts
        for line in text.splitlines()
    )


def _in_students_words(doc: dict[str, object]) -> dict[str, object]:
    """The kit's report with what a student reads made for grading: a check that never ran
    says so in the grader's terms (a grader never deselects anything with -k)."""
    reqs = _requirements(doc)
    for r in reqs:
        detail = str(r["detail"])
        if r["outcome"] == "skipped" and ("deselected" in detail or "interrupted" in detail):
            r["detail"] = (
                autograders.NOT_JUDGED + "the suite ended before this check ran (see run.log)"
            )
    return doc


def _tail(path: Path, lines: int = 15) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def _requirements(doc: dict[str, object]) -> list[dict[str, object]]:
    """The report's requirement records (their shape is report.schema.json's)."""
    return cast(list[dict[str, object]], doc["requirements"])
