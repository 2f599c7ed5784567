"""`conformance doctor`: what the kit needs from this machine, tried rather than guessed.

Each need is checked the way the kit will use it (strace is attached to a child process as
EINTR-3 attaches it to a server; the grader's sandbox is started once on a scratch directory),
and each missing one says what it costs (which requirements are skipped, which sandbox the
grader falls back to) and how to fix it. Exit status 0 when nothing the checks need is
missing (the optional needs serve grading and the kit's own tests), 1 otherwise.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from conformance.errors import FAILED_EXIT, OK_EXIT

YAMA = Path("/proc/sys/kernel/yama/ptrace_scope")


@dataclass(frozen=True)
class Finding:
    need: str
    ok: bool
    #: What was found (ok) or what is wrong (not ok).
    detail: str
    #: What the missing need costs: requirements skipped, the sandbox used instead.
    cost: str = ""
    fix: str = ""

    @property
    def optional(self) -> bool:
        """The kit checks servers fully without it (it serves grading or the kit's tests)."""
        return self.need in OPTIONAL


#: Needs that only grading or the kit's own tests have.
#: The stack tools too: a failure shows less without them, its verdict is the same.
OPTIONAL = frozenset(
    {"network namespaces", "bwrap", "C compiler", "eu-stack", "py-spy", "jcmd", "objdump"}
)


def linux() -> Finding:
    system = platform.system()
    if system == "Linux":
        return Finding("Linux", True, f"Linux {platform.release()}")
    return Finding(
        "Linux",
        False,
        f"this is {system}",
        cost="the kit cannot run: it reads /proc and the kernel's sock_diag to see a "
        "server's processes, descriptors and sockets",
        fix="run it on Linux (a virtual machine or a container will do)",
    )


def strace() -> Finding:
    path = shutil.which("strace")
    if path:
        return Finding("strace", True, path)
    return Finding(
        "strace",
        False,
        "not installed",
        cost="EINTR-3 (EINTR injected into accept/read/recv) is skipped, with this reason",
        fix="install it (Debian/Ubuntu: apt-get install strace)",
    )


def _ptrace_scope() -> str | None:
    try:
        return YAMA.read_text().strip()
    except OSError:
        return None


def ptrace() -> Finding:
    """Attach strace to a child of this process, as EINTR-3 attaches it to a launched server
    (a sibling of strace, which Yama's ptrace_scope=1 denies to a user without
    CAP_SYS_PTRACE)."""
    from conformance.harness.signals import StraceUnavailable, injected_eintr

    scope = _ptrace_scope()
    scope_text = f"kernel.yama.ptrace_scope={scope}" if scope is not None else "no Yama LSM"
    if shutil.which("strace") is None:
        return Finding(
            "ptrace permission",
            False,
            f"not tried: strace is missing ({scope_text})",
            cost="EINTR-3 is skipped",
            fix="install strace first",
        )
    child = subprocess.Popen(["sleep", "30"], stdin=subprocess.DEVNULL)
    try:
        with tempfile.TemporaryDirectory(prefix="conformance-doctor-") as tmp:
            try:
                with injected_eintr(child.pid, str(Path(tmp) / "strace.log")):
                    pass
            except StraceUnavailable as exc:
                fix = "run the kit as root, or let strace trace siblings: "
                fix += (
                    "sysctl kernel.yama.ptrace_scope=0 (Ubuntu's default is 1)"
                    if scope == "1"
                    else "give the kit CAP_SYS_PTRACE (a container: --cap-add SYS_PTRACE)"
                )
                return Finding(
                    "ptrace permission",
                    False,
                    f"{exc} ({scope_text})",
                    cost="EINTR-3 is skipped, with this reason",
                    fix=fix,
                )
    finally:
        child.kill()
        child.wait()
    return Finding("ptrace permission", True, f"strace attached to a child ({scope_text})")


def namespaces() -> Finding:
    """The grader's own probe: its sandbox started once (`--isolate`) on a scratch dir."""
    from conformance.grade.sandbox import isolation_problem

    who = "root" if os.geteuid() == 0 else "user namespaces (not root)"
    problem = isolation_problem()
    if problem is None:
        return Finding(
            "user namespaces or root",
            True,
            f"the grading sandbox starts, through {who}: each submission gets a view of its own",
        )
    return Finding(
        "user namespaces or root",
        False,
        problem,
        cost="`conformance grade --sandbox auto` falls back to resource limits only, without a "
        "view of its own: a submission can read everything "
        + ("its slot's uid" if os.geteuid() == 0 else "you (its user)")
        + " can read, the class directory included (the grader warns at start); "
        "`--sandbox bwrap` still works where bwrap is installed",
        fix="grade as root, or allow unprivileged user namespaces (Ubuntu 24.04: sysctl "
        "kernel.apparmor_restrict_unprivileged_userns=0; elsewhere user.max_user_namespaces>0)",
    )


def network_namespaces() -> Finding:
    """Root only: the grader gives each submission a network namespace of its own."""
    if os.geteuid() != 0:
        return Finding(
            "network namespaces",
            False,
            "not root",
            cost="`conformance grade` grades submissions that hard-code one port one at a time "
            "(with root, each gets a network namespace and they run side by side)",
            fix="grade as root for parallel grading of fixed-port submissions",
        )
    from conformance.grade.batch import _netns_works

    if _netns_works():
        return Finding("network namespaces", True, "a submission gets its own loopback")
    return Finding(
        "network namespaces",
        False,
        "unshare(CLONE_NEWNET) failed",
        cost="submissions that hard-code one port are graded one at a time",
        fix="a container needs CAP_SYS_ADMIN (docker: --cap-add SYS_ADMIN or --privileged)",
    )


def bwrap() -> Finding:
    path = shutil.which("bwrap")
    if path:
        return Finding("bwrap", True, path)
    return Finding(
        "bwrap",
        False,
        "not installed",
        cost="`conformance grade --sandbox bwrap` cannot be used; `--sandbox auto` does not "
        "need it",
        fix="install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap)",
    )


def c_compiler() -> Finding:
    for name in ("cc", "gcc", "clang"):
        path = shutil.which(name)
        if path:
            return Finding("C compiler", True, path)
    return Finding(
        "C compiler",
        False,
        "no cc, gcc or clang",
        cost="the kit's own tests skip the zoo's C servers (tests/servers/c), and C "
        "submissions cannot be built for grading; checking a server needs none",
        fix="install one (Debian/Ubuntu: apt-get install gcc)",
    )


#: What each stack tool reads, and which runtimes' servers it serves (stacks.py).
STACK_TOOLS = {
    "eu-stack": ("native", "C, C++ and Rust servers"),
    "py-spy": ("Python", "Python servers"),
    "jcmd": ("Java", "JVM servers"),
}


def _stack_tool(tool: str, argv: list[str] | None) -> Finding:
    """A stack tool found, and where `argv` is given, tried on a child of this process
    running it, as the kit reads a server it launched (a sibling of the tool, which Yama's
    ptrace_scope=1 denies to a user). jcmd is only looked for: trying it starts a JVM."""
    from conformance.harness import stacks

    what, servers = STACK_TOOLS[tool]
    need = tool
    cost = (
        f"a failure of a {what} server does not show where in its code its threads wait or "
        f"spin ({servers}); it says that {tool} is missing, and the verdict is the same"
    )
    path = stacks.find_tool(tool)
    if path is None:
        return Finding(need, False, "not installed", cost=cost, fix=stacks.INSTALL[tool])
    if argv is None:
        return Finding(need, True, f"{path}: reads the stacks of {servers} a failure names")
    from conformance.harness.polling import wait_until
    from conformance.harness.syscalls import current_call

    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    try:
        # Read once it sleeps: before that it may not have exec'd, or set up its interpreter.
        call = functools.partial(current_call, child.pid, child.pid)
        wait_until(lambda: (call() or ("",))[0].endswith("sleep"), 5.0)
        ref = stacks.ThreadRef(child.pid, child.pid, f"pid {child.pid}: the doctor's child")
        taken = stacks.take([ref])
    finally:
        child.kill()
        child.wait()
    stack = taken[0] if taken else None
    if stack is not None and stack.frames:
        return Finding(need, True, f"{path}: reads the stacks of {servers} a failure names (tried)")
    why = stack.note if stack is not None and stack.note else "no stack read"
    return Finding(
        need,
        False,
        f"{path} is installed but read no stack of a child: {why}",
        cost=cost,
        fix=stacks.PTRACE_REFUSED if "ptrace" in why else "run `conformance doctor` as root",
    )


def eu_stack() -> Finding:
    return _stack_tool("eu-stack", ["sleep", "30"])


def py_spy() -> Finding:
    return _stack_tool("py-spy", [sys.executable, "-S", "-c", "import time; time.sleep(30)"])


def jcmd() -> Finding:
    return _stack_tool("jcmd", None)


def objdump() -> Finding:
    """objdump (binutils) with eu-addr2line (elfutils, eu-stack's package): where a native
    server calls listen(), which CONC-3's failure shows (harness/callsites.py)."""
    from conformance.harness import callsites, stacks

    cost = (
        "CONC-3's failure on a native server (C, C++, Rust) does not name the line of its "
        "listen() call, only the backlog to search for; the verdict is the same"
    )
    missing = [t for t in (callsites.OBJDUMP, callsites.ADDR2LINE) if stacks.find_tool(t) is None]
    if missing:
        fix = " and ".join(callsites.INSTALL[t] for t in missing)
        return Finding("objdump", False, f"{', '.join(missing)} not installed", cost, fix)
    return Finding(
        "objdump",
        True,
        f"{stacks.find_tool(callsites.OBJDUMP)} and {stacks.find_tool(callsites.ADDR2LINE)}: "
        "find where a native server calls listen()",
    )


CHECKS: tuple[Callable[[], Finding], ...] = (
    linux,
    strace,
    ptrace,
    namespaces,
    network_namespaces,
    bwrap,
    c_compiler,
    eu_stack,
    py_spy,
    jcmd,
    objdump,
)


def findings() -> list[Finding]:
    if platform.system() != "Linux":
        return [linux()]
    return [check() for check in CHECKS]


def render(found: list[Finding]) -> list[str]:
    lines = []
    for f in found:
        status = "ok" if f.ok else "absent" if f.optional else "MISSING"
        lines.append(f"{status:<8} {f.need}{' (optional)' if f.optional else ''}: {f.detail}")
        if not f.ok:
            if f.cost:
                lines.append(f"{'':<8}   costs: {f.cost}")
            if f.fix:
                lines.append(f"{'':<8}   fix:   {f.fix}")
    missing = [f.need for f in found if not f.ok and not f.optional]
    absent = [f.need for f in found if not f.ok and f.optional]
    summary = f"missing {', '.join(missing)}" if missing else "nothing the checks need is missing"
    if absent:
        summary += f"; optional, absent: {', '.join(absent)}"
    lines.append(f"as uid {os.geteuid()}: {summary}")
    return lines


def add_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser(
        "doctor",
        help="check what the kit needs from this machine",
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="exit statuses: 0 nothing the checks need is missing (optional needs may be), "
        "1 something is (each says what it costs)",
    )


def main(ns: argparse.Namespace) -> int:
    found = findings()
    for line in render(found):
        print(line)
    sys.stdout.flush()
    return OK_EXIT if all(f.ok or f.optional for f in found) else FAILED_EXIT
