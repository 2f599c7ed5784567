"""The zoo's manifest: every test-subject server, its design, its one defect, and what should fail.

Each defective server differs from a correct one in exactly one place, so a check that fails on
it must be the check for that defect. ``expected_failures`` names the spec categories (see
``conformance/spec.py``) that should fail for the server run with ``protocol``; it is empty for
the correct servers, which are listed once per protocol. The C servers must be built first
(``build.py``), and so must the Java servers (``build_java_servers``, with javac); ``command()``
gives the command line for a build directory, with ``{port}`` left for the kit to fill in.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

HERE = Path(__file__).resolve().parent
C_DIR = HERE / "c"
PY_DIR = HERE / "py"
JAVA_DIR = HERE / "java"

Language = Literal["c", "python", "java"]
Protocol = Literal["ok", "echo"]


@dataclass(frozen=True, slots=True)
class ZooServer:
    name: str  # file name without extension: c/NAME.c, py/NAME.py; java/Name.java in CamelCase
    language: Language
    design: str  # fork, prefork, thread, pool, event-loop, iterative, or none
    defect: str | None  # None for a correct server
    protocol: Protocol  # the profile to run it with
    expected_failures: frozenset[str]

    @property
    def id(self) -> str:
        """Unique and readable, for test ids: ``c-no_reap-ok``."""
        return f"{self.language}-{self.name}-{self.protocol}"

    @property
    def breaks(self) -> frozenset[str]:
        """The requirements this server's defect is built to break (see BREAKS)."""
        extra = BREAKS_IN_C.get(self.defect or "", frozenset()) if self.language == "c" else set()
        return BREAKS.get(self.defect or "", frozenset()) | extra

    @property
    def java_class(self) -> str:
        """The Java class (and file) name: ``ok_fixed_pool`` -> ``OkFixedPool``."""
        return "".join(word.capitalize() for word in self.name.split("_"))

    @property
    def source(self) -> Path:
        if self.language == "java":
            return JAVA_DIR / f"{self.java_class}.java"
        return C_DIR / f"{self.name}.c" if self.language == "c" else PY_DIR / f"{self.name}.py"


def command(server: ZooServer, build_dir: Path) -> str:
    """The command line that starts `server`, with a literal ``{port}`` placeholder.

    C binaries and Java classes are looked up in `build_dir` (see build.py); Python servers
    run with this interpreter, Java ones with the ``java`` on PATH.
    """
    if server.language == "c":
        argv = [str(Path(build_dir) / server.name), "{port}"]
        if server.protocol == "echo":
            argv.append("echo")
    elif server.language == "java":
        argv = ["java", "-cp", str(build_dir), server.java_class, "{port}"]
        if server.protocol == "echo":
            argv.append("echo")
    else:
        argv = [sys.executable, "-S", str(server.source), "--port", "{port}"]
        if server.protocol == "echo":
            argv += ["--protocol", "echo"]
    return " ".join(arg if arg == "{port}" else shlex.quote(arg) for arg in argv)


def _cats(*names: str) -> frozenset[str]:
    return frozenset(names)


# name -> (design, expected failures). Each is built in both C and Python.
_DEFECTS: dict[str, tuple[str, frozenset[str]]] = {
    "no_reap": ("fork", _cats("zombies")),
    "reap_once": ("fork", _cats("zombies")),
    "child_keeps_listener": ("fork", _cats("fd-child")),
    # The client never sees EOF (EXIT-1, EXIT-2) and the parent gains one fd per session.
    "parent_keeps_conn": ("fork", _cats("fd-parent", "exit", "fd-leak")),
    # The server dies when its first session's child exits. The kit sees that before the
    # checks, so every check that needs a second session after one ended (CONC-4, EXIT-3/4,
    # ZOMB-1, FDL-*, EINTR-2/3) is blocked by EINTR-1 instead of failing with its own cause.
    "accept_eintr_fatal": ("fork", _cats("eintr")),
    "recv_eintr_disconnect": ("fork", _cats("eintr")),
    "serial": ("iterative", _cats("concurrency")),
    # Dies at the first client that leaves without exit (EXIT-2, EXIT-3).
    "sigpipe_eof": ("thread", _cats("exit")),
    "fd_leak": ("thread", _cats("fd-leak")),
    "thread_cap2": ("thread", _cats("concurrency")),
    "wrong_reply": ("thread", _cats("protocol")),
    "exit_no_close": ("thread", _cats("exit")),
    "shared_buffer": ("thread", _cats("isolation")),
    "busy_child": ("fork", _cats("exit")),
    "backlog3": ("thread", _cats("concurrency")),
    # FDL-2 (still growing over the last 50 of 200 sessions), and EXIT-4: the threads stay
    # after the sessions, and rounds of sessions one after another never stop adding one per
    # session, as a pool that reached its size would.
    "thread_leak": ("thread", _cats("fd-leak", "exit")),
    # Every session with a second message breaks, so concurrency, exit and eintr fail too
    # (CONC-2/4, EXIT-1/3, EINTR-2/3 all send more than one message on a connection).
    "one_message": ("thread", _cats("protocol", "concurrency", "exit", "eintr")),
    "no_exit_reply": ("thread", _cats("protocol")),
    "echo_cstring": ("thread", _cats("protocol")),
    # A fixed 64 KiB SO_SNDBUF (not a defect) makes the loss show with PROTO-5's 1 MiB.
    "partial_write": ("event-loop", _cats("protocol")),
    # Every reply goes to the newest connection, so any check with an older session still
    # open fails too: CONC-2/4 and EXIT-3 (its bystander), besides ISO-2.
    "shared_conn": ("thread", _cats("isolation", "concurrency", "exit")),
}

#: The requirements each defect is built to break: the matrix asserts they fail (besides the
#: exact categories above), and that together they cover every MUST in both languages.
BREAKS: dict[str, frozenset[str]] = {
    "no_reap": frozenset({"ZOMB-1"}),
    "reap_once": frozenset({"ZOMB-2"}),
    "child_keeps_listener": frozenset({"FDC-1"}),
    "parent_keeps_conn": frozenset({"FDP-1"}),
    "accept_eintr_fatal": frozenset({"EINTR-1"}),
    "recv_eintr_disconnect": frozenset({"EINTR-2"}),
    "serial": frozenset({"CONC-1", "CONC-4", "CONC-5"}),
    "sigpipe_eof": frozenset({"EXIT-2", "EXIT-3"}),
    "fd_leak": frozenset({"FDL-1"}),
    "thread_cap2": frozenset({"CONC-2"}),
    "wrong_reply": frozenset({"PROTO-1"}),
    "exit_no_close": frozenset({"EXIT-1"}),
    "shared_buffer": frozenset({"ISO-1"}),
    "busy_child": frozenset({"EXIT-4"}),
    "backlog3": frozenset({"CONC-3"}),
    "thread_leak": frozenset({"FDL-2"}),
    "one_message": frozenset({"PROTO-2"}),
    "no_exit_reply": frozenset({"PROTO-3"}),
    "echo_cstring": frozenset({"PROTO-4"}),
    "partial_write": frozenset({"PROTO-5"}),
    "shared_conn": frozenset({"ISO-2"}),
    "pool_unbounded": frozenset({"FDL-2", "EXIT-4"}),
    # Launch misbehaviours (Python only): the SHOULD on SIGTERM.
    "ignores_sigterm": frozenset({"EXIT-5"}),
    "setsid_forker": frozenset({"EXIT-5"}),
}

#: What only the C version breaks: Python retries a system call that an injected EINTR
#: interrupts (PEP 475), so its recv_eintr_disconnect hangs up only on a real signal.
BREAKS_IN_C: dict[str, frozenset[str]] = {"recv_eintr_disconnect": frozenset({"EINTR-3"})}

#: Defects that show only in the echo profile, so these run with it; the rest run with ok.
_ECHO_DEFECTS = frozenset({"shared_buffer", "echo_cstring", "partial_write"})

_CORRECT: dict[Language, dict[str, str]] = {
    "c": {"ok_fork": "fork", "ok_thread": "thread", "ok_epoll": "event-loop",
          "ok_prefork": "prefork"},
    "python": {"ok_fork": "fork", "ok_thread": "thread", "ok_selectors": "event-loop",
               "ok_asyncio": "event-loop", "ok_prefork": "prefork", "ok_lazy_pool": "pool"},
    # The JVM runs about twenty threads of its own. ok_fixed_pool is
    # Executors.newFixedThreadPool(128): a worker per session until 128, then no more.
    "java": {"ok_thread": "thread", "ok_fixed_pool": "pool"},
}  # fmt: skip

# Java only: name -> (design, expected failures).
_JAVA_DEFECTS: dict[str, tuple[str, frozenset[str]]] = {
    # Executors.newFixedThreadPool(Integer.MAX_VALUE): a new worker per session, for ever.
    # FDL-2 (still growing over the last 50 of 200 sessions), and EXIT-4: its threads stay
    # after the sessions, and rounds of sessions one after another never stop adding one
    # per session, as a pool that reached its size would.
    "pool_unbounded": ("pool", _cats("fd-leak", "exit")),
}

#: Python servers for the kit's launch error handling (see README.md): they are correct or never
#: serve at all; what they get wrong is how they start or stop.
LAUNCH_MISBEHAVIOURS: tuple[ZooServer, ...] = (
    ZooServer("exits_at_once", "python", "none", "exits_at_once", "ok", frozenset()),
    ZooServer("never_listens", "python", "none", "never_listens", "ok", frozenset()),
    ZooServer("stdout_flood", "python", "thread", "stdout_flood", "ok", frozenset()),
    # EXIT-5 (SHOULD): SIGTERM does not stop it.
    ZooServer("ignores_sigterm", "python", "thread", "ignores_sigterm", "ok", _cats("exit")),
    # EXIT-5 (SHOULD): its setsid() children survive the server.
    ZooServer("setsid_forker", "python", "thread", "setsid_forker", "ok", _cats("exit")),
)


def _zoo() -> tuple[ZooServer, ...]:
    servers: list[ZooServer] = []
    for language in ("c", "python", "java"):
        for name, design in _CORRECT[language].items():
            for protocol in ("ok", "echo"):
                servers.append(ZooServer(name, language, design, None, protocol, frozenset()))
        defects = _JAVA_DEFECTS if language == "java" else _DEFECTS
        for name, (design, failures) in defects.items():
            protocol = "echo" if name in _ECHO_DEFECTS else "ok"
            servers.append(ZooServer(name, language, design, name, protocol, failures))
    return tuple(servers)


#: Every correct and defective server, C, Python and Java (not the launch misbehaviours).
ZOO: tuple[ZooServer, ...] = _zoo()
CORRECT: tuple[ZooServer, ...] = tuple(s for s in ZOO if s.defect is None)
DEFECTIVE: tuple[ZooServer, ...] = tuple(s for s in ZOO if s.defect is not None)


def find(server_id: str) -> ZooServer:
    """The server with this id (``c-no_reap-ok``), from ZOO or LAUNCH_MISBEHAVIOURS."""
    for server in (*ZOO, *LAUNCH_MISBEHAVIOURS):
        if server.id == server_id:
            return server
    raise KeyError(f"no zoo server with id {server_id!r}")
