"""A server that died during a check: which rule its death breaks, and what that means for
the check.

A check passes only on a server that lived through it, and fails only on evidence of its own
rule. When the server dies in the middle of a check, the failures the check then sees (a
reply that never comes, a connection closed, a connect refused) are the death's, not the
check's, and which of them it sees first is a race. So every check ends the same way: if
the server the kit launched for it died, the death is judged once, here, by what killed it:

- killed by SIGPIPE: it wrote to a connection its client had closed or reset. That is
  EXIT-3's rule ("a client that resets its connection ... leaves the server running"); EXIT-2
  judges the client's EOF and owns such a death too.
- a fork server known, before the checks, to die once its first sessions' children exit
  (liveness.death_after_sessions): EINTR-1's rule.
- during the checks that signal or trace the server (EINTR-2, EINTR-3), any other death is
  theirs: they caused it.

A death that belongs to the check's own requirement fails it (also a check that otherwise
passed); a death that belongs to another requirement makes the check `blocked` by that one,
every run, however the race fell. A death no rule names (a crash: SIGSEGV, an exit status)
fails the check it happened in, and says so plainly, without a likely cause the kit did not
see.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass

from conformance.harness.failure import Violation
from conformance.harness.server import Server

#: The rule a server killed by SIGPIPE breaks, and the requirements that own such a death.
SIGPIPE_RULE = "EXIT-3"
SIGPIPE_OWNERS = frozenset({"EXIT-2", "EXIT-3"})
#: The rule of a fork server that dies once its sessions' children exit (see liveness.py).
SIGCHLD_RULE = "EINTR-1"
#: Requirements whose checks cause a death of their own rule: they signal or trace the
#: server (EINTR-2, EINTR-3), let children exit under its accept() (EINTR-1), or reset
#: connections (EXIT-3).
OWN_DEATHS = frozenset({"EINTR-1", "EINTR-2", "EINTR-3", "EXIT-3"})
#: Requirements whose checks stop the server on purpose (SIGTERM, a restart): its end is
#: their evidence, not a death.
STOPPING = frozenset({"EXIT-5", "EXIT-6"})

#: How a failure for a death during the check begins its `Actual:` line.
DIED_DURING = "the server died during it"
SIGPIPE_CAUSE = (
    "the server wrote to a connection whose client had gone, and SIGPIPE killed the whole "
    "process: call signal(SIGPIPE, SIG_IGN) at startup (or send with MSG_NOSIGNAL), and end "
    "the session when recv() returns 0 (EOF) or -1"
)
#: What the failure for a death shows where a stack would be: a stack is read from a live
#: process once the verdict is in (stacks.py), and by then the server is gone.
NO_STACK = (
    "Stack:    none: the server's process was gone before the kit could read one (a stack is "
    "read from a live process)"
)
#: SIGPIPE's default action ends a process without a core dump (signal(7)): nothing is left
#: that says which write() it died in.
NO_STACK_SIGPIPE = (
    "; SIGPIPE ends a process without a core dump, so which write() killed it is not known, "
    "only that it wrote to a connection whose client had gone"
)
CRASH_CAUSE = (
    "the server crashed or exited by itself; its stderr (above) and a run under a debugger "
    "(gdb, valgrind) show where"
)


@dataclass(frozen=True, slots=True)
class Death:
    """How a server the kit launched died: its status (negative: the signal) and the text."""

    returncode: int | None
    text: str

    @property
    def signal(self) -> int | None:
        return -self.returncode if self.returncode is not None and self.returncode < 0 else None


def death_of(server: Server) -> Death | None:
    """How the server died, or None if it is running, was stopped by the kit, or is not one
    the kit launched (address mode judges a shared server's death elsewhere)."""
    launched = server.launched
    if launched is None or server.alive():
        return None
    if launched.ended_by_kit and not server.died_before_retired:
        return None
    text = server.death()  # waits a moment for the status of a dying leader
    return Death(launched.returncode(), text)


def rule_of(death: Death, req_id: str, model: str, broken: Mapping[str, str]) -> str | None:
    """The requirement whose rule `death` breaks, judged from the check of `req_id`; None
    when no rule names it (a crash)."""
    if death.signal == signal.SIGPIPE:
        return req_id if req_id in SIGPIPE_OWNERS else SIGPIPE_RULE
    if model == "fork" and SIGCHLD_RULE in broken and death.signal is None:
        # It exits when a child's SIGCHLD interrupts accept(), in any check that ends a
        # session: the rule seen broken before the checks, whichever check it was.
        return SIGCHLD_RULE
    if req_id in OWN_DEATHS:
        return req_id
    return None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a check that saw the server die comes to: failed (`violation`) or blocked
    (`blocked_by`, `reason`)."""

    violation: Violation | None = None
    blocked_by: str | None = None
    reason: str = ""


def judge_death(
    server: Server,
    death: Death,
    req_id: str,
    broken: Mapping[str, str],
    failure: Violation | None,
) -> Verdict:
    """The verdict of the check of `req_id` during which `server` died (see the module
    docstring); `failure` is what the check itself raised, if it failed."""
    rule = rule_of(death, req_id, server.model, broken)
    if rule is not None and rule != req_id:
        seen = broken.get(rule)
        how = death.text.splitlines()[0].split("; last lines of its stderr")[0]
        reason = f"the server died during this check: {how}"
        if death.signal == signal.SIGPIPE:
            reason += f" ({SIGPIPE_CAUSE})"
        elif seen:
            reason += f"; before the checks, {seen}"
        return Verdict(blocked_by=rule, reason=reason)
    cause = SIGPIPE_CAUSE if death.signal == signal.SIGPIPE else None
    no_stack = NO_STACK + (NO_STACK_SIGPIPE if death.signal == signal.SIGPIPE else "")
    if failure is not None and rule == req_id:
        # Its own rule: the check's evidence stands; the death is shown beside it.
        if cause and not failure.cause:
            failure.cause = cause
        if no_stack not in failure.evidence:
            failure.evidence.append(no_stack)
        return Verdict(violation=failure)
    return Verdict(
        violation=Violation(
            "the server still running at the end of this check",
            f"{DIED_DURING}: {death.text}",
            did=server.transcript.tail(),
            cause=cause or (None if rule == req_id else CRASH_CAUSE),
            evidence=[no_stack],
        )
    )
