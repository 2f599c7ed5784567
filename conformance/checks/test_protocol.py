"""protocol: the bytes of the replies (PROTO-*). The other categories never judge bytes."""

from __future__ import annotations

import threading

from hypothesis import example, given
from hypothesis import strategies as st

from conformance.checks.hypothesis_profiles import run_given
from conformance.harness import Server, Violation, fail, show
from conformance.harness.scenario_steps import scenario_server
from conformance.harness.sessions import session
from conformance.harness.timeouts import ANSWER_TIMEOUT, QUIET_PERIOD
from conformance.harness.wire import EXIT, OK_REPLY, message
from conformance.marks import requirement
from conformance.settings import Settings

OK = OK_REPLY
#: Any bytes, NUL and high bytes included, 1..1023 of them; never starting with `exit`.
MESSAGES = st.binary(min_size=1, max_size=1023).filter(lambda m: not m.startswith(EXIT))
ECHO_CHUNKS = st.lists(st.binary(min_size=1, max_size=8192), min_size=1, max_size=12)
BIG_STREAM = 1 << 20

REPLY_CAUSE = (
    "the reply must be exactly the 5 bytes OK!!! for each message: no newline, no NUL, one "
    'reply per recv() (e.g. write(fd, "OK!!!", 5))'
)


SILENT_CAUSE = (
    "the server never wrote a reply: after each read() of a message, write the reply on the "
    'same connection (write(connfd, "OK!!!", 5)); if it is stuck before that, check that '
    "accept() returned and that the session's read() is on the accepted socket, not the "
    "listening one"
)


@requirement("PROTO-1")
def test_every_message_gets_exactly_ok(conformance_settings: Settings) -> None:
    """Any bytes, any length up to 1023, several per connection: exactly OK!!! each."""
    s = conformance_settings

    # Tried first, as it is: a server that never answers fails on it at once, instead of
    # after hypothesis has shrunk a generated example for seconds to the same verdict.
    @example([message(0)])
    @given(st.lists(MESSAGES, min_size=1, max_size=4))
    def exchange(messages: list[bytes]) -> None:
        with scenario_server(s.target, s.protocol) as server, session(server) as client:
            for i, m in enumerate(messages):
                client.send(m)
                # A stray byte after reply k misaligns reply k+1, so listening for "nothing
                # more" once, after the last reply, catches extras anywhere in the exchange.
                last = i == len(messages) - 1
                try:
                    client.expect(OK, ANSWER_TIMEOUT, exact=last, cause=REPLY_CAUSE)
                except Violation as exc:
                    if exc.actual.startswith("nothing"):
                        exc.cause = SILENT_CAUSE
                    raise

    run_given(exchange, s.profile, s.seed)


@requirement("PROTO-2")
def test_many_messages_on_one_connection(server: Server) -> None:
    """100 messages on one connection, each answered, none merged or dropped."""
    with session(server) as client:
        for i in range(100):
            client.send(message(i))
            client.expect(
                OK,
                ANSWER_TIMEOUT,
                exact=False,
                cause="after answering, go back to recv() on the same connection until the "
                "client sends `exit` or closes",
            )
        extra = client.recv_some(QUIET_PERIOD)
        if extra:
            fail("nothing after the 100th reply", f"{show(extra)}", did=client.transcript.tail())


@requirement("PROTO-3")
def test_exit_is_acknowledged(server: Server) -> None:
    """`exit` gets exactly OK!!! (closing is EXIT-1's business)."""
    with server.connect() as client:
        client.send(EXIT)
        client.expect(
            OK,
            ANSWER_TIMEOUT,
            cause="reply OK!!! to `exit` before closing the connection",
        )


@requirement("PROTO-4")
def test_echo_any_bytes_any_chunking(conformance_settings: Settings) -> None:
    """Chunks of any bytes come back exactly, in order."""
    s = conformance_settings

    @example([message(0, 16)])  # first, for the same reason as PROTO-1's
    @given(ECHO_CHUNKS)
    def exchange(chunks: list[bytes]) -> None:
        with scenario_server(s.target, s.protocol) as server, session(server) as client:
            for chunk in chunks:
                client.send(chunk)
                client.expect(
                    chunk,
                    ANSWER_TIMEOUT,
                    exact=False,
                    cause="write back exactly the bytes recv() returned (its return value is "
                    "the length; the buffer is not a C string, it may contain NUL)",
                )

    run_given(exchange, s.profile, s.seed)


@requirement("PROTO-5")
def test_echo_one_mebibyte(server: Server) -> None:
    """1 MiB sent while reading: the server's writes fill the socket buffer and come back short."""
    payload = bytes(i * 7 % 251 for i in range(BIG_STREAM))
    with server.connect() as client:
        sender = threading.Thread(target=client.sock.sendall, args=(payload,), daemon=True)
        client.transcript.add(f"sent {len(payload)} bytes on {client.name} while reading")
        sender.start()
        data, status = client.recv_stream(len(payload), stall=ANSWER_TIMEOUT)
        sender.join(ANSWER_TIMEOUT)
        if data != payload:
            first = next((i for i, (a, b) in enumerate(zip(data, payload)) if a != b), len(data))
            fail(
                f"the {len(payload)} bytes back, in order",
                f"{len(data)} bytes ({status}); first difference at byte {first}",
                did=client.transcript.tail(),
                cause="send()/write() may write fewer bytes than asked: loop until every byte "
                "is written, advancing by the return value",
            )
