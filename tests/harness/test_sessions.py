"""sessions.round_trip_all: a wait for replies that ISO-2's verdict no longer needs ends."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conformance.harness.sessions import round_trip_all
from tests.servers.scripts import script_server

#: Every reply goes to the first client's connection (the defect of a descriptor kept in a
#: global, made certain): the first gets two, the second none. Port argv[1].
MISDIRECTED = """
import socket, sys, time
s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
first, second = s.accept()[0], s.accept()[0]
for c in (first, second):
    c.recv(1024)
    first.sendall(b"OK!!!")
    time.sleep(0.3)
second.recv(1024)
"""


@pytest.mark.parametrize("ends_on_extra", [True, False])
def test_a_reply_beyond_the_one_asked_for_ends_the_wait(
    tmp_path: Path, ends_on_extra: bool
) -> None:
    """With ends_on_extra, the second reply on the first connection ends the wait for the
    second client's (with a minute to wait, on any machine); without it, the wait runs to
    its end."""
    timeout = 60.0 if ends_on_extra else 1.5
    with script_server(tmp_path, MISDIRECTED) as server:
        clients = [server.connect("A"), server.connect("B")]
        start = time.monotonic()
        got, silent = round_trip_all(
            server, clients, [b"hello"] * 2, timeout, ends_on_extra=ends_on_extra
        )
        waited = time.monotonic() - start
    assert got[0] == b"OK!!!" and silent == [1]
    assert waited < 30 if ends_on_extra else waited >= 1.4
