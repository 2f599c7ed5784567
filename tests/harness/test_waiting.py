"""Where a silent server waits, read from its threads, and the cause it shows.

A missing reply's "likely cause" must come from what the server was doing, or not be given:
a serial server blocked reading another client's connection, a server waiting on another
host (tcpserver's DNS lookup of its own name was one). A server that could take the client
(its accept() or poll() waits) gets no cause from here, so a check's own, narrower cause
stands.
"""

from __future__ import annotations

import socket
import sys
import time
from collections import namedtuple
from pathlib import Path

import psutil
import pytest

from conformance.harness import server as server_module
from conformance.harness import sessions
from conformance.harness.client import Client
from conformance.harness.driver import Driver
from conformance.harness.polling import wait_until
from conformance.harness.server import SEEN_THIS_CHECK, Server
from conformance.harness.sessions import close_watch
from conformance.harness.waiting import (
    JVM_OWN,
    SHARED_DESCRIPTOR_CAUSE,
    Silence,
    Wait,
    _cause,
    _full,
    _Socket,
    at_rest,
    shared_reads,
)
from tests.servers.scripts import launched_server, script_server

if not sys.platform.startswith("linux"):
    pytest.skip("reads /proc/PID/task/TID/syscall", allow_module_level=True)

#: Serves one client at a time: blocked in recv() on the first while the second waits.
SERIAL = """
import socket, sys
s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
while True:
    c = s.accept()[0]
    while (m := c.recv(1024)) and m != b"exit":
        c.sendall(b"OK!!!")
    c.close()
"""

#: A thread per connection: its main thread waits in accept() for the next client.
THREADED = """
import socket, sys, threading
s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
def serve(c):
    while (m := c.recv(1024)) and m != b"exit":
        c.sendall(b"OK!!!")
    c.close()
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
"""

#: Before each reply, asks another "server" over UDP (PEER, which never answers) and waits
#: for its answer: in recv() on that socket (WAIT = "recv"), or in poll() holding it.
ASKS_ELSEWHERE = """
import select, socket, sys
s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
while True:
    c = s.accept()[0]
    q = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    q.connect(("127.0.0.1", PEER))
    q.send(b"?")
    if WAIT == "recv":
        q.recv(512)
    p = select.poll()
    p.register(q, select.POLLIN)
    p.poll(60000)
"""


def _explain_second_client(server_source: str, tmp_path: Path) -> tuple[list[str], str | None]:
    """A connects and says nothing, B sends a message: where the server waits meanwhile."""
    with script_server(tmp_path, server_source) as server:
        assert server.process is not None
        a = server.connect("A")
        b = server.connect("B")
        b.send(b"hello")
        assert b.recv_some(0.5) is None
        silence = server.where_it_waits("B")
        a.close()
        b.close()
    return silence.lines, silence.cause


def test_a_serial_server_is_shown_blocked_on_the_other_client(tmp_path: Path) -> None:
    lines, cause = _explain_second_client(SERIAL, tmp_path)
    assert len(lines) == 1
    assert lines[0].startswith("Waiting:  pid ")
    assert "(main): recvfrom() on client A's connection" in lines[0]
    assert cause is not None
    assert "blocked on another client's connection (A)" in cause
    assert "so the server serves one client at a time" in cause


def test_a_server_that_can_take_the_client_gets_no_cause_from_its_waits(
    tmp_path: Path,
) -> None:
    """B is answered at once here, so ask while A's thread reads and the main thread
    accepts: the waits are shown, and no cause, since nothing in them explains a silence."""
    with script_server(tmp_path, THREADED) as server:
        assert server.process is not None
        server.connect("A")

        def both_wait() -> bool:
            text = "\n".join(server.where_it_waits("B").lines)
            return "recvfrom() on client A's" in text and "on the listening socket" in text

        assert wait_until(both_wait, 5)[0]
        silence = server.where_it_waits("B")
    text = "\n".join(silence.lines)
    assert "(main): accept4() on the listening socket" in text or "(main): accept() on" in text
    assert "recvfrom() on client A's connection" in text
    assert silence.cause is None


@pytest.mark.parametrize("wait", ["recv", "poll"])
def test_a_server_waiting_on_another_host_is_named_with_that_host(
    tmp_path: Path, wait: str
) -> None:
    """Blocked in recv() on a socket to another host, that wait is the cause. In poll()
    holding such a socket, only a DNS server's (port 53, a resolver's query) is: an event
    loop's UDP socket for metrics proves nothing, so it is shown and no cause is given."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mute:
        mute.bind(("127.0.0.1", 0))
        port = mute.getsockname()[1]
        source = ASKS_ELSEWHERE.replace("PEER", str(port)).replace("WAIT", repr(wait))
        lines, cause = _explain_second_client(source, tmp_path)
    text = "\n".join(lines)
    if wait == "recv":
        assert f"recvfrom() on a UDP socket to 127.0.0.1:{port}" in text
        assert cause is not None
        assert cause.startswith(
            f"the server was waiting for another server's reply (127.0.0.1:{port})"
        )
    else:
        assert f"poll(), holding a UDP socket to 127.0.0.1:{port}" in text
        assert cause is None


def test_a_socket_to_port_53_is_a_name_lookup() -> None:
    conn = namedtuple("conn", "fd family type laddr raddr status")
    dns = conn(3, socket.AF_INET, socket.SOCK_DGRAM, ("10.0.0.2", 40000), ("10.0.0.1", 53), "NONE")
    described = _Socket(dns, 8080, {})
    assert described.text == "a UDP socket to 10.0.0.1:53 (a DNS server: a name lookup)"
    assert described.elsewhere == "10.0.0.1:53" and described.dns
    listener = conn(
        4, socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", 8080), (), psutil.CONN_LISTEN
    )
    assert _Socket(listener, 8080, {}).listener


def test_a_unix_socket_is_never_taken_for_a_host_elsewhere() -> None:
    conn = namedtuple("conn", "fd family type laddr raddr status")
    unix = conn(5, socket.AF_UNIX, socket.SOCK_STREAM, "", "/run/db.sock", psutil.CONN_NONE)
    described = _Socket(unix, 8080, {})
    assert described.text == "a Unix socket (/run/db.sock)"
    assert described.elsewhere is None and not described.own


def test_without_a_visible_process_nothing_is_claimed() -> None:
    """Address mode with another user's server: no evidence, and no cause from here."""
    server = Server("127.0.0.1", 1, "ok", "unknown")
    assert server.process is None
    assert server.where_it_waits("B") == Silence()


def test_a_thread_that_may_take_the_client_leaves_no_cause() -> None:
    """The serial cause needs every thread accounted for: one running (or waiting for a CPU)
    or waiting on a lock (a Python thread waiting for the GIL) may be about to accept B."""
    on_a = Wait("pid 1 (main): recvfrom() on client A's connection", client="A")
    parent = Wait("pid 1 (main): wait4(), waiting for a child to exit (waitpid)", aside=True)
    assert _cause([on_a], "B") is not None
    assert _cause([on_a, parent], "B") is not None
    assert _cause([on_a, Wait("pid 1 (main): running (on a CPU, or waiting for one)")], "B") is None
    assert _cause([on_a, Wait("pid 1 (main): futex(), waiting for a lock")], "B") is None
    assert (
        _cause([on_a, Wait("pid 2: recvfrom() on client B's connection", client="B")], "B") is None
    )


def test_full_means_no_thread_can_take_another_client() -> None:
    """`full` (a check may stop waiting for more clients to be served) only where the serial
    cause holds: a parent that sleeps in select() (Apache's prefork, growing its pool) or a
    thread in poll() may still take one, and so may a thread waiting on a lock."""
    on_a = Wait("pid 1 (main): recvfrom() on client A's connection", client="A")
    parent = Wait("pid 1 (main): wait4(), waiting for a child to exit (waitpid)", aside=True)
    assert _full([on_a], "") and _full([on_a, parent], "")
    assert not _full([parent], "")  # serving nobody: not full, only idle
    assert not _full([on_a, Wait("pid 2 (main): select()", takes_new=True)], "")
    assert not _full([on_a, Wait("pid 1 (main): futex(), waiting for a lock")], "")
    assert not _full([Wait("pid 2: recvfrom() on client B's connection", client="B")], "B")


#: A thread per connection that hands the descriptor over through a global, read by the
#: thread only after the next accept(): both threads serve the newer connection.
GLOBAL_DESCRIPTOR = """
import socket, sys, threading
s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
current = None
started = threading.Event()
def serve():
    started.wait()
    c = current
    while (m := c.recv(1024)) and m != b"exit":
        c.sendall(b"OK!!!")
first = s.accept()[0]
current = first
threading.Thread(target=serve, daemon=True).start()
current = s.accept()[0]
threading.Thread(target=serve, daemon=True).start()
started.set()
while True:
    s.accept()
"""


def test_threads_sharing_one_connection_name_the_shared_variable(tmp_path: Path) -> None:
    """Two threads read B's connection and none reads A's: the cause says how the
    descriptor was handed over, and tells the student to pass each thread its own."""
    with script_server(tmp_path, GLOBAL_DESCRIPTOR) as server:
        assert server.process is not None
        a = server.connect("A")
        server.connect("B")
        a.send(b"hello")
        assert a.recv_some(0.5) is None

        def named() -> bool:
            return server.where_it_waits("A").cause == SHARED_DESCRIPTOR_CAUSE

        assert wait_until(named, 5)[0], server.where_it_waits("A")
        silence = server.where_it_waits("A")
    text = "\n".join(silence.lines)
    assert "2 threads read 1 connection(s) two or more at a time" in text
    assert "1 other accepted connection(s) are read by no thread" in text


def test_one_reader_per_connection_is_no_shared_variable(tmp_path: Path) -> None:
    with script_server(tmp_path, THREADED) as server:
        assert server.process is not None
        server.connect("A")
        server.connect("B")
        assert wait_until(lambda: len(server.where_it_waits().lines) >= 2, 5)[0]
        assert shared_reads(server.process.tree_pids(), server.port) is None


def test_connecting_stops_waiting_once_the_server_can_take_no_more(tmp_path: Path) -> None:
    """CONC-2's connecting phase asks, once no client has been served for a second, whether
    the server is `full`; a serial server is, so the phase ends long before its stall."""
    with script_server(tmp_path, SERIAL) as server:
        driver = Driver(server.host, server.port, server.protocol, judge=False)

        def full() -> bool:
            return server.where_it_waits(others=driver.local_ports()).full

        try:
            served = driver.connect(8, stall=60, hopeless=full)
        finally:
            driver.shutdown()
    assert served == 1
    assert driver.stalled_s < 30, driver.stalled_s


#: A thread per connection, at most two at once: the accept loop waits on a semaphore for a
#: slot, without a timeout (TIMEOUT = None) or with one (the wait may end by itself).
CAPPED = """
import socket, sys, threading
s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
slots = threading.Semaphore(2)
def serve(c):
    while (m := c.recv(1024)) and m != b"exit":
        c.sendall(b"OK!!!")
    c.close()
    slots.release()
while True:
    while not slots.acquire(timeout=TIMEOUT):
        pass
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
"""


def _two_served_third_waiting(server: Server) -> dict[str, Client]:
    """A and B answered and held open (the cap's two slots), C's message unanswered."""
    clients = {name: server.connect(name) for name in "ABC"}
    for name in "AB":
        clients[name].send(b"hello")
        assert clients[name].recv_some(5) == b"OK!!!"
    clients["C"].send(b"hello")
    assert clients["C"].recv_some(0.5) is None
    return clients


@pytest.mark.parametrize("timeout", [None, 0.5], ids=["untimed", "timed"])
def test_a_cap_waited_for_without_a_timeout_is_the_cause(
    tmp_path: Path, timeout: float | None
) -> None:
    """thread_cap2's shape: A and B hold both slots, C's message waits. The accept loop waits
    on the semaphore for ever (futex without a timeout: `_waits_for_ever`), so nothing can
    take C while A and B stay: the serial cause, with two clients. A timed wait may go on by
    itself (so may a Python thread waiting for the GIL): no cause from the waits then."""
    with script_server(tmp_path, CAPPED.replace("TIMEOUT", repr(timeout))) as server:
        assert server.process is not None
        clients = _two_served_third_waiting(server)

        def accounted() -> bool:
            text = "\n".join(server.where_it_waits("C").lines)
            return "futex()" in text and text.count("recvfrom() on client") >= 1

        assert wait_until(accounted, 5)[0]
        silence = server.where_it_waits("C")
        for client in clients.values():
            client.close()
    if timeout is None:
        assert silence.cause is not None and silence.full, silence
        assert "at most 2 clients at a time" in silence.cause
    else:
        assert silence.cause is None and not silence.full, silence


def test_a_jvms_own_threads_leave_a_capped_java_server_full(java_build: Path) -> None:
    """Java's ThreadCap2, A and B holding its two slots, C waiting: the accept loop parks on
    the semaphore (a futex without a timeout), the two sessions read A and B. The JVM's own
    threads (compilers, the periodic task thread) wait with timeouts whatever the server
    does; counted as threads that might take C, every JVM server would look able to take
    one more, and CONC-2 and ISO-2 waited out their whole deadline on it."""
    with launched_server(f"java -cp {java_build} ThreadCap2 {{port}}") as server:
        clients = _two_served_third_waiting(server)
        full, _ = wait_until(lambda: server.where_it_waits("C").full, 5)
        silence = server.where_it_waits("C")
        for client in clients.values():
            client.close()
    assert full, silence
    assert silence.cause is not None and "at most 2 clients at a time" in silence.cause
    assert any(JVM_OWN in line for line in silence.lines), silence.lines


#: Answers each message and keeps every connection it accepted, back in accept() at once: a
#: fork server's parent that never closes its copies, in one process. LATE: it first sleeps
#: that long, then closes (a server that is slow to close, not one that cannot). ZOMBIE: it
#: first forks a child that exits at once and is never reaped (its SIGCHLD may yet run a
#: handler that closes).
KEEPER = """
import os, socket, sys, time
s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
kept = []
while True:
    c = s.accept()[0]
    c.recv(1024)
    c.sendall(b"OK!!!")
    if ZOMBIE and os.fork() == 0:
        os._exit(0)
    if LATE:
        time.sleep(LATE)
        c.close()
    else:
        kept.append(c)
"""


@pytest.mark.parametrize(
    ("late", "zombie", "stuck"),
    [(0, False, True), (3, False, False), (0, True, False)],
    ids=["keeps-in-accept", "closes-late", "zombie-pending"],
)
def test_a_connection_nobody_can_close_any_more_is_told_apart(
    tmp_path: Path, late: int, zombie: bool, stuck: bool
) -> None:
    """cannot_close: the holder's only thread back in accept() can close nothing until a new
    client comes, so a wait for EOF may end there; a sleeping one may still close, and an
    unreaped child's SIGCHLD may still wake it."""
    source = KEEPER.replace("LATE", repr(late)).replace("ZOMBIE", repr(zombie))
    with script_server(tmp_path, source) as server:
        assert server.process is not None
        client = server.connect("A")
        client.send(b"hello")
        assert client.recv_some(5) == b"OK!!!"
        watch = close_watch(server, client)
        seen, _ = wait_until(watch, 1.5)
        client.close()
    assert seen is stuck, watch.evidence
    if stuck:
        assert watch.evidence is not None
        assert "its only thread waits in accept() on the listening socket" in watch.evidence


#: Servers whose threads all wait for a client, or not, once they listen (port argv[1]).
REST = {
    "accept": "s.accept()",
    "untimed-select": "select.select([s], [], [])",
    "timed-select": "select.select([s], [], [], 30)",
    "sleeping-worker": "threading.Thread(target=time.sleep, args=(60,)).start(); s.accept()",
}
REST_SOURCE = """
import select, socket, sys, threading, time
s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
WAIT
"""


@pytest.mark.parametrize(
    ("wait", "rests"),
    [("accept", True), ("untimed-select", True), ("timed-select", False),
     ("sleeping-worker", False)],
)  # fmt: skip
def test_at_rest_only_when_nothing_but_a_client_can_wake_the_server(
    tmp_path: Path, wait: str, rests: bool
) -> None:
    """at_rest: a wait with a timeout (a select's, a sleep's) may end with no client, and
    the server may open something then; accept() or an untimed select() may not."""
    with script_server(tmp_path, REST_SOURCE.replace("WAIT", REST[wait])) as server:
        assert server.process is not None
        pids = server.process.tree_pids()
        seen, _ = wait_until(lambda: at_rest(pids, server.port), 1.0)
    assert seen is rests


#: After a client's message: dying 0.1 s later, back to accept(), or reading the client
#: again (port argv[1]).
AFTER_STEP = """
import os, socket, sys, time
s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
c = s.accept()[0]
c.recv(16)
if THEN == "dies":
    time.sleep(0.1)
    os._exit(1)
c.recv(16) if THEN == "reads" else s.accept()
"""


@pytest.mark.parametrize("then", ["dies", "accepts", "reads"])
def test_a_server_dying_of_a_step_is_told_from_one_back_in_accept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, then: str
) -> None:
    """sessions.dies_of_it: the wait for a death ends early only for a server waiting for a
    client (in accept(), or reading one); one still busy with the step (here asleep before
    it exits) is waited for. With a grace of a minute, the others are not waited for it, on
    any machine."""
    monkeypatch.setattr(sessions, "DEATH_GRACE", 60.0)
    dies = then == "dies"
    with script_server(tmp_path, AFTER_STEP.replace("THEN", repr(then))) as server:
        client = server.connect("A")
        client.send(b"hello")
        start = time.monotonic()
        assert sessions.dies_of_it(server) is dies
        assert time.monotonic() - start < 30
        client.close()


@pytest.mark.parametrize("late", [0, 3], ids=["keeps-in-accept", "closes-late"])
def test_the_kit_waits_for_the_close_after_exit_only_while_the_server_can_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, late: int
) -> None:
    """Server.ended: after `exit` and its reply, a server back in accept() that keeps the
    connection is not waited for (with a grace of a minute, on any machine), and the check
    then knows it does not close after `exit`; one that sleeps first is waited for."""
    monkeypatch.setattr(server_module, "CLOSE_AFTER_EXIT_WAIT", 60.0)
    SEEN_THIS_CHECK.forget()
    source = KEEPER.replace("LATE", repr(late)).replace("ZOMBIE", "False")
    try:
        with script_server(tmp_path, source) as server:
            client = server.connect("A")
            start = time.monotonic()
            client.end()
            waited = time.monotonic() - start
            assert SEEN_THIS_CHECK.closes_after_exit is bool(late)
            assert waited < 30 if not late else waited >= late - 0.5
    finally:
        SEEN_THIS_CHECK.forget()
