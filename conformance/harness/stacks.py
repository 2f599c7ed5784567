"""Where in its own source a server waits or spins: the stacks of the threads a failure names.

waiting.py says from /proc that a thread is blocked in read() on client A's connection; a
student still has to find which read() of theirs that is. The thread's stack says it:
`in serve() at server.c:41, called from main() at server.c:71`, and line 71 is the line to
change. Native code is read with elfutils' `eu-stack` (function, file and line with debug
information, function names without, nothing but addresses when stripped, and the failure
says which), Python with `py-spy dump`, the JVM with `jcmd PID Thread.print`. Other runtimes
(Go's goroutines, node, ruby, ...) are named as not covered.

A stack is taken by stopping the process (ptrace, or the JVM's attach), so it is taken only
once the check's verdict is in, never while a check measures: the plugin asks for it when it
makes the failed check's report, after the check's time was taken, bounded by
`STACKS_BUDGET` in all. docs/design.md says why eu-stack rather than gdb (measured).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

#: Seconds in all that one failure's stacks may take (every tool run together): a failing
#: run grows by at most this much per failure with stacks, and not at all elsewhere.
STACKS_BUDGET = 2.0
#: ...but a JVM gets this long: jcmd attaches to it through a socket the JVM opens only when
#: asked, which on a loaded 2-CPU machine took over 2 s (a failing Java run grows by it).
JVM_BUDGET = 6.0
#: At most this many different stacks are shown: a pool's hundred idle threads share one.
MAX_STACKS = 4
#: Frames read per thread, and frames of the server's own code shown in its summary line.
MAX_FRAMES = 48
OWN_SHOWN = 6
#: Set to 0 to never take stacks (e.g. where ptrace is not allowed and the tools complain).
DISABLE_ENV = "TCP_CONFORMANCE_STACKS"

EU_STACK = "eu-stack"
PY_SPY = "py-spy"
JCMD = "jcmd"

MISSING_TOOL = "{tool} is not installed here, so no {what} stack: {install}"
INSTALL = {
    EU_STACK: "apt-get install elfutils",
    PY_SPY: "pip install py-spy (the kit's test extra has it)",
    JCMD: "install a JDK (apt-get install default-jdk-headless)",
}
STRIPPED = (
    "the server's binary is stripped: no function, file or line to show. Build it with -g, "
    "and without strip or -s, to see them"
)
NO_DEBUG_INFO = (
    "the binary has no debug information: functions only. Build it with -g (CFLAGS=-g) "
    "to see the file and line"
)
NOT_COVERED = "the kit cannot read {runtime} stacks: where in the code it waits is not shown"
PTRACE_REFUSED = (
    "reading another process's stack needs ptrace: run the kit as root, or as the server's "
    "user with kernel.yama.ptrace_scope = 0 (the default 1 allows only a process's ancestors)"
)
TIMED_OUT = "{tool} did not answer within {seconds:.1f} s: no stack"

#: Interpreters whose stacks no tool of the kit reads (their native stack says nothing).
_UNCOVERED = {"node": "Node.js", "ruby": "Ruby", "perl": "Perl", "php": "PHP", "bun": "Bun"}
#: Go's magic in every binary it links (the build information section).
_GO_MAGIC = b"\xff Go buildinf:"
#: Frames of the C runtime around main(), never the server's own.
_START = frozenset({"_start", "__libc_start_main", "__libc_start_call_main"})
#: Paths of code that is not the server's: the C library's sources, Rust's std, crates.
_NOT_OWN_PREFIXES = ("/usr/", "/rustc/", "../")
#: A client named in a wait ("client C3's connection"): children serving different clients
#: in the same call run the same code.
_CLIENT = re.compile(r"client \S+'s")
#: The JVM's own packages.
_JAVA_LIBRARY = ("java.", "javax.", "jdk.", "sun.", "com.sun.")


@dataclass(frozen=True, slots=True)
class ThreadRef:
    """A thread a failure names, and what the failure says of it ("pid 4242 (main):
    read() on client A's connection")."""

    pid: int
    tid: int
    label: str
    #: The name of the kit's client whose connection the thread waits on, if one.
    client: str | None = None


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame, innermost first. `own` is the server's own code (not a library's)."""

    function: str
    file: str | None = None
    line: int | None = None
    own: bool = False
    source: str | None = None

    def place(self) -> str:
        where = f" at {_short(self.file)}:{self.line}" if self.file and self.line else ""
        return f"{self.function or '??'}(){where}"

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {"function": self.function, "own": self.own}
        if self.file is not None:
            data["file"] = self.file
        if self.line is not None:
            data["line"] = self.line
        if self.source is not None:
            data["source"] = self.source
        return data


@dataclass(frozen=True, slots=True)
class Stack:
    """A thread's stack, or why there is none (`note`, also set beside a partial stack)."""

    thread: ThreadRef
    runtime: str
    frames: tuple[Frame, ...] = ()
    note: str | None = None
    #: Other threads (or processes' main threads) with the same own frames: a pool's idle
    #: workers, a fork server's children.
    alike: tuple[int, ...] = field(default=())

    def own(self) -> list[Frame]:
        return [f for f in self.frames if f.own]

    def summary(self) -> str:
        """`in serve() at server.c:41, called from main() at server.c:71`."""
        own = self.own()
        if not any(f.function for f in own):
            return ""  # stripped: `note` says so, addresses would tell a student nothing
        more = f", ... ({len(own) - OWN_SHOWN} more)" if len(own) > OWN_SHOWN else ""
        return "in " + ", called from ".join(f.place() for f in own[:OWN_SHOWN]) + more

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "pid": self.thread.pid,
            "tid": self.thread.tid,
            "thread": self.thread.label,
            "runtime": self.runtime,
            "frames": [f.to_json() for f in self.frames],
        }
        if self.note:
            data["note"] = self.note
        if self.alike:
            data["same_stack_tids"] = list(self.alike)
        return data


def enabled() -> bool:
    return os.environ.get(DISABLE_ENV, "1") != "0"


def take(threads: Sequence[ThreadRef], budget: float = STACKS_BUDGET) -> list[Stack]:
    """The stacks of `threads`, one tool run per process, all within `budget` seconds.

    Stops each process for as long as its tool reads it: call this only once the verdict is
    in. Threads with the same own frames are folded into one stack (`alike`).
    """
    # A thread gone since the failure (a hypothesis example's server, stopped once the
    # example ended) has no stack to show, and its failure already says what it did.
    threads = [t for t in threads if os.path.exists(f"/proc/{t.pid}/task/{t.tid}")]
    if not threads or not enabled():
        return []
    deadline = time.monotonic() + budget
    by_pid: dict[int, list[ThreadRef]] = {}
    for ref in threads:
        by_pid.setdefault(ref.pid, []).append(ref)
    # A fork server's children that all wait the same way (the same calls on the same kinds
    # of descriptor) run the same code: one tool run stands for them all, within the budget.
    first: dict[tuple[str, ...], int] = {}
    same: dict[int, list[int]] = {}
    for pid, refs in by_pid.items():
        key = tuple(sorted(_CLIENT.sub("a client's", r.label.partition(": ")[2]) for r in refs))
        if key in first:
            same.setdefault(first[key], []).append(pid)
        else:
            first[key] = pid
    stacks: list[Stack] = []
    for pid in first.values():
        refs = by_pid[pid]
        left = deadline - time.monotonic()
        if runtime_of(pid) == "jvm":
            left = max(left, JVM_BUDGET - (budget - left))
        if left <= 0.05:
            stacks += [Stack(r, "unknown", note="no time left to read this stack") for r in refs]
            continue
        taken = _of_process(pid, refs, left)
        if taken and same.get(pid):
            taken[0] = replace(taken[0], alike=(*taken[0].alike, *same[pid]))
        stacks += taken
    return _fold(stacks)


def render(stacks: Iterable[Stack]) -> list[str]:
    """Evidence lines: per thread, what it waits in, its own frames innermost first, and the
    source lines they point at (the line to read is among them: a student's main() calling
    the helper that blocks)."""
    lines: list[str] = []
    for shown, stack in enumerate(stacks):
        if shown == MAX_STACKS:
            lines.append(f"{'':10}... and more threads (their stacks are in the JSON report)")
            break
        more = f" (and {len(stack.alike)} more alike)" if stack.alike else ""
        lines.append(f"{'Stack:' if not lines else '':10}{_who(stack.thread)}{more}")
        summary = stack.summary()
        if summary:
            lines.append(f"{'':12}{summary}")
        elif stack.frames and not stack.own():
            inner = ", called from ".join(f.place() for f in stack.frames[:OWN_SHOWN])
            lines.append(f"{'':12}in {inner} (no frame of the server's own code)")
        for frame in stack.own()[:OWN_SHOWN]:
            if frame.source is not None:
                lines.append(f"{'':14}{_short(frame.file)}:{frame.line}: {frame.source.strip()}")
        if stack.note:
            lines.append(f"{'':12}({stack.note})")
        elif not stack.frames:
            lines.append(f"{'':12}(no stack)")
    return lines


def _who(ref: ThreadRef) -> str:
    """The thread's label, with its id when it is not the process's main thread."""
    if ref.tid == ref.pid:
        return ref.label
    pid_part, sep, rest = ref.label.partition(": ")
    return f"{pid_part}, thread {ref.tid}{sep}{rest}"


# -- one process ------------------------------------------------------------------------------
def runtime_of(pid: int) -> str:
    """`native`, `python`, `jvm`, `go`, or an uncovered interpreter's name ("Node.js")."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return "unknown"
    name = os.path.basename(exe).removesuffix(" (deleted)")
    if name.startswith(("python", "pypy")):
        return "python"
    for prefix, runtime in _UNCOVERED.items():
        if name.startswith(prefix):
            return runtime
    maps = _maps(pid)
    if "/libjvm.so" in maps:
        return "jvm"
    if "/libpython" in maps:
        return "python"
    if _is_go(pid):
        return "go"
    return "native"


def _of_process(pid: int, refs: list[ThreadRef], timeout: float) -> list[Stack]:
    runtime = runtime_of(pid)
    if runtime == "unknown":
        return []  # exited (a zombie has no executable left): nothing to show
    tool, what, read = {
        "native": (EU_STACK, "native", _native),
        "python": (PY_SPY, "Python", _python),
        "jvm": (JCMD, "Java", _jvm),
    }.get(runtime, (None, runtime, None))
    if tool is None or read is None:
        runtime_name = "Go goroutine" if runtime == "go" else runtime
        uncovered = NOT_COVERED.format(runtime=runtime_name)
        return [Stack(r, runtime, note=uncovered) for r in refs]
    path = find_tool(tool)
    if path is None:
        missing = MISSING_TOOL.format(tool=tool, what=what, install=INSTALL[tool])
        return [Stack(r, runtime, note=missing) for r in refs]
    try:
        by_tid, note = read(path, pid, timeout)
    except subprocess.TimeoutExpired:
        late = TIMED_OUT.format(tool=tool, seconds=timeout)
        return [Stack(r, runtime, note=late) for r in refs]
    except _ToolFailed as exc:
        why = f"{tool} failed: {exc}"
        if "not permitted" in str(exc).lower() or "permission denied" in str(exc).lower():
            why += f"; {PTRACE_REFUSED}"
        return [Stack(r, runtime, note=why) for r in refs]
    stacks = []
    for ref in refs:
        frames = by_tid.get(ref.tid)
        if frames is None:
            stacks.append(Stack(ref, runtime, note=f"{tool} did not show this thread"))
        else:
            stacks.append(Stack(ref, runtime, tuple(_with_source(pid, frames)), note))
    return stacks


def find_tool(name: str) -> str | None:
    """The tool on PATH, or beside this interpreter (py-spy installed in the kit's virtual
    environment, which a run need not have activated)."""
    found = shutil.which(name)
    if found is None:
        beside = os.path.join(os.path.dirname(sys.executable), name)
        found = beside if os.access(beside, os.X_OK) else None
    return found


class _ToolFailed(Exception):
    """The tool ran and failed (the process went, ptrace was refused): its first line."""


def _run(argv: list[str], timeout: float) -> str:
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, errors="replace"
    )
    if result.returncode != 0 and not result.stdout.strip():
        first = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[0]
        raise _ToolFailed(first[:200])
    return result.stdout


# -- native: eu-stack -------------------------------------------------------------------------
#: `#1  0x0000560c9472230d - 1 serve_ok - /tmp/serial` (function empty when stripped); the
#: next line, indented, is `/path/common.h:148:21` when there is debug information.
_EU_FRAME = re.compile(r"^#\d+\s+0x[0-9a-f]+\s+(?:-\s+\d+\s)?\s*(?P<rest>.*)$")
_EU_TID = re.compile(r"^TID (\d+):")
_EU_SOURCE = re.compile(r"^\s+(?P<file>\S.*?):(?P<line>\d+)(?::\d+)?$")


def _native(tool: str, pid: int, timeout: float) -> tuple[dict[int, list[Frame]], str | None]:
    # -s: file and line, -i: inlined functions (serve() inlined into main() at -O1 is still
    # its own frame), -v: the module of each frame (the server's binary, or a library's).
    argv = [tool, "-s", "-i", "-v", "-n", str(MAX_FRAMES), "-p", str(pid)]
    out = _run(argv, timeout)
    try:
        exe = os.path.realpath(f"/proc/{pid}/exe").removesuffix(" (deleted)")
    except OSError:
        exe = ""
    by_tid = parse_eu_stack(out, exe)
    own = [f for frames in by_tid.values() for f in frames if f.own]
    in_exe = [f for frames in by_tid.values() for f in frames if f.function == "" or f.own]
    note = None
    if in_exe and not any(f.function for f in in_exe):
        note = STRIPPED
    elif own and not any(f.line for f in own):
        note = NO_DEBUG_INFO
    return by_tid, note


def parse_eu_stack(out: str, exe: str) -> dict[int, list[Frame]]:
    """eu-stack -s -i -v output by thread id; a frame is the server's own when it is in the
    server's binary (`exe`) and its file (if known) is not the C library's or Rust's."""
    by_tid: dict[int, list[Frame]] = {}
    frames: list[Frame] | None = None
    for line in out.splitlines():
        if m := _EU_TID.match(line):
            frames = by_tid.setdefault(int(m.group(1)), [])
            continue
        if frames is None:
            continue
        if m := _EU_FRAME.match(line):
            rest = m.group("rest")
            function, _, module = rest.rpartition(" - ")
            if not _ and rest.startswith("- "):
                function, module = "", rest[2:]
            function, module = function.strip(), module.strip()
            own = bool(exe) and module == exe and function not in _START
            frames.append(Frame(function, own=own))
        elif (m := _EU_SOURCE.match(line)) and frames:
            last = frames[-1]
            file = m.group("file")
            own = last.own and not file.startswith(_NOT_OWN_PREFIXES) and "/.cargo/" not in file
            frames[-1] = Frame(last.function, file, int(m.group("line")), own)
    return by_tid


# -- Python: py-spy ---------------------------------------------------------------------------
def _python(tool: str, pid: int, timeout: float) -> tuple[dict[int, list[Frame]], str | None]:
    out = _run([tool, "dump", "--pid", str(pid), "--json"], timeout)
    return parse_py_spy(out), None


def parse_py_spy(out: str) -> dict[int, list[Frame]]:
    """py-spy dump --json output by OS thread id; own frames are outside the interpreter's
    library (the standard library and site-packages)."""
    try:
        threads = json.loads(out)
    except json.JSONDecodeError as exc:
        raise _ToolFailed(f"unreadable output ({exc})") from None
    by_tid: dict[int, list[Frame]] = {}
    for thread in threads if isinstance(threads, list) else []:
        tid = thread.get("os_thread_id")
        if not isinstance(tid, int):
            continue
        frames = []
        for f in thread.get("frames", []):
            file = str(f.get("filename") or "")
            own = bool(file) and not file.startswith("<") and "/lib/python" not in file
            frames.append(Frame(str(f.get("name", "")), file or None, f.get("line"), own))
        by_tid[tid] = frames
    return by_tid


# -- the JVM: jcmd Thread.print ---------------------------------------------------------------
_JAVA_THREAD = re.compile(r'^"(?P<name>[^"]*)".*\bnid=(?P<nid>0x[0-9a-f]+|\d+)')
_JAVA_FRAME = re.compile(r"^\s+at (?P<fn>[^(]+)\((?P<where>[^)]*)\)")


def _jvm(tool: str, pid: int, timeout: float) -> tuple[dict[int, list[Frame]], str | None]:
    return parse_jcmd(_run([tool, str(pid), "Thread.print"], timeout), pid), None


def parse_jcmd(out: str, pid: int) -> dict[int, list[Frame]]:
    """jcmd Thread.print output by native thread id (`nid`, hex before JDK 19); own frames
    are outside the JDK's packages. Files are resolved against the server's directory."""
    by_tid: dict[int, list[Frame]] = {}
    frames: list[Frame] | None = None
    for line in out.splitlines():
        if m := _JAVA_THREAD.match(line):
            nid = m.group("nid")
            frames = by_tid.setdefault(int(nid, 16) if nid.startswith("0x") else int(nid), [])
        elif frames is not None and (m := _JAVA_FRAME.match(line)):
            fn, where = m.group("fn"), m.group("where")
            file, _, num = where.partition(":")
            own = not fn.startswith(_JAVA_LIBRARY)
            line_no = int(num) if num.isdigit() else None
            path = _java_source(pid, fn, file) if own and file.endswith(".java") else None
            frames.append(Frame(fn, path or (file or None), line_no, own))
    return by_tid


def _java_source(pid: int, fn: str, file: str) -> str | None:
    """The .java file beside the server's working directory or its class path, if there."""
    package = fn.rsplit(".", 2)[0].replace(".", "/") if fn.count(".") >= 2 else ""
    roots = [os.path.realpath(f"/proc/{pid}/cwd"), *_class_path(pid)]
    for root in roots:
        for candidate in (os.path.join(root, package, file), os.path.join(root, file)):
            if os.path.isfile(candidate):
                return candidate
    return None


def _class_path(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
    except OSError:
        return []
    for flag, value in itertools.pairwise(argv):
        if flag in ("-cp", "-classpath", "--class-path"):
            return [p for p in value.split(":") if os.path.isdir(p)]
    return []


# -- helpers ----------------------------------------------------------------------------------
def _with_source(pid: int, frames: list[Frame]) -> list[Frame]:
    """Own frames with the text of their line, where the server itself could read the file.

    Only what the server's own process may read is shown (its user and groups, in its mount
    namespace): debug information names whatever path its author wrote, and a grader runs as
    a user that reads every student's files; the sandbox's rules must hold for the report.
    """
    creds = _credentials(pid)
    out = []
    for frame in frames:
        if creds is not None and frame.own and frame.file and frame.line:
            text = _read_as(pid, frame.file, frame.line, *creds)
            if text is not None:
                frame = Frame(frame.function, frame.file, frame.line, True, text.rstrip("\n"))
        out.append(frame)
    return out


def _credentials(pid: int) -> tuple[int, frozenset[int], bool] | None:
    """(effective uid, groups, whether it shares our mount namespace) of the process."""
    try:
        ours = os.stat(f"/proc/{pid}/ns/mnt").st_ino == os.stat("/proc/self/ns/mnt").st_ino
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        uid = int(fields["Uid"].split()[1])
        groups = {int(fields["Gid"].split()[1]), *map(int, fields["Groups"].split())}
    except (OSError, KeyError, ValueError, IndexError):
        return None
    return uid, frozenset(groups), ours


def _read_as(
    pid: int, file: str, line: int, uid: int, groups: frozenset[int], ours: bool
) -> str | None:
    """Line `line` of `file` as the process `pid` names it, if that process may read it."""
    text = _text_as(pid, file, uid, groups, ours)
    if text is None:
        return None
    lines = text.splitlines(keepends=True)
    return lines[line - 1] if 0 < line <= len(lines) else None


def _text_as(
    pid: int, file: str, uid: int, groups: frozenset[int], ours: bool, limit: int = 4 << 20
) -> str | None:
    """The text of `file` (at most `limit` bytes) as the process `pid` names it, if that
    process may read it (callsites.py parses a Python server's whole script)."""
    if ours:
        path = file if os.path.isabs(file) else os.path.join(f"/proc/{pid}/cwd", file)
        path = os.path.realpath(path)
        if not _may_read(path, uid, groups):
            return None
        with contextlib.suppress(OSError, UnicodeDecodeError), open(path, encoding="utf-8") as f:
            return f.read(limit)
        return None
    # Another mount namespace (an isolated submission): walk its tree from its root, one
    # component at a time, following no symbolic link (one would be resolved against the
    # kit's root, and could name another student's file).
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None
    parts = [p for p in os.path.normpath(os.path.join(cwd, file)).split("/") if p]
    if ".." in parts or not parts:
        return None
    fds: list[int] = []
    try:
        fds.append(os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY))
        for part in parts[:-1]:
            if not _permits(os.fstat(fds[-1]), uid, groups, 0o1):
                return None
            fds.append(os.open(part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fds[-1]))
        if not _permits(os.fstat(fds[-1]), uid, groups, 0o1):
            return None
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fds[-1])
        fds.append(fd)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or not _permits(st, uid, groups, 0o4):
            return None
        with os.fdopen(os.dup(fd), encoding="utf-8") as f:
            return f.read(limit)
    except (OSError, UnicodeDecodeError):
        return None
    finally:
        for fd in fds:
            os.close(fd)


def _permits(st: os.stat_result, uid: int, groups: frozenset[int], bit: int) -> bool:
    """Whether `uid` (with `groups`) has permission `bit` (0o4 read, 0o1 search) on `st`."""
    if uid == 0:
        return True
    if st.st_uid == uid:
        return bool(st.st_mode & (bit << 6))
    if st.st_gid in groups:
        return bool(st.st_mode & (bit << 3))
    return bool(st.st_mode & bit)


def _may_read(path: str, uid: int, groups: frozenset[int]) -> bool:
    """Whether `uid` (with `groups`) may read the file `path` (resolved): read permission
    on it and search permission on every directory above it."""
    parent = os.path.dirname(path)
    while True:
        try:
            if not _permits(os.stat(parent), uid, groups, 0o1):
                return False
        except OSError:
            return False
        if parent == os.path.dirname(parent):
            break
        parent = os.path.dirname(parent)
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and _permits(st, uid, groups, 0o4)


def _fold(stacks: list[Stack]) -> list[Stack]:
    """Threads with the same frames shown once, with the others' ids in `alike`; and where
    some thread is in the server's own code, only those: a JVM's twenty threads of its own,
    waiting on locks, say nothing about the server."""
    if any(s.own() for s in stacks):
        stacks = [s for s in stacks if s.own()]
    first: dict[tuple[object, ...], int] = {}
    folded: list[Stack] = []
    for stack in stacks:
        frames = tuple((f.function, f.line) for f in (stack.own() or stack.frames))
        key = (stack.runtime, stack.note, frames)
        if key not in first:
            first[key] = len(folded)
            folded.append(stack)
            continue
        i = first[key]
        keep = folded[i]
        folded[i] = Stack(keep.thread, keep.runtime, keep.frames, keep.note,
                          (*keep.alike, stack.thread.tid))  # fmt: skip
    return folded


def _short(path: str | None) -> str:
    """A source path as a student reads it: relative to here when under it, else its name."""
    if not path:
        return "??"
    if os.path.isabs(path):
        with contextlib.suppress(ValueError):
            rel = os.path.relpath(path)
            if not rel.startswith(".."):
                return rel
        return os.path.basename(path)
    return path


def _maps(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/maps") as f:
            return f.read()
    except OSError:
        return ""


def _is_go(pid: int) -> bool:
    """Go binaries carry the build information's magic; read at most 64 MiB to find it."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/exe", "rb") as f:
        return _GO_MAGIC in f.read(64 << 20)
    return False
