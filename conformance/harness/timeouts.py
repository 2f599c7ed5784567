"""Named time limits. Each says what it bounds; a check never uses a bare number of seconds.

Spec limits (REPLY_TIMEOUT, EOF_TIMEOUT, ...) come from the requirement texts. Harness limits
(LOOPBACK_TIMEOUT, READY_TIMEOUT) are generous on purpose: they bound operations that take
microseconds on loopback, so that a loaded CI machine never turns a correct server red.
"""

from __future__ import annotations

#: Spec: a message is answered within 1 s (CONC-1, CONC-4, CONC-5).
REPLY_TIMEOUT = 1.0
#: Spec: after `exit` or the client's EOF the server closes within 1 s (EXIT-1, EXIT-2).
EOF_TIMEOUT = 1.0
#: Spec: 64 back-to-back connection attempts all connect within 1 s (CONC-3).
CONNECT_BURST_TIMEOUT = 1.0
#: Spec: the grace period within which ended sessions' children and threads disappear
#: (ZOMB-1, EXIT-4). A just-exited child is briefly a zombie, so we poll, never sample once.
SETTLE_TIMEOUT = 1.0
#: Spec (SHOULD): on SIGTERM the server exits within 2 s (EXIT-5).
SIGTERM_TIMEOUT = 2.0

#: Harness: any single socket operation on loopback that the spec does not time (connect,
#: sending a message, a reply in a check that is not about latency).
LOOPBACK_TIMEOUT = 5.0
#: Harness: how long a check that is not about latency waits for an answer. Generous for a
#: loopback round trip on a loaded machine, short enough that a server that never answers
#: gets its complete report quickly.
ANSWER_TIMEOUT = 2.0
#: Harness: how long a launched server may take to open its listening socket.
READY_TIMEOUT = 5.0
#: Harness: between SIGTERM and SIGKILL when the kit stops a server it launched.
STOP_GRACE = 1.0
#: Harness: how long the kit waits for a process it SIGKILLed to die. SIGKILL cannot be
#: refused, but a process dies only once it runs again: over a second on a loaded machine.
KILL_WAIT = 5.0
#: Harness: after the expected bytes, how long we listen to be sure nothing more arrives.
QUIET_PERIOD = 0.05
#: Harness: how often polling helpers look again.
POLL_INTERVAL = 0.01
#: Harness: the window over which CPU use is measured to detect a busy loop (EXIT-4).
CPU_WINDOW = 0.5
#: The pytest-timeout backstop per check is the profile's (conformance/profiles.py).
