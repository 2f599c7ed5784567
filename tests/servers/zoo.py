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
GO_DIR = HERE / "go"

Language = Literal["c", "python", "java", "go"]
Protocol = Literal["ok", "echo", "http"]


@dataclass(frozen=True, slots=True)
class ZooServer:
    name: str  # file name without extension: c/NAME.c, py/NAME.py, go/NAME.go; java/Name.java
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
        defect = BY_NAME.get(self.defect or "")
        extra = defect.breaks_only_in_c if defect and self.language == "c" else frozenset()
        return BREAKS.get(self.defect or "", frozenset()) | extra

    @property
    def java_class(self) -> str:
        """The Java class (and file) name: ``ok_fixed_pool`` -> ``OkFixedPool``."""
        return "".join(word.capitalize() for word in self.name.split("_"))

    @property
    def source(self) -> Path:
        if self.language == "java":
            return JAVA_DIR / f"{self.java_class}.java"
        if self.language == "go":
            return GO_DIR / f"{self.name}.go"
        return C_DIR / f"{self.name}.c" if self.language == "c" else PY_DIR / f"{self.name}.py"


def command(server: ZooServer, build_dir: Path) -> str:
    """The command line that starts `server`, with a literal ``{port}`` placeholder.

    C and Go binaries and Java classes are looked up in `build_dir` (see build.py); Python servers
    run with this interpreter, Java ones with the ``java`` on PATH.
    """
    if server.language in ("c", "go"):
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


@dataclass(frozen=True, slots=True)
class Defect:
    """Everything the zoo knows about one defect, in one place.

    `expected` are the categories that must fail, `breaks` the requirements it is built to
    break (the matrix asserts they fail, and that together the defects cover every MUST in
    each language); `why` says why `expected` holds more than the defect's own category.
    """

    name: str
    design: str
    expected: frozenset[str]
    breaks: frozenset[str]
    #: What only the C build breaks: Python retries a system call an injected EINTR
    #: interrupts (PEP 475), so its recv_eintr_disconnect hangs up only on a real signal.
    breaks_only_in_c: frozenset[str] = frozenset()
    #: It shows only in the echo profile, so it runs with echo.
    echo: bool = False
    #: The protocol it speaks, where that is neither teaching profile (the Tiny-style
    #: servers speak HTTP/1.0); None: ok (or echo, above).
    protocol: Protocol | None = None
    languages: tuple[Language, ...] = ("c", "python")
    why: str = ""


def _ids(*names: str) -> frozenset[str]:
    return frozenset(names)


DEFECTS: tuple[Defect, ...] = (
    Defect("no_reap", "fork", _cats("zombies"), _ids("ZOMB-1")),
    Defect("reap_once", "fork", _cats("zombies"), _ids("ZOMB-2")),
    Defect("child_keeps_listener", "fork", _cats("fd-child"), _ids("FDC-1")),
    Defect(
        "parent_keeps_conn",
        "fork",
        _cats("fd-parent", "exit", "fd-leak"),
        _ids("FDP-1"),
        why="the client never sees EOF (EXIT-1, EXIT-2) and the parent gains one descriptor "
        "per session (FDL-1)",
    ),
    Defect(
        "accept_eintr_fatal",
        "fork",
        _cats("eintr"),
        _ids("EINTR-1"),
        why="the server dies when its first session's child exits; the kit sees that before "
        "the checks, so every check that needs a second session after one ended (CONC-4, "
        "EXIT-3/4, ZOMB-1, FDL-*, EINTR-2/3) is blocked by EINTR-1 instead of failing",
    ),
    Defect(
        "recv_eintr_disconnect",
        "fork",
        _cats("eintr"),
        _ids("EINTR-2"),
        breaks_only_in_c=_ids("EINTR-3"),
    ),
    Defect(
        "serial",
        "iterative",
        _cats("concurrency"),
        _ids("CONC-1", "CONC-4", "CONC-5"),
        languages=("c", "python", "go"),
    ),
    Defect(
        "sigpipe_eof",
        "thread",
        _cats("exit"),
        _ids("EXIT-2", "EXIT-3"),
        why="it dies at the first client that leaves without exit",
    ),
    Defect("fd_leak", "thread", _cats("fd-leak"), _ids("FDL-1"), languages=("c", "python", "go")),
    Defect(
        "thread_cap2",
        "thread",
        _cats("concurrency"),
        _ids("CONC-2"),
        languages=("c", "python", "java"),
    ),
    Defect("wrong_reply", "thread", _cats("protocol"), _ids("PROTO-1")),
    Defect("exit_no_close", "thread", _cats("exit"), _ids("EXIT-1")),
    Defect("shared_buffer", "thread", _cats("isolation"), _ids("ISO-1"), echo=True),
    Defect("busy_child", "fork", _cats("exit"), _ids("EXIT-4")),
    Defect(
        "backlog3",
        "thread",
        _cats("concurrency"),
        _ids("CONC-3"),
        languages=("c", "python", "java"),
    ),
    Defect("winch_stops", "thread", _cats("eintr"), _ids("EINTR-2")),
    Defect(
        "epoll_blocking_eintr",
        "event-loop",
        _cats("eintr"),
        _ids("EINTR-3"),
        languages=("c",),
        why="C only: Python retries a system call EINTR interrupts by itself (PEP 475)",
    ),
    Defect(
        "thread_leak",
        "thread",
        _cats("fd-leak", "exit"),
        _ids("FDL-2"),
        why="FDL-2 (still growing over the last 50 of 200 sessions), and EXIT-4: the threads "
        "stay after the sessions, and more sessions never stop adding one each",
    ),
    Defect(
        "one_message",
        "thread",
        _cats("protocol"),
        _ids("PROTO-2"),
        why="the kit asks before the checks whether a connection carries a second message; "
        "every check that then fails for sending one is blocked by PROTO-2",
    ),
    Defect("no_exit_reply", "thread", _cats("protocol"), _ids("PROTO-3")),
    Defect("echo_cstring", "thread", _cats("protocol"), _ids("PROTO-4"), echo=True),
    Defect(
        "partial_write",
        "event-loop",
        _cats("protocol"),
        _ids("PROTO-5"),
        echo=True,
        why="a fixed 64 KiB SO_SNDBUF (not a defect) makes the loss show with PROTO-5's 1 MiB",
    ),
    Defect(
        "shared_conn",
        "thread",
        _cats("isolation", "concurrency", "exit"),
        _ids("ISO-2"),
        why="every reply goes to the newest connection, so any check with an older session "
        "open fails too: CONC-2/4 and EXIT-3 (its bystander), besides ISO-2",
    ),
    Defect(
        "no_reuseaddr",
        "thread",
        _cats(),
        _ids("EXIT-6"),
        languages=("python",),
        why="EXIT-6 is a SHOULD: it fails without failing its category (or the run) unless "
        "--strict; the tutorial-style C servers in tests/servers/fixed/ break it too",
    ),
    # Two defects in one server, as students write them: the verdict must be the same every
    # run, however the race between the defects falls (see tests/checks/test_determinism.py).
    Defect(
        "reap_once_accept_fatal",
        "fork",
        _cats("eintr"),
        _ids("EINTR-1"),
        languages=("c",),
        why="reap_once and accept_eintr_fatal together: the server dies when its first child "
        "exits, before it can show its zombies, so ZOMB-2 (the handler's defect) is blocked "
        "by EINTR-1, never passed",
    ),
    Defect(
        "global_cfd",
        "thread",
        _cats("concurrency"),
        _ids("CONC-2", "CONC-5"),
        languages=("c",),
        why="the descriptor reaches each thread through a global: when two accepts come "
        "close together two threads serve the newer connection and none the older; the "
        "model still reads thread, and the cause names the shared variable",
    ),
    Defect(
        "pool_unbounded",
        "pool",
        _cats("fd-leak", "exit"),
        _ids("FDL-2", "EXIT-4"),
        languages=("java",),
        why="Executors.newFixedThreadPool(Integer.MAX_VALUE): a new worker per session, for "
        "ever, so FDL-2 and EXIT-4 see the count still growing",
    ),
    # Tiny-style HTTP/1.0 (CS:APP): one request per connection, fork per connection.
    Defect(
        "tiny_no_reap",
        "fork",
        _cats("zombies"),
        _ids("ZOMB-1"),
        languages=("c",),
        protocol="http",
    ),
    Defect(
        "tiny_child_keeps_listener",
        "fork",
        _cats("fd-child"),
        _ids("FDC-1"),
        languages=("c",),
        protocol="http",
    ),
    Defect(
        "tiny_parent_keeps_conn",
        "fork",
        _cats("protocol", "fd-parent", "exit", "fd-leak"),
        _ids("FDP-1", "PROTO-6"),
        languages=("c",),
        protocol="http",
        why="the response says HTTP/1.0 (the server closes after it), and the parent's copy "
        "keeps the connection open: PROTO-6 (an announced close not made), EXIT-1/2 (no EOF) "
        "and FDL-1 (a descriptor per request), besides FDP-1",
    ),
    Defect(
        "tiny_accept_eintr_fatal",
        "fork",
        _cats("eintr"),
        _ids("EINTR-1"),
        languages=("c",),
        protocol="http",
        why="as accept_eintr_fatal: every check needing a second request after one ended is "
        "blocked by EINTR-1",
    ),
    # Stevens' double fork: the grandchild serves, reparented; the parent waits for the child.
    Defect("dfork_no_wait", "fork", _cats("zombies"), _ids("ZOMB-1"), languages=("c",)),
    Defect(
        "dfork_grandchild_keeps_listener",
        "fork",
        _cats("fd-child"),
        _ids("FDC-1"),
        languages=("c",),
    ),
    Defect(
        "dfork_parent_keeps_conn",
        "fork",
        _cats("fd-parent", "exit", "fd-leak"),
        _ids("FDP-1"),
        languages=("c",),
        why="as parent_keeps_conn: no EOF after exit (EXIT-1, EXIT-2), a descriptor per "
        "session (FDL-1)",
    ),
)
BY_NAME: dict[str, Defect] = {d.name: d for d in DEFECTS}

#: The requirements each defect is built to break (the launch misbehaviours too).
BREAKS: dict[str, frozenset[str]] = {
    **{d.name: d.breaks for d in DEFECTS},
    # Launch misbehaviours (Python only): the SHOULD on SIGTERM.
    "ignores_sigterm": _ids("EXIT-5"),
    "setsid_forker": _ids("EXIT-5"),
}

_CORRECT: dict[Language, dict[str, str]] = {
    # dfork: Stevens' double fork, read as `fork` (a process per connection, reparented);
    # ok_daemon: daemon(3) first, then as ok_fork; tiny_fork: HTTP/1.0 only (_ONLY_IN).
    "c": {"ok_fork": "fork", "ok_thread": "thread", "ok_epoll": "event-loop",
          "ok_epoll_eagain": "event-loop", "ok_prefork": "prefork", "dfork": "fork",
          "ok_daemon": "fork", "tiny_fork": "fork"},
    "python": {"ok_fork": "fork", "ok_thread": "thread", "ok_selectors": "event-loop",
               "ok_asyncio": "event-loop", "ok_prefork": "prefork", "ok_lazy_pool": "pool"},
    # The JVM runs about twenty threads of its own. ok_fixed_pool is
    # Executors.newFixedThreadPool(128): a worker per session until 128, then no more.
    "java": {"ok_thread": "thread", "ok_fixed_pool": "pool"},
    # Goroutines on Go's netpoller: no thread or process per connection.
    "go": {"ok_goroutine": "event-loop"},
}  # fmt: skip


#: Correct servers that speak one protocol only (the others speak ok and echo).
_ONLY_IN: dict[str, tuple[Protocol, ...]] = {"tiny_fork": ("http",)}


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


#: Every language of the zoo; the first three have a defect for every MUST (the matrix checks).
LANGUAGES: tuple[Language, ...] = ("c", "python", "java", "go")


def _zoo() -> tuple[ZooServer, ...]:
    servers: list[ZooServer] = []
    for language in LANGUAGES:
        for name, design in _CORRECT[language].items():
            for protocol in _ONLY_IN.get(name, ("ok", "echo")):
                servers.append(ZooServer(name, language, design, None, protocol, frozenset()))
        for d in DEFECTS:
            if language in d.languages:
                protocol: Protocol = d.protocol or ("echo" if d.echo else "ok")
                servers.append(ZooServer(d.name, language, d.design, d.name, protocol, d.expected))
    return tuple(servers)


#: Every correct and defective server, C, Python, Java and Go (not the launch misbehaviours).
ZOO: tuple[ZooServer, ...] = _zoo()
CORRECT: tuple[ZooServer, ...] = tuple(s for s in ZOO if s.defect is None)
DEFECTIVE: tuple[ZooServer, ...] = tuple(s for s in ZOO if s.defect is not None)


#: The languages in which the zoo breaks every MUST (PROTO-6 aside, and EINTR-3 in C only).
COVERING: tuple[Language, ...] = ("c", "python")
#: The profile the fast tier runs at: a defect breaks its rule at either profile (the full
#: matrix asserts the same failed set at both), and quick's fewer examples keep the README's
#: command under 5 minutes on 2 cores; the references pass at the default profile there.
FAST_PROFILE = "quick"
#: Servers with defects that interact (one hides or provokes the other): always in the fast
#: tier, whatever the cover below picks, since no single-defect server stands in for them.
INTERACTING = ("reap_once_accept_fatal", "global_cfd")


def _cover() -> frozenset[str]:
    """A small set of defective C and Python servers that together break every requirement
    any of them breaks: greedily, the server that breaks the most requirements not yet
    broken, C before Python (a C server starts and answers faster), then manifest order."""
    pool = [s for s in DEFECTIVE if s.language in COVERING]
    order = {s.id: i for i, s in enumerate(pool)}
    need = set().union(*(s.breaks for s in pool))
    chosen: set[str] = set()
    while need:
        best = min(pool, key=lambda s: (-len(s.breaks & need), s.language != "c", order[s.id]))
        chosen.add(best.id)
        need -= best.breaks
    return frozenset(chosen)


FAST_COVER: frozenset[str] = _cover()


def in_fast_tier(server: ZooServer, profile: str) -> bool:
    """Whether the README's test command runs the kit against `server` at `profile`.

    A rule over the manifest, never a list, so a server added to the zoo falls in or out by
    what it is: at the quick profile, a cover of the defective servers (`_cover`: every
    requirement the zoo breaks, broken by at least one of them, 22 runs where every defective
    C and Python server is 55) and the servers whose defects interact. That proves every MUST
    fails on a server built to break it (test_matrix asserts the fast tier still covers them,
    so the guarantee cannot rot), and the references at the default profile prove that every
    check passes (test_references.py). The rest of the matrix (the other defective servers,
    the correct ones, Java and Go, the default profile) runs with --full-matrix: it adds
    languages, designs and runtimes the checks must not misjudge, not a rule left unproven.
    """
    return profile == FAST_PROFILE and (server.id in FAST_COVER or server.name in INTERACTING)


def find(server_id: str) -> ZooServer:
    """The server with this id (``c-no_reap-ok``), from ZOO or LAUNCH_MISBEHAVIOURS."""
    for server in (*ZOO, *LAUNCH_MISBEHAVIOURS):
        if server.id == server_id:
            return server
    raise KeyError(f"no zoo server with id {server_id!r}")
