"""The spec as data: every requirement the kit checks, with its ID, level, category and text.

This registry is the one source of truth. `SPEC.md` is rendered from it (a kit test keeps the
two equal), failure messages quote it, and the JSON report copies its titles. A check names
its requirement with `@requirement("ID")` and takes everything else from here, so the text a
student reads in a failure is the text of the spec, word for word.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from conformance.errors import UsageError

Level = Literal["MUST", "SHOULD"]

#: Default points per level when a requirement names none: a SHOULD is advice, worth nothing
#: unless a grading config says otherwise (see conformance/grade/config.py, `points_of`).
DEFAULT_POINTS: dict[str, float] = {"MUST": 1, "SHOULD": 0}
#: `ok` and `echo` are the teaching profiles; `adapter`: requirements written for every other
#: protocol adapter that declares them (see conformance/protocols/).
Protocol = Literal["ok", "echo", "adapter"]

#: Category names are part of the JSON report's stable format: graders key on them.
CATEGORIES: tuple[str, ...] = (
    "protocol",
    "concurrency",
    "exit",
    "zombies",
    "fd-child",
    "fd-parent",
    "fd-leak",
    "eintr",
    "isolation",
)

BOTH: tuple[Protocol, ...] = ("ok", "echo")


@dataclass(frozen=True, slots=True)
class Requirement:
    id: str
    level: Level
    category: str
    title: str
    #: What goes wrong in a real server without it: the "why" a student reads.
    why: str
    protocols: tuple[Protocol, ...] = BOTH
    #: Server models the requirement applies to; None means every model.
    models: tuple[str, ...] | None = None
    #: True when checking it needs a server the kit launched (it kills or traces it).
    launch_only: bool = False
    #: True when its check measures the whole server and needs it quiet (no other clients).
    needs_quiet: bool = False
    #: Points when graded; None means the level's default (DEFAULT_POINTS). A grading
    #: config overrides them per requirement, category or level.
    points: float | None = None

    @property
    def default_points(self) -> float:
        return DEFAULT_POINTS[self.level] if self.points is None else self.points

    @property
    def prefix(self) -> str:
        return self.id.split("-")[0]


FORK: tuple[str, ...] = ("fork",)

REQUIREMENTS: tuple[Requirement, ...] = (
    # -- protocol ---------------------------------------------------------------------------
    Requirement(
        "PROTO-1",
        "MUST",
        "protocol",
        "Every message of 1 to 1023 bytes, whatever its bytes, gets exactly the 5-byte reply "
        "`OK!!!` and nothing more.",
        "Clients read a fixed 5-byte reply: an added newline or a short reply desynchronises "
        "every later exchange.",
        protocols=("ok",),
        points=2,
    ),
    Requirement(
        "PROTO-2",
        "MUST",
        "protocol",
        "A connection carries any number of messages, each answered in order, until the client "
        "ends the session.",
        "A server that answers only the first message leaves every later request unanswered.",
        protocols=("ok",),
    ),
    Requirement(
        "PROTO-3",
        "MUST",
        "protocol",
        "The message `exit` is answered with exactly `OK!!!`.",
        "The client waits for the acknowledgement of `exit` before it closes; without it, it "
        "cannot tell a clean end from a crash.",
        protocols=("ok",),
    ),
    Requirement(
        "PROTO-4",
        "MUST",
        "protocol",
        "Every byte received is echoed back, in order, however the client splits its writes.",
        "Echo is the simplest byte-exact protocol; a server that drops, reorders or adds bytes "
        "corrupts any stream carried over it.",
        protocols=("echo",),
    ),
    Requirement(
        "PROTO-5",
        "MUST",
        "protocol",
        "A stream of 1 MiB or more is echoed completely: partial writes are finished.",
        "send() may write fewer bytes than asked when the socket buffer is full; a server that "
        "ignores its return value silently loses data under load.",
        protocols=("echo",),
    ),
    Requirement(
        "PROTO-6",
        "MUST",
        "protocol",
        "Every request gets one complete, well-formed reply within 1 s, in order, several per "
        "connection, unless a reply says the server closes the connection after it (HTTP/1.0, "
        "Connection: close), and then it does (the protocol adapter says what a request and "
        "its reply are).",
        "A client of any request/response protocol waits for each reply before it goes on; a "
        "missing, short or malformed reply stalls or desynchronises every later exchange.",
        protocols=("adapter",),
    ),
    # -- concurrency ------------------------------------------------------------------------
    Requirement(
        "CONC-1",
        "MUST",
        "concurrency",
        "A connected client that sends nothing does not delay another client: the other's "
        "message is answered within 1 s.",
        "One idle or slow client (a student's telnet left open) freezes the service for everybody.",
        points=2,
    ),
    Requirement(
        "CONC-2",
        "MUST",
        "concurrency",
        "At least 64 clients connected at once are all served, with their round trips interleaved.",
        "A cap on sessions (a fixed thread or process pool that is too small) makes clients "
        "beyond it wait for others to leave.",
    ),
    Requirement(
        "CONC-3",
        "MUST",
        "concurrency",
        "64 back-to-back connection attempts all connect within 1 s.",
        "A listen backlog that is too small makes the kernel drop SYNs; each dropped SYN costs "
        "the client a 1 s retransmit.",
    ),
    Requirement(
        "CONC-4",
        "MUST",
        "concurrency",
        "A session in progress does not make another wait: while one client keeps its session "
        "open, others complete whole sessions, each reply within 1 s.",
        "A server that finishes one session before it starts the next serves one user at a time.",
    ),
    Requirement(
        "CONC-5",
        "MUST",
        "concurrency",
        "Under any interleaving of connects, messages, exits, closes, resets and signal bursts "
        "across several clients, every open client is answered within 1 s.",
        "Real clients do not take turns; bugs hide in the orders nobody tried by hand.",
    ),
    # -- exit -------------------------------------------------------------------------------
    Requirement(
        "EXIT-1",
        "MUST",
        "exit",
        "After replying to `exit`, the server closes the connection within 1 s.",
        "The client waits for EOF to know the session is over; without the close it hangs, "
        "and the server holds the descriptor forever.",
        protocols=("ok",),
    ),
    Requirement(
        "EXIT-2",
        "MUST",
        "exit",
        "When the client ends its side (EOF), the server closes its side within 1 s, after "
        "answering or echoing everything it received.",
        "recv() returning 0 means the peer is gone; a server that ignores it spins on recv() "
        "or writes to a closed connection.",
    ),
    Requirement(
        "EXIT-3",
        "MUST",
        "exit",
        "A client that resets its connection at any moment, also just before the server "
        "writes, leaves the server running and other sessions untouched.",
        "Writing to a reset connection raises SIGPIPE, whose default action kills the whole "
        "server; ECONNRESET from recv() must end only that session.",
    ),
    Requirement(
        "EXIT-4",
        "MUST",
        "exit",
        "Once a session ends, the process or thread that served it is gone within 1 s (a "
        "pool may keep its workers, processes or threads, if it stops growing), and nothing "
        "keeps burning CPU.",
        "A child or thread that outlives its session (or spins after it) exhausts processes, "
        "threads or CPU after a few thousand clients.",
        needs_quiet=True,
    ),
    Requirement(
        "EXIT-5",
        "SHOULD",
        "exit",
        "On SIGTERM the server exits within 2 s and leaves no child processes behind.",
        "Service managers stop servers with SIGTERM; children left behind keep serving stale "
        "code and hold the port.",
        launch_only=True,
    ),
    Requirement(
        "EXIT-6",
        "SHOULD",
        "exit",
        "After the server stops while a client is still connected, a new instance of it "
        "listens on the same port at once (SO_REUSEADDR).",
        "The stopped server's end of that connection stays bound to the port for a minute; "
        "without SO_REUSEADDR a restart (after a crash, a deploy, the next test run) fails "
        "with 'Address already in use' until the kernel lets it go.",
        launch_only=True,
    ),
    # -- zombies ----------------------------------------------------------------------------
    Requirement(
        "ZOMB-1",
        "MUST",
        "zombies",
        "No zombie children remain once sessions have ended (judged over a 1 s grace period, "
        "never from one sample).",
        "Each unreaped child keeps a process-table slot; after enough sessions fork() fails "
        "and the server stops serving.",
        models=FORK,
        needs_quiet=True,
    ),
    Requirement(
        "ZOMB-2",
        "MUST",
        "zombies",
        "When 50 or more children exit together, none is left a zombie.",
        "Signals coalesce: 50 children exiting at once may deliver one SIGCHLD, so a handler "
        "that calls waitpid() once per signal leaves the rest as zombies.",
        models=FORK,
        needs_quiet=True,
    ),
    # -- fd-child ---------------------------------------------------------------------------
    Requirement(
        "FDC-1",
        "MUST",
        "fd-child",
        "A child serving a connection does not hold the listening socket.",
        "A child holding the listener keeps the port open after the parent dies and can "
        "accept connections it never serves.",
        models=FORK,
    ),
    # -- fd-parent --------------------------------------------------------------------------
    Requirement(
        "FDP-1",
        "MUST",
        "fd-parent",
        "After handing a connection to a child, the parent does not keep the connected socket.",
        "The connection stays open as long as the parent holds it: the client never sees EOF "
        "and the parent runs out of descriptors.",
        models=FORK,
    ),
    # -- fd-leak ----------------------------------------------------------------------------
    Requirement(
        "FDL-1",
        "MUST",
        "fd-leak",
        "The server's open descriptors come back to their baseline after 200 sessions.",
        "A descriptor lost per session ends in EMFILE: accept() fails and the server stops "
        "serving after about a thousand clients.",
        needs_quiet=True,
    ),
    Requirement(
        "FDL-2",
        "MUST",
        "fd-leak",
        "The server's thread count stops growing: over 200 sessions it may rise to a plateau "
        "(a pool), but not over the last 50, and the threads kept are idle.",
        "A thread that never ends keeps its stack (8 MiB of address space by default) until "
        "thread creation fails.",
        needs_quiet=True,
    ),
    # -- eintr ------------------------------------------------------------------------------
    Requirement(
        "EINTR-1",
        "MUST",
        "eintr",
        "A child exiting while the parent is blocked in accept() does not stop the server: it "
        "goes on accepting.",
        "SIGCHLD interrupts accept(); without SA_RESTART it returns -1 with errno EINTR, and a "
        "server that treats that as fatal dies after its first client leaves.",
        models=FORK,
    ),
    Requirement(
        "EINTR-2",
        "MUST",
        "eintr",
        "Storms of signals whose default action is harmless (SIGCHLD, SIGWINCH, SIGURG), sent "
        "to the server and its children during sessions, end no session, and the server keeps "
        "accepting.",
        "Any signal with a handler interrupts blocking calls; a server that treats EINTR from "
        "recv() as a disconnect drops clients whenever a signal arrives.",
    ),
    Requirement(
        "EINTR-3",
        "MUST",
        "eintr",
        "When accept, accept4, read and recv calls on blocking descriptors fail with EINTR "
        "(injected with strace), the server retries them: every session completes and the "
        "server keeps accepting.",
        "A signal caught by a handler installed without SA_RESTART (as some runtimes and "
        "libraries install theirs) makes a blocked accept, read or recv fail with EINTR; with "
        "a receive timeout (SO_RCVTIMEO) accept and recv fail so even with SA_RESTART, and "
        "even after a mere stop and SIGCONT (signal(7)). A plain blocking accept or recv is "
        "restarted after a stop, and a call on a non-blocking socket never sleeps, so no signal "
        "interrupts it: the kit injects EINTR only into calls on blocking descriptors.",
        launch_only=True,
    ),
    # -- isolation --------------------------------------------------------------------------
    Requirement(
        "ISO-1",
        "MUST",
        "isolation",
        "Concurrent sessions sending distinct data receive only their own bytes back.",
        "A receive buffer shared between threads hands one client's data to another: a privacy "
        "leak and corrupted streams.",
        protocols=("echo",),
    ),
    Requirement(
        "ISO-2",
        "MUST",
        "isolation",
        "Each reply goes to the connection that sent the message: concurrent clients each get "
        "exactly one reply per message.",
        "A connection descriptor kept in a shared variable makes a thread answer on another "
        "client's socket.",
        protocols=("ok",),
    ),
)

BY_ID: dict[str, Requirement] = {r.id: r for r in REQUIREMENTS}


def select(patterns: list[str] | None) -> list[Requirement]:
    """The requirements named by IDs or ID prefixes (`CONC`, `CONC-2`); all when none given.

    Raises UsageError (a ValueError) naming the pattern when one matches nothing, so a typo is
    not a silent empty run.
    """
    if not patterns:
        return list(REQUIREMENTS)
    chosen: dict[str, Requirement] = {}
    for pattern in patterns:
        wanted = pattern.strip().upper()
        matches = [
            r
            for r in REQUIREMENTS
            if r.id == wanted or r.prefix == wanted.rstrip("-") or r.category == pattern.strip()
        ]
        if not matches:
            known = ", ".join(r.id for r in REQUIREMENTS)
            raise UsageError(f"--requirement {pattern!r} matches no requirement (known: {known})")
        chosen.update((r.id, r) for r in matches)
    return [r for r in REQUIREMENTS if r.id in chosen]


def render_markdown() -> str:
    """SPEC.md, rendered from the registry (run `conformance list --markdown > SPEC.md`)."""
    lines = [
        "# Conformance spec for concurrent TCP servers",
        "",
        "<!-- Generated from conformance/spec.py by `conformance list --markdown`. "
        "Do not edit by hand. -->",
        "",
        "The key words MUST and SHOULD are to be interpreted as described in RFC 2119. A MUST",
        "that fails fails the run; a SHOULD is reported and fails the run only with `--strict`.",
        "",
        "## The protocol",
        "",
        "- Profile `ok` (default): the client sends a message of 1..1023 bytes in one send and",
        "  waits for the reply; the server replies exactly the 5 bytes `OK!!!` (no newline) per",
        "  message. The message `exit` gets `OK!!!`, then the server closes the connection and",
        "  frees what it held for it. A client's EOF or reset ends its session; the server keeps",
        "  running.",
        "- Profile `echo`: every byte received is written back, in order; on the client's",
        "  half-close the server finishes echoing and closes.",
        "- Any other protocol, through a protocol adapter (`--protocol line|http|resp` or",
        "  `package.module:ClassName`, see docs/adapters.md): the adapter says what a request",
        "  and its complete reply are and how a session ends politely. The requirements about",
        "  the bytes of `ok` and `echo` are not-applicable to it unless it declares them;",
        "  PROTO-6 judges its replies, and every other requirement applies as it is.",
        "",
        "A requirement that applies only to some server models (fork per connection, prefork,",
        "thread per connection, event loop) is `not-applicable` to the others.",
        "",
        "A check fails only on evidence of its own requirement. When what it needs cannot",
        "happen because the server breaks another requirement (it never answers, it drops a",
        "session on a signal, it dies on a reset), the requirement is `blocked` by that one,",
        "which is named (`blocked by PROTO-1`), and its category reads `blocked`, not `failed`.",
        "A requirement the kit could not judge because of an error of its own is `kit-error`",
        "(exit status 3), never `failed`.",
        "",
        "A server that hard-codes its port is checked one instance at a time on that port: the",
        "next instance starts once the previous one's whole process tree is gone. Whether it can",
        "start again at once while a connection of the previous one lingers is EXIT-6's business",
        "(SO_REUSEADDR), and no other requirement's.",
        "",
        "When graded, each requirement is worth the points shown (a grading config can change",
        "them). A passed or not-applicable requirement earns its points; failed, blocked,",
        "kit-error or skipped earns none (a blocked requirement was not shown to hold; fixing",
        "the one that blocked it lets it be judged); an excluded one is left out of the maximum.",
    ]
    for category in CATEGORIES:
        lines += ["", f"## {category}", ""]
        for r in REQUIREMENTS:
            if r.category != category:
                continue
            scope = []
            if r.protocols != BOTH:
                scope.append(
                    "protocol adapters other than ok and echo"
                    if r.protocols == ("adapter",)
                    else f"profile `{r.protocols[0]}` only"
                )
            if r.models is not None:
                scope.append("models: " + ", ".join(r.models))
            if r.launch_only:
                scope.append("launch mode only")
            suffix = f" *({'; '.join(scope)})*" if scope else ""
            worth = _points_text(r.default_points)
            lines.append(f"- **{r.id}** ({r.level}, {worth}) {r.title}{suffix}")
            lines.append(f"  - Without it: {r.why}")
    return "\n".join(lines) + "\n"


def _points_text(points: float) -> str:
    number = f"{points:g}"
    return f"{number} point" if number == "1" else f"{number} points"
