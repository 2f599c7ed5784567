"""The fixed-port zoo: tutorial-style C servers that hard-code their port, and what should fail.

Most student submissions are written from a course tutorial: `#define PORT 9822`, no
arguments, `bind()` to INADDR_ANY, `listen(fd, 128)`, an accept loop. The kit can only run such
a server with `--port N` (no `{port}` in the command), where every check needs the same port
free again for a fresh instance. These servers exist to prove that mode: the correct ones must
fail nothing, each defective one exactly what its defect breaks, whichever port they use.

Each `fixed/NAME.c` stands alone (no shared header, as a student's file would). The port is
hard-coded in the binary; `build()` compiles it with `-DPORT=N` so that a test can give each
build a port nobody else uses, and the kit still cannot tell it any other port.

``expected_failures`` are the spec categories (``conformance/spec.py``) that must be `failed`
in the JSON report; ``expected_failed_requirements`` are exactly the requirement IDs that must
be `failed`, SHOULDs included: a failed SHOULD does not fail its category without --strict, so
only this set shows it.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

FIXED_DIR = Path(__file__).resolve().parent / "fixed"
CC = "cc"
CFLAGS = ("-O1", "-Wall", "-pthread")


class BuildError(RuntimeError):
    """A fixed-port server did not compile cleanly; the message has the command and output."""


@dataclass(frozen=True, slots=True)
class FixedServer:
    name: str  # fixed/NAME.c
    design: str  # fork or thread
    defect: str | None  # None for a correct server
    expected_failures: frozenset[str]
    expected_failed_requirements: frozenset[str]
    #: Also run with --profile default: the correct designs, and the defect whose cascade the
    #: kit once got wrong (recv_eintr), where more examples give a cascade more chances.
    in_default_profile: bool = False

    @property
    def id(self) -> str:
        return self.name

    @property
    def source(self) -> Path:
        return FIXED_DIR / f"{self.name}.c"

    @property
    def fails_a_must(self) -> bool:
        """Whether the run must exit 1: a failed category means a failed MUST (no --strict)."""
        return bool(self.expected_failures)


def _ids(*names: str) -> frozenset[str]:
    return frozenset(names)


#: A server that closes its side first leaves the connection in TIME_WAIT on the server's
#: port; without SO_REUSEADDR a new instance cannot bind it for a minute. EXIT-6 (a SHOULD)
#: asks for the restart to work at once, so it is all that the *_noreuse servers fail.
_NO_REUSE = _ids("EXIT-6")

FIXED: tuple[FixedServer, ...] = (
    FixedServer("tut_fork_reuse", "fork", None, frozenset(), frozenset(), True),
    FixedServer("tut_fork_noreuse", "fork", "no SO_REUSEADDR", frozenset(), _NO_REUSE, True),
    FixedServer("tut_thread_reuse", "thread", None, frozenset(), frozenset(), True),
    FixedServer("tut_thread_noreuse", "thread", "no SO_REUSEADDR", frozenset(), _NO_REUSE, True),
    FixedServer(
        "tut_fork_no_reap",
        "fork",
        "no SIGCHLD handler and no waitpid(): zombies",
        frozenset({"zombies"}),
        _ids("ZOMB-1", "ZOMB-2"),
    ),
    # A signal storm (EINTR-2) and an injected EINTR (EINTR-3) both end sessions; the children
    # still exit and are reaped, and the parent retries accept(), so nothing else may fail.
    FixedServer(
        "tut_fork_recv_eintr",
        "fork",
        "read() failing with EINTR ends the session (SIGCHLD handler without SA_RESTART)",
        frozenset({"eintr"}),
        _ids("EINTR-2", "EINTR-3"),
        True,
    ),
    # As tests/servers/zoo.py's parent_keeps_conn: the client never sees EOF after `exit` or
    # its own EOF (EXIT-1, EXIT-2), and the parent gains one descriptor per session (FDL-1).
    FixedServer(
        "tut_fork_parent_keeps_conn",
        "fork",
        "the parent never closes the connected socket",
        frozenset({"fd-parent", "exit", "fd-leak"}),
        _ids("FDP-1", "EXIT-1", "EXIT-2", "FDL-1"),
    ),
    # no_reap + recv_eintr. With no signal handler at all, no signal interrupts read(), so the
    # storm (EINTR-2) passes; only EINTR injected by strace (EINTR-3) shows the second defect.
    FixedServer(
        "tut_fork_two_defects",
        "fork",
        "no_reap and recv_eintr together",
        frozenset({"zombies", "eintr"}),
        _ids("ZOMB-1", "ZOMB-2", "EINTR-3"),
    ),
    # The course tutorial's first thread server: recv()'s result unchecked (after EOF it
    # sends again and dies of SIGPIPE), connections never closed, one receive and one send
    # buffer for all threads. EXIT-1 (no close after exit), EXIT-2 (no close after EOF),
    # EXIT-3 (SIGPIPE), FDL-1 (descriptors), EINTR-3 (an injected EINTR is answered as a
    # message); EXIT-4 is blocked by EXIT-3 (its sessions that end by EOF kill the server).
    # Every run the same: the deaths are judged by what killed the server (deaths.py).
    FixedServer(
        "tut_thread_tutorial",
        "thread",
        "recv() unchecked (SIGPIPE after EOF), no close(), buffers shared by all threads",
        frozenset({"exit", "fd-leak", "eintr"}),
        _ids("EXIT-1", "EXIT-2", "EXIT-3", "FDL-1", "EINTR-3"),
        True,
    ),
)

#: Servers with more than one defect, whose defects interact: each must get the same failed
#: set every run (tests/checks/test_determinism.py).
MULTI_DEFECT = ("tut_fork_two_defects", "tut_thread_tutorial")


def find(name: str) -> FixedServer:
    """The manifest entry for `name`."""
    for server in FIXED:
        if server.name == name:
            return server
    raise KeyError(f"no fixed-port server named {name!r}")


def build(name: str, port: int, out_dir: Path) -> Path:
    """Compile fixed/NAME.c with its port hard-coded to `port`; returns the binary's path.

    Always rebuilt: the port is a compile-time constant, so a binary for another port would
    be wrong however new it is. A compiler warning fails the build too, because these files
    are meant to be what a careful student writes.
    """
    source = find(name).source
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    binary = out_dir / name
    argv = [CC, *CFLAGS, f"-DPORT={port}", "-o", str(binary), str(source)]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise BuildError(f"cannot compile {source.name}: C compiler {CC!r} not found") from exc
    if result.returncode != 0 or result.stderr.strip():
        raise BuildError(
            f"compiling {source.name} failed or warned (exit status {result.returncode})\n"
            f"$ {shlex.join(argv)}\n{result.stdout}{result.stderr}"
        )
    return binary
