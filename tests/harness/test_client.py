"""The client: replies are judged exactly, a failed connect is the server's failure."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from typing import NoReturn

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


@pytest.fixture
def replying_in_pieces() -> Iterator:  # type: ignore[type-arg]
    """A one-connection server that answers every message with `pieces`, `gap` s apart."""
    listeners: list[socket.socket] = []

    def start(*pieces: bytes, gap: float = 0.05) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                while conn.recv(1024):
                    for piece in pieces:
                        conn.sendall(piece)
                        threading.Event().wait(gap)

        threading.Thread(target=serve, daemon=True).start()
        return listener.getsockname()[1]

    yield start
    for listener in listeners:
        listener.close()


def _framed_client(port: int) -> Client:
    from conformance.protocols.http import HttpAdapter

    client = Client.connect("127.0.0.1", port, "A", Transcript())
    client.adapter = HttpAdapter()
    return client


def test_a_framed_reply_is_read_whole(replying_in_pieces) -> None:  # type: ignore[no-untyped-def]
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    with _framed_client(replying_in_pieces(head, b"he", b"llo")) as client:
        assert client.request(client.adapter.request(0), timeout=2.0) == head + b"hello"


def test_a_framed_reply_cut_short_is_the_servers_failure(replying_in_pieces) -> None:  # type: ignore[no-untyped-def]
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    expected = re.escape("a complete reply on A within 0.5 s")
    with (
        _framed_client(replying_in_pieces(head, b"he")) as client,
        pytest.raises(Violation, match=expected),
    ):
        client.request(client.adapter.request(0), timeout=0.5)


def test_a_framed_reply_has_one_timeout_from_first_byte_to_last(replying_in_pieces) -> None:  # type: ignore[no-untyped-def]
    """The reply's first bytes come at 0.3 s, its last at 0.6 s: late for a 0.5 s timeout,
    though each wait alone is shorter (a slower machine only makes the reply later)."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    with (
        _framed_client(replying_in_pieces(b"", head, b"hello", gap=0.3)) as client,
        pytest.raises(Violation, match=re.escape("a complete reply on A within 0.5 s")),
    ):
        client.request(client.adapter.request(0), timeout=0.5)


def test_ending_a_session_has_one_rule() -> None:
    """end_session_on: the exit request where the protocol has one; the client's EOF for a
    request held half-sent or a protocol without one; nothing after a reply that said the
    server closes."""
    import socket as socket_mod

    from conformance import protocols
    from conformance.harness.client import end_session_on

    def ended(adapter_name: str, **how: object) -> bytes:
        a, b = socket_mod.socketpair()
        with a, b:
            b.settimeout(1.0)
            end_session_on(a, protocols.get(adapter_name), **how)  # type: ignore[arg-type]
            a.setblocking(False)
            try:
                return b.recv(100) or b"<EOF>"
            except (TimeoutError, BlockingIOError):
                return b"<nothing>"

    assert ended("ok") == b"exit"
    assert ended("echo") == b"<EOF>"
    assert ended("ok", held=b"rest") == b"<EOF>"
    assert ended("http", server_closes=True) == b"<nothing>"
    assert ended("http").startswith(b"GET / HTTP/1.1") and b"Connection: close" in ended("http")


@pytest.fixture
def first_reply_only() -> Iterator[int]:
    """A one-connection loopback server that answers the first message only, then reads on."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            if conn.recv(1024):
                conn.sendall(b"OK!!!")
            while conn.recv(1024):
                pass

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


class _Blocked(Exception):
    pass


@pytest.mark.parametrize("how", ["reply", "expect"])
def test_a_later_request_unanswered_ends_the_check_where_the_server_answers_one(
    first_reply_only: int, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the plugin knows the server answers only the first request of a connection, the
    second request's silence ends the check (LaterReplies.block), naming the request; the
    first request's wait is never cut short."""
    from conformance.harness.client import LATER_REPLIES, LATER_REPLY_WAIT

    def block(what: str) -> NoReturn:
        raise _Blocked(what)

    monkeypatch.setattr(LATER_REPLIES, "block", block)
    client = Client.connect("127.0.0.1", first_reply_only, "A", Transcript())
    client.send(b"hello")
    client.expect(b"OK!!!") if how == "expect" else client.reply()
    client.send(b"again")
    with pytest.raises(_Blocked, match=rf"request 2 on A: nothing came in {LATER_REPLY_WAIT:g} s"):
        client.expect(b"OK!!!") if how == "expect" else client.reply()
    client.close()


def test_without_the_plugin_a_later_request_waits_its_whole_timeout(first_reply_only: int) -> None:
    client = Client.connect("127.0.0.1", first_reply_only, "A", Transcript())
    client.send(b"hello")
    client.reply()
    client.send(b"again")
    with pytest.raises(Violation, match=r"nothing after 0\.8 s"):
        client.reply(0.8)
    client.close()
