"""The teaching protocol on the wire, in one place: what a message is, the reply, the end.

Profile `ok`: a client sends a message of 1..1023 bytes in one send and the server replies
exactly `OK_REPLY`; the message `EXIT` gets `OK_REPLY` too, then the server closes. Profile
`echo`: every byte comes back; the client's half-close ends the session. Every part of the
kit that talks to a server (checks, model detection, the load driver, the liveness probes)
builds its bytes here, so the protocol is written once.
"""

from __future__ import annotations

OK_REPLY = b"OK!!!"
EXIT = b"exit"
PROTOCOLS = ("ok", "echo")


def message(i: int, size: int = 16) -> bytes:
    """A distinct, printable message that never starts with `exit` (`msg-000042-msg-...`)."""
    text = f"msg-{i:06d}-"
    return (text * (size // len(text) + 1)).encode()[:size]


def payload(protocol: str, i: int, echo_size: int = 32) -> bytes:
    """Message number `i` for the profile: 16 bytes with ok; `echo_size` bytes with echo."""
    return message(i) if protocol == "ok" else message(i, echo_size)


def is_exit(data: bytes) -> bool:
    """Whether sending `data` ends the session (profile ok)."""
    return data == EXIT


def reply_to(protocol: str, data: bytes) -> bytes:
    """What a correct server answers to `data`."""
    return OK_REPLY if protocol == "ok" else data
