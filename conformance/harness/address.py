"""The address family of a host the kit talks to, in one place (it was written eight times)."""

from __future__ import annotations

import socket


def family_of(host: str) -> socket.AddressFamily:
    """AF_INET6 for an IPv6 literal (it has a colon: `::1`), AF_INET otherwise. The kit only
    talks to loopback addresses it was given as literals, so no name lookup is needed."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET
