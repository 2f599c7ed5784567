"""The client: replies are judged exactly, a failed connect is the server's failure."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from conformance.harness import Client, Transcript, Violation
from tests.conftest import ROOT

PY_SERVERS = ROOT / "tests" / "servers" / "py"


@pytest.fixture
def replying_with() -> Iterator:  # type: ignore[type-arg]
    """A one-connection loopback server that answers every message with the given bytes."""
    listeners: list[socket.socket] = []

    def start(reply: bytes) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                while conn.recv(1024):
                    conn.sendall(reply)

        threading.Thread(target=serve, daemon=True).start()
        return listener.getsockname()[1]

    yield start
    for listener in listeners:
        listener.close()


def test_expect_accepts_the_exact_reply(replying_with) -> None:  # type: ignore[no-untyped-def]
    client = Client.connect("127.0.0.1", replying_with(b"OK!!!"), "A", Transcript())
    client.send(b"hello")
    client.expect(b"OK!!!")
    assert client.transcript.steps[-1] == "received b'OK!!!' on A"
    client.close()


def test_expect_rejects_a_trailing_newline(replying_with) -> None:  # type: ignore[no-untyped-def]
    client = Client.connect("127.0.0.1", replying_with(b"OK!!!\n"), "A", Transcript())
    client.send(b"hello")
    with pytest.raises(Violation) as info:
        client.expect(b"OK!!!")
    assert "1 extra byte(s) b'\\n'" in info.value.actual
    assert info.value.did == ["opened client A", "sent b'hello' on A"]
    client.close()


def test_reply_does_not_judge_bytes(replying_with) -> None:  # type: ignore[no-untyped-def]
    client = Client.connect("127.0.0.1", replying_with(b"OK\n"), "A", Transcript())
    assert client.request(b"hello") == b"OK\n"
    client.close()


def test_connect_failure_is_a_violation() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(Violation, match="accepts a connection"):
            Client.connect("127.0.0.1", port, "A", Transcript())
