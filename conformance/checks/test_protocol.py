"""protocol: the bytes of the replies (PROTO-*). The other categories never judge bytes.

PROTO-1..5 are about the teaching profiles' bytes (ok, echo); PROTO-6 judges any other
protocol through its adapter (conformance/protocols): framing, then the adapter's judge.
"""

from __future__ import annotations

import contextlib
import threading
import time

from hypothesis import example, given
from hypothesis import strategies as st

from conformance import protocols
from conformance.checks.hypothesis_profiles import run_given
from conformance.harness import Client, Server, Violation, fail, show, wait_until
from conformance.harness.processes import RunDelays
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
#: PROTO-5 sends in pieces of this size, to see its progress.
SEND_CHUNK = 1 << 16
#: PROTO-5: no progress for this long (the server not starved) means it stopped reading.
HOLD_STALL = 0.3

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
    """1 MiB sent, and nothing read until the server stops taking it (or has it all): a
    correct server then cannot write its echo whole and must hold it; one that drops what a
    write did not take has dropped it by the time the kit reads."""
    payload = bytes(i * 7 % 251 for i in range(BIG_STREAM))
    with server.connect() as client:
        sent = [0]

        def send() -> None:
            view = memoryview(payload)
            with contextlib.suppress(OSError):  # a server that closes: what arrived tells
                while sent[0] < len(view):
                    sent[0] += client.sock.send(view[sent[0] : sent[0] + SEND_CHUNK])

        sender = threading.Thread(target=send, daemon=True)
        client.transcript.add(
            f"sent {len(payload)} bytes on {client.name}, reading nothing until the server "
            "stopped taking them"
        )
        sender.start()
        _hold_until_stalled(server, sender, sent)
        data, status = client.recv_stream(len(payload), stall=ANSWER_TIMEOUT)
        sender.join(ANSWER_TIMEOUT)
        if data != payload:
            first = next((i for i, (a, b) in enumerate(zip(data, payload)) if a != b), len(data))
            fail(
                f"the {len(payload)} bytes back, in order",
                f"{len(data)} bytes ({status}); first difference at byte {first}",
                did=client.transcript.tail(),
                cause="send()/write() may write fewer bytes than asked: loop until every byte "
                "is written, advancing by the return value (and keep what is left for when "
                "the socket is writable again)",
            )


def _hold_until_stalled(server: Server, sender: threading.Thread, sent: list[int]) -> None:
    """Wait (at most ANSWER_TIMEOUT) until the sender is done, or has made no progress for
    HOLD_STALL while the server was not kept from running (schedstat): then the server has
    stopped reading on its own, as one holding an echo it cannot write does. A server that
    was only waiting for a CPU is waited for, so a busy machine does not cut the hold short."""
    proc = server.process
    last, since = sent[0], time.monotonic()
    delays = proc.run_delays() if proc is not None else RunDelays(0.0)

    def may_read() -> bool:
        nonlocal last, since, delays
        if not sender.is_alive():
            return True
        if sent[0] != last or time.monotonic() - since < HOLD_STALL:
            if sent[0] != last:
                last, since = sent[0], time.monotonic()
                delays = proc.run_delays() if proc is not None else RunDelays(0.0)
            return False
        if proc is not None and proc.starved_since(delays) >= HOLD_STALL / 2:
            since, delays = time.monotonic(), proc.run_delays()  # starved: hold on
            return False
        return True

    wait_until(may_read, ANSWER_TIMEOUT)


ROUND_TRIP_CAUSE = (
    "each request must get exactly one complete reply, in order, on the same connection, and "
    "the connection must stay open for the next request until the client ends the session "
    "(unless the reply says the server closes it, as HTTP's Connection: close does)"
)
ANNOUNCED_CLOSE_CAUSE = (
    "the reply says the server closes the connection after it (HTTP/1.0 without keep-alive, "
    "or Connection: close), so the client waits for that close to end the session: close "
    "the connection after such a reply, or do not announce it (RFC 9112 section 9.6)"
)


@requirement("PROTO-6")
def test_every_request_gets_its_reply(conformance_settings: Settings) -> None:
    """Requests drawn from the adapter's strategy, several per connection; each reply is
    complete (the adapter's framing) within 1 s and right (the adapter's judge). A reply that
    says the server closes the connection after it (the adapter's `closes_after`) ends that
    connection: the server must then close it, with nothing after the reply, and the next
    request goes on a new connection."""
    s = conformance_settings
    adapter = protocols.get(s.protocol)

    @example([adapter.request(0)])  # first, for the same reason as PROTO-1's
    @given(st.lists(adapter.requests(), min_size=1, max_size=4))
    def exchange(requests: list[bytes]) -> None:
        pending = list(requests)
        while pending:
            # A server per connection: whether a server survives its sessions' ends is for
            # EXIT and EINTR to judge, not the replies.
            with scenario_server(s.target, s.protocol) as server, session(server) as client:
                _until_closed(adapter, client, pending)

    run_given(exchange, s.profile, s.seed)


def _until_closed(adapter: protocols.ProtocolAdapter, client: Client, pending: list[bytes]) -> None:
    """Round trips on `client`, taken from `pending`, until none is left or a reply says the
    server closes the connection (then it must, with nothing more)."""
    __tracebackhide__ = True
    while pending:
        request = pending.pop(0)
        client.send(request)
        reply = client.reply(ANSWER_TIMEOUT, cause=ROUND_TRIP_CAUSE)
        _judge(adapter, client, request, reply)
        if client.server_closes:
            extra = client.expect_eof(ANSWER_TIMEOUT, cause=ANNOUNCED_CLOSE_CAUSE)
            if extra:
                fail(
                    f"nothing after the reply on {client.name} until the close it announced",
                    f"{show(extra)}",
                    did=client.transcript.tail(),
                    cause=ROUND_TRIP_CAUSE,
                )
            return


def _judge(
    adapter: protocols.ProtocolAdapter, client: Client, request: bytes, reply: bytes
) -> None:
    """Fail unless `reply` (complete, per the adapter's framing) is one right reply."""
    __tracebackhide__ = True
    expected = f"a well-formed {adapter.name} reply to {show(request)} on {client.name}"
    wrong: str | None
    try:
        n = adapter.reply_length(request, reply)
    except ValueError as exc:
        n, wrong = None, f"a malformed reply {show(reply)}: {exc}"
    else:
        wrong = adapter.judge(request, reply[:n]) if n else f"an incomplete reply {show(reply)}"
    if wrong:
        fail(expected, wrong, did=client.transcript.tail(), cause=ROUND_TRIP_CAUSE)
    if n is not None and n < len(reply):
        fail(
            f"exactly one reply to {show(request)} on {client.name}",
            f"{show(reply)}: {len(reply) - n} byte(s) after the reply",
            did=client.transcript.tail(),
            cause=ROUND_TRIP_CAUSE,
        )
