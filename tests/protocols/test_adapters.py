"""Protocol adapters end to end: each built-in adapter (line, http, resp) and a user's own
(netstring, defined below) passes a correct server and catches a planted defect; a bad
adapter is a usage error. The servers are tests/servers/py/adapters/proto_server.py."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import ClassVar

import jsonschema
import pytest
from hypothesis import strategies as st

from conformance import protocols
from conformance.errors import UsageError
from conformance.protocols import ProtocolAdapter
from conformance.protocols.http import response_length
from conformance.protocols.resp import command, value_length
from tests.conftest import ROOT, kit

SERVER = ROOT / "tests" / "servers" / "py" / "adapters" / "proto_server.py"
SCHEMA = json.loads((ROOT / "conformance" / "report.schema.json").read_text())


class NetstringAdapter(ProtocolAdapter):
    """netstring: `N:text,` gets `N:TEXT,` back (the text upper-cased)."""

    name: ClassVar[str] = "netstring"

    def request(self, i: int, size: int = 16) -> bytes:
        return self.encode(b"msg-%06d" % i)

    @staticmethod
    def encode(text: bytes) -> bytes:
        return b"%d:%s," % (len(text), text)

    def reply_length(self, request: bytes, data: bytes) -> int | None:
        colon = data.find(b":")
        if colon < 0:
            return None
        if not data[:colon].isdigit():
            raise ValueError(f"not a netstring length: {data[:colon][:20]!r}")
        end = colon + 1 + int(data[:colon])
        if len(data) <= end:
            return None
        if data[end : end + 1] != b",":
            raise ValueError("a netstring without its closing comma")
        return end + 1

    def judge(self, request: bytes, reply: bytes) -> str | None:
        want = self.encode(request[request.index(b":") + 1 : -1].upper())
        return None if reply == want else f"{reply!r} instead of {want!r}"

    def requests(self) -> st.SearchStrategy[bytes]:
        return st.binary(min_size=1, max_size=64).map(self.encode)


def run(tmp_path: Path, protocol: str, model: str, defect: str = "", *extra: str) -> dict:
    command = f"{sys.executable} {SERVER} --port {{port}} --protocol {{protocol}} --model {model}"
    if defect:
        command += f" --defect {defect}"
    if ":" in protocol:
        command = command.replace("{protocol}", "netstring")
    out = tmp_path / "report.json"
    junit = tmp_path / "junit.xml"
    result = kit(
        "run",
        "--server-cmd",
        command,
        "--protocol",
        protocol,
        "--profile",
        "quick",
        "-n",
        "2",
        "--json-report",
        str(out),
        "--junit-xml",
        str(junit),
        *extra,
    )
    assert out.exists(), result.stdout + result.stderr
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, SCHEMA)
    doc["exit"] = result.returncode
    doc["junit"] = junit.read_text()
    doc["stdout"] = result.stdout
    return doc


def failed(doc: dict) -> set[str]:
    return {r["id"] for r in doc["requirements"] if r["outcome"] == "failed"}


USER = "tests.protocols.test_adapters:NetstringAdapter"
CASES = [
    # protocol, model, defect, the requirement the defect breaks
    ("line", "thread", "leak", "FDL-1"),
    ("http", "fork", "no_reap", "ZOMB-1"),
    ("resp", "select", "quit_no_close", "EXIT-1"),
    (USER, "thread", "lowercase", "PROTO-6"),
]


@pytest.mark.parametrize(("protocol", "model", "defect", "breaks"), CASES)
def test_adapter_passes_a_correct_server(
    tmp_path: Path, protocol: str, model: str, defect: str, breaks: str
) -> None:
    doc = run(tmp_path, protocol, model)
    assert failed(doc) == set(), doc["stdout"]
    assert doc["exit"] == 0
    name = protocol.rsplit(":", 1)[-1].replace("Adapter", "").lower()
    assert doc["protocol"] == name
    assert f'<property name="protocol" value="{name}"' in doc["junit"]
    outcomes = {r["id"]: r["outcome"] for r in doc["requirements"]}
    assert outcomes["PROTO-6"] == "passed"
    assert outcomes["PROTO-1"] == outcomes["PROTO-4"] == "not-applicable"


@pytest.mark.parametrize(("protocol", "model", "defect", "breaks"), CASES)
def test_adapter_catches_a_planted_defect(
    tmp_path: Path, protocol: str, model: str, defect: str, breaks: str
) -> None:
    """The requirement the defect breaks, alone: the correct server's whole run above shows
    every other check speaks the protocol through the adapter."""
    doc = run(tmp_path, protocol, model, defect, "--requirement", breaks)
    assert failed(doc) == {breaks}, doc["stdout"]
    assert doc["exit"] == 1


def test_replies_on_another_connection_fail_iso2_counted_by_the_framing(tmp_path: Path) -> None:
    doc = run(tmp_path, "http", "thread", "shared_conn", "--requirement", "ISO-2")
    assert failed(doc) == {"ISO-2"}
    detail = next(r["detail"] for r in doc["requirements"] if r["id"] == "ISO-2")
    assert "at most one reply per message" in detail


def test_line_reply_regex_judges_the_reply_lines(tmp_path: Path) -> None:
    doc = run(tmp_path, "line", "thread", "", "--line-reply", "nope .*", "--requirement", "PROTO")
    assert failed(doc) == {"PROTO-6"}
    detail = next(r["detail"] for r in doc["requirements"] if r["id"] == "PROTO-6")
    assert "does not match 'nope .*'" in detail


# -- a bad adapter is a usage error, said before anything runs ---------------------------------
class NotAnAdapter:
    pass


class BrokenAdapter(NetstringAdapter):
    def request(self, i: int, size: int = 16) -> bytes:
        raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope", "choose one of ok, echo, line, http, resp"),
        ("no_such_module_xyz:Adapter", "cannot import 'no_such_module_xyz'"),
        ("tests.protocols.test_adapters:Missing", "has no 'Missing'"),
        ("tests.protocols.test_adapters:NotAnAdapter", "is not a subclass"),
        ("tests.protocols.test_adapters:BrokenAdapter", "failed a dry run: RuntimeError: boom"),
    ],
)
def test_a_bad_adapter_is_a_usage_error(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        protocols.load(spec)
    result = kit("run", "--server", "fork", "--protocol", spec)
    assert result.returncode == 2
    assert message in result.stderr + result.stdout


# -- the built-in adapters' framing, off the wire -----------------------------------------------
def test_http_framing() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"
    assert response_length(head + b"ab") is None
    assert response_length(head + b"abcNEXT") == len(head) + 3
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    assert response_length(chunked) == len(chunked)
    assert response_length(chunked[:-2]) is None
    with pytest.raises(ValueError, match="status line"):
        response_length(b"OK!!!\r\n\r\n")
    with pytest.raises(ValueError, match="neither Content-Length nor chunked"):
        response_length(b"HTTP/1.1 200 OK\r\n\r\nbody")
    assert response_length(b"HTTP/1.1 200 OK\r\n\r\nbody", to_close=True) == 23


@pytest.mark.parametrize(
    ("response", "why"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", r"bad Content-Length \(.*-1\)"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc", "bad Content-Length"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nContent-Length: 3\r\n\r\nabc",
            "conflicting Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: notchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            "Only Transfer-Encoding: chunked",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n",
            "malformed chunk footer",
        ),
        (b"HTTP/1.1 200 OK\r\nBad Header: x\r\nContent-Length: 0\r\n\r\n", "malformed"),
    ],
)
def test_http_replies_are_judged_by_rfc_9112(response: bytes, why: str) -> None:
    """What a lenient reader took for a reply (the last Content-Length, int() of it, `chunked`
    anywhere in Transfer-Encoding) is malformed by HTTP/1.1's rules, and says why."""
    with pytest.raises(ValueError, match=why):
        response_length(response)


def test_http_equal_content_lengths_and_a_judged_reply_again_are_fine() -> None:
    twice = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"
    assert response_length(twice) == len(twice)
    assert response_length(twice) == len(twice)  # the second time from the judged cache
    assert response_length(twice + b"HTTP/1.1") == len(twice)


HTTP_DEFECTS = ["negative_length", "conflicting_length", "signed_length", "notchunked",
                "chunk_no_crlf"]  # fmt: skip


@pytest.mark.parametrize("defect", HTTP_DEFECTS)
def test_a_malformed_http_reply_fails_proto_6(tmp_path: Path, defect: str) -> None:
    """Each server frames its replies so that a lenient reader finds one; by RFC 9112 they
    are malformed, and PROTO-6 fails with the reason (the correct server passes above)."""
    doc = run(tmp_path, "http", "thread", defect, "--requirement", "PROTO-6")
    assert failed(doc) == {"PROTO-6"}, doc["stdout"]
    detail = next(r["detail"] for r in doc["requirements"] if r["id"] == "PROTO-6")
    assert "a malformed HTTP response" in detail, detail


def test_resp_framing() -> None:
    assert command(b"PING") == b"*1\r\n$4\r\nPING\r\n"
    assert value_length(b"+PONG\r\n") == 7
    assert value_length(b"$3\r\nabc\r\n") == 9
    assert value_length(b"$3\r\nab") is None
    assert value_length(b"*2\r\n:1\r\n$1\r\nx\r\n") == 15
    with pytest.raises(ValueError):
        value_length(b"PONG\r\n")


def test_a_mute_server_fails_the_adapters_root_and_blocks_the_rest(tmp_path: Path) -> None:
    mute = ROOT / "tests" / "servers" / "py" / "never_answers.py"
    result = kit(
        "run",
        "--server-cmd",
        f"{sys.executable} {mute} --port {{port}}",
        "--protocol",
        "line",
        "--profile",
        "quick",
        "--json-report",
        str(tmp_path / "r.json"),
    )
    doc = json.loads((tmp_path / "r.json").read_text())
    outcomes = {r["id"]: r for r in doc["requirements"]}
    assert result.returncode == 1
    assert failed(doc) == {"PROTO-6"}
    assert outcomes["ZOMB-1"]["outcome"] in ("blocked", "not-applicable")
    assert outcomes["FDL-1"]["blocked_by"] == "PROTO-6"


def test_a_shrunk_scenario_replays_through_the_adapter(tmp_path: Path) -> None:
    """CONC-5 on a one-client-at-a-time RESP server: the minimal scenario's snippet names the
    protocol, and run on its own it fails the same way."""
    command = f"{sys.executable} {SERVER} --port {{port}} --protocol resp --defect serial"
    result = kit(
        "run",
        "--server-cmd",
        command,
        "--protocol",
        "resp",
        "--profile",
        "quick",
        "--requirement",
        "CONC-5",
    )
    assert result.returncode == 1, result.stdout
    # The terminal indents a failure under its requirement's line: the snippet, as copied.
    shown = result.stdout.split("Replay:\n", 1)[1].split("Likely cause", 1)[0]
    snippet = textwrap.dedent(shown.rstrip(" "))
    assert "'resp') as server:" in snippet
    assert "send(server, b, b'*1\\r\\n$4\\r\\nPING\\r\\n')" in snippet
    replay = subprocess.run(
        [sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert replay.returncode != 0
    assert "an answer on B" in replay.stderr


def test_http_says_when_the_server_may_close_and_how_to_hold_a_request() -> None:
    """RFC 9112 section 9.3 and 9.6: `Connection: close`, or HTTP/1.0 without keep-alive,
    lets the server close after the response; a head without its blank line holds it."""
    http = protocols.get("http")
    length0 = b"Content-Length: 0\r\n\r\n"
    assert not http.closes_after(b"", b"HTTP/1.1 200 OK\r\n" + length0)
    assert http.closes_after(b"", b"HTTP/1.1 200 OK\r\nConnection: close\r\n" + length0)
    assert http.closes_after(b"", b"HTTP/1.1 200 OK\r\nconnection: Upgrade, Close\r\n" + length0)
    assert http.closes_after(b"", b"HTTP/1.0 200 OK\r\n" + length0)
    assert not http.closes_after(b"", b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n" + length0)
    request = http.request(3)
    n = http.opening(request)
    assert n is not None and request[:n].endswith(b"\r\n") and request[n:] == b"\r\n"


@pytest.mark.parametrize(("protocol", "rest"), [("line", b"\n"), ("resp", b"\r\n")])
def test_line_and_resp_hold_a_request_by_its_last_bytes(protocol: str, rest: bytes) -> None:
    adapter = protocols.get(protocol)
    request = adapter.request(1)
    n = adapter.opening(request)
    assert n is not None and request[n:] == rest
    assert not adapter.closes_after(request, b"")


def test_the_teaching_profiles_cannot_hold_a_request() -> None:
    """Any bytes are a whole message in ok and echo: there is no opening to send alone."""
    for name in ("ok", "echo"):
        adapter = protocols.get(name)
        assert adapter.opening(adapter.request(0)) is None
        assert not adapter.closes_after(adapter.request(0), b"OK!!!")
