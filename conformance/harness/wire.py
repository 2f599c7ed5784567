"""The teaching protocol on the wire, in one place: what a message is, the reply, the end.

Profile `ok`: a client sends a message of 1..1023 bytes in one send and the server replies
exactly `OK_REPLY`; the message `EXIT` gets `OK_REPLY` too, then the server closes. Profile
`echo`: every byte comes back; the client's half-close ends the session. These are the
teaching profiles' bytes; the kit talks to a server through its protocol adapter
(conformance/protocols), and the `ok` and `echo` adapters build their bytes here.
"""

from __future__ import annotations

OK_REPLY = b"OK!!!"
EXIT = b"exit"


def message(i: int, size: int = 16) -> bytes:
    """A distinct, printable message that never starts with `exit` (`msg-000042-msg-...`)."""
    text = f"msg-{i:06d}-"
    return (text * (size // len(text) + 1)).encode()[:size]
