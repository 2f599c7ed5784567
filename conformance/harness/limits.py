"""Descriptor limits: make room for thousands of client sockets, or say why there is none.

Every client connection costs the kit one descriptor, and every server connection costs the
server one. The soft RLIMIT_NOFILE (often 1024) is what socket() and accept() hit with
EMFILE; any process may raise it up to the hard limit, and only root beyond. A server the kit
launches inherits the kit's limits, so raising them before the launch covers both sides.
"""

from __future__ import annotations

import os
import resource

#: Descriptors besides the client sockets: stdio, the poller, pytest's and psutil's files.
SLACK = 128
#: A bound on the clients one check opens at once, with room to spare (the most is CONC-2's 64).
CHECK_CLIENTS = 1000


class DescriptorLimitError(RuntimeError):
    """The hard limit is too low for the clients asked for; the message says what to do."""


def open_descriptors() -> int:
    """How many descriptors this process holds now (Linux /proc; 0 when it cannot tell)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def ensure_descriptors(clients: int) -> int:
    """Raise the soft RLIMIT_NOFILE so `clients` more sockets fit; returns the soft limit.

    Raises DescriptorLimitError when even the hard limit is too low.
    """
    needed = clients + open_descriptors() + SLACK
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft if soft != resource.RLIM_INFINITY else needed
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise DescriptorLimitError(
            f"{clients} clients need about {needed} open descriptors, but the hard limit "
            f"(RLIMIT_NOFILE) is {hard}: raise it as root (`ulimit -Hn {needed}` in the "
            "shell that starts the kit, or nofile in /etc/security/limits.conf), "
            "or use fewer clients"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return needed
