"""The stacks a failure shows: the function and line of the server's own code where it waits or
spins (conformance/harness/stacks.py).

The parsers are shown on the tools' real output; end to end, at the quick and default
profiles, the zoo's serial, capped and spinning servers in C, Python and Java fail naming the
line of their defect or the line where they wait or spin because of it (the line numbers come
from the `WAITS`, `SPINS` and `DEFECT` markers in the zoo's sources); the server SIGPIPE kills
says why it shows no stack; the backlog server, on no stack either, names the `DEFECT` line of
its listen() call found in its code (conformance/harness/callsites.py: disassembly, ast, a
text search), also at -O0, without -g and stripped. A test whose tool is missing is skipped
with the reason.
Stacks are taken once the check's verdict and time are in: the verdict with and without them is
the same, and the tool runs after the check's call phase ended.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from conformance.harness import callsites, deaths, stacks
from conformance.harness.polling import wait_until
from conformance.harness.stacks import Frame, Stack, ThreadRef
from tests.conftest import ROOT

ZOO = ROOT / "tests" / "servers"
SCHEMA = json.loads((ROOT / "conformance" / "report.schema.json").read_text())

# -- the tools' output, as read here -----------------------------------------------------------
EU_STACK_DEBUG = """\
PID 6775 - process
TID 6775:
#0  0x00007f5413d752ad     __GI___libc_read - /usr/lib/x86_64-linux-gnu/libc.so.6
    ../sysdeps/unix/sysv/linux/read.c:26:10
#1  0x0000560c9472230d - 1 read_retry - /srv/carol/server
    /srv/carol/common.h:112:21
#2  0x0000560c947225d9 - 1 serve - /srv/carol/server
    /srv/carol/server.c:41:9
#3  0x0000560c947225d9 - 1 main - /srv/carol/server
    /srv/carol/server.c:71:9
#4  0x00007f5413ca424a - 1 __libc_start_call_main - /usr/lib/x86_64-linux-gnu/libc.so.6
    ../sysdeps/nptl/libc_start_call_main.h:58:16
#5  0x0000560c94722171 - 1 _start - /srv/carol/server
TID 6776:
#0  0x00007f5413d752ad     __GI___libc_accept - /usr/lib/x86_64-linux-gnu/libc.so.6
"""
EU_STACK_NO_DEBUG = """\
TID 9607:
#0  0x00007fdf2a30a2ad     __GI___libc_read - /usr/lib/x86_64-linux-gnu/libc.so.6
#1  0x000055fb8cbd230d - 1 serve_ok - /srv/carol/server
#2  0x000055fb8cbd25d9 - 1 main - /srv/carol/server
"""
EU_STACK_STRIPPED = """\
TID 9797:
#0  0x00007f66ed4e02ad     __GI___libc_read - /usr/lib/x86_64-linux-gnu/libc.so.6
#1  0x0000557ba4c1930d - 1 - /srv/carol/server
#2  0x0000557ba4c195d9 - 1 - /srv/carol/server
"""
PY_SPY_JSON = json.dumps(
    [
        {
            "os_thread_id": 11671,
            "frames": [
                {"name": "recv_all", "filename": "/usr/lib/python3.11/socket.py", "line": 9},
                {"name": "serve_ok", "filename": "/srv/carol/_common.py", "line": 73},
                {"name": "main", "filename": "/srv/carol/serial.py", "line": 16},
            ],
        }
    ]
)
JCMD_OUT = """\
"main" #1 prio=5 os_prio=0 cpu=60.12ms elapsed=1.98s tid=0x00007f nid=28187 runnable
   java.lang.Thread.State: RUNNABLE
\tat sun.nio.ch.NioSocketImpl.park(java.base@17.0.9/NioSocketImpl.java:186)
\tat Serial.serve(Serial.java:51)
\tat Serial.main(Serial.java:38)

"GC Thread#0" os_prio=0 cpu=0.1ms elapsed=1.9s tid=0x00007e nid=0x6e1c runnable
"""


def test_eu_stack_gives_own_frames_with_file_and_line() -> None:
    by_tid = stacks.parse_eu_stack(EU_STACK_DEBUG, "/srv/carol/server")
    own = [f for f in by_tid[6775] if f.own]
    assert [(f.function, f.line) for f in own] == [("read_retry", 112), ("serve", 41), ("main", 71)]
    assert by_tid[6776][0].function == "__GI___libc_accept"
    assert not by_tid[6776][0].own


def test_summary_reads_innermost_own_frame_first() -> None:
    frames = (
        Frame("read"),
        Frame("serve", "/srv/carol/server.c", 41, True),
        Frame("main", "/srv/carol/server.c", 71, True),
    )
    stack = Stack(ThreadRef(1, 1, "pid 1 (main): read()"), "native", frames)
    assert stack.summary() == "in serve() at server.c:41, called from main() at server.c:71"


def test_without_debug_info_functions_only_and_stripped_nothing() -> None:
    plain = stacks.parse_eu_stack(EU_STACK_NO_DEBUG, "/srv/carol/server")[9607]
    assert [f.function for f in plain if f.own] == ["serve_ok", "main"]
    assert all(f.line is None for f in plain)
    stripped = stacks.parse_eu_stack(EU_STACK_STRIPPED, "/srv/carol/server")[9797]
    assert [f.function for f in stripped if f.own] == ["", ""]
    stack = Stack(ThreadRef(9797, 9797, "pid 9797 (main): read()"), "native", tuple(stripped))
    assert stack.summary() == ""  # addresses tell nothing; the note says it is stripped


def test_py_spy_frames_outside_the_standard_library_are_own() -> None:
    frames = stacks.parse_py_spy(PY_SPY_JSON)[11671]
    assert [(f.function, f.own) for f in frames] == [
        ("recv_all", False),
        ("serve_ok", True),
        ("main", True),
    ]


def test_jcmd_threads_by_native_id_decimal_or_hex() -> None:
    by_tid = stacks.parse_jcmd(JCMD_OUT, os.getpid())
    main = by_tid[28187]
    assert [(f.function, f.line, f.own) for f in main] == [
        ("sun.nio.ch.NioSocketImpl.park", 186, False),
        ("Serial.serve", 51, True),
        ("Serial.main", 38, True),
    ]
    assert by_tid[0x6E1C] == []


def test_uncovered_runtime_and_missing_tool_are_said(monkeypatch: pytest.MonkeyPatch) -> None:
    me = ThreadRef(os.getpid(), os.getpid(), "pid (main): here")
    monkeypatch.setattr(stacks, "runtime_of", lambda pid: "go")
    (go,) = stacks.take([me])
    assert go.note is not None and "Go goroutine" in go.note
    monkeypatch.setattr(stacks, "runtime_of", lambda pid: "python")
    monkeypatch.setattr(stacks, "find_tool", lambda name: None)
    (missing,) = stacks.take([me])
    assert missing.note is not None and "py-spy is not installed" in missing.note
    monkeypatch.setattr(stacks, "find_tool", lambda name: "/bin/false")

    def refused(argv: list[str], timeout: float) -> str:
        raise stacks._ToolFailed("dwfl_linux_proc_attach pid 1: Operation not permitted")

    monkeypatch.setattr(stacks, "_run", refused)
    (denied,) = stacks.take([me])
    assert denied.note is not None and stacks.PTRACE_REFUSED in denied.note


def test_identical_stacks_fold_into_one() -> None:
    frames = (Frame("serve", "/s/server.c", 41, True),)
    a = Stack(ThreadRef(1, 2, "pid 1: read()"), "native", frames)
    b = Stack(ThreadRef(1, 3, "pid 1: read()"), "native", frames)
    idle = Stack(ThreadRef(1, 4, "pid 1: futex()"), "native", (Frame("futex"),))
    (folded,) = stacks._fold([a, b, idle])
    assert folded.alike == (3,)


def test_children_waiting_alike_cost_one_tool_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fork server's children, each reading its own client: one stack read stands for all
    (the budget would not cover sixty-four)."""
    pids = [os.getpid(), os.getppid(), 1]
    refs = [
        ThreadRef(p, p, f"pid {p}: read() on client C{i}'s connection") for i, p in enumerate(pids)
    ]
    read: list[int] = []

    def one(pid: int, refs: list[ThreadRef], timeout: float) -> list[Stack]:
        read.append(pid)
        return [Stack(r, "native", (Frame("serve", "/s/server.c", 41, True),)) for r in refs]

    monkeypatch.setattr(stacks, "_of_process", one)
    (stack,) = stacks.take(refs)
    assert read == [pids[0]]
    assert stack.alike == tuple(pids[1:])


# -- where listen() is called (callsites.py), as read here ----------------------------------------
#: objdump -d --no-show-raw-insn of backlog3.c at -O0 (make_listener() not inlined), trimmed;
#: the PLT stub's own jump and a jump inside main() are no calls.
OBJDUMP_O0 = """\
Disassembly of section .plt:

0000000000001130 <listen@plt>:
    1130:\tjmp    *0x2f4a(%rip)        # 4080 <listen@GLIBC_2.2.5>

Disassembly of section .text:

000000000000141d <make_listener>:
    1421:\tsub    $0x30,%rsp
    1502:\tcall   1130 <listen@plt>
    1507:\ttest   %eax,%eax

00000000000018f9 <main>:
    192f:\tcall   141d <make_listener>
    1934:\tjmp    1940 <main+0x47>
    1950:\tcall   *0x2f62(%rip)        # 4068 <listen@GLIBC_2.2.5>
"""
#: eu-addr2line -a -f -i of backlog3.c at -O1: make_listener() inlined into main().
ADDR2LINE_O1 = """\
0x000000000000156d
make_listener inlined at /w/tests/servers/c/backlog3.c:25:15 in main
/w/tests/servers/c/common.h:89:9
main
/w/tests/servers/c/backlog3.c:25:15
0x0000000000001600
??
??:0
"""


def test_objdump_calls_of_listen_and_their_callers_up_to_main() -> None:
    calls = callsites.parse_objdump(OBJDUMP_O0)
    assert calls["listen"] == [(0x1502, "make_listener"), (0x1950, "main")]
    assert calls["make_listener"] == [(0x192F, "main")]
    assert callsites.chains_of(calls, "listen") == [[0x1502, 0x192F], [0x1950]]


def test_addr2line_gives_inlined_frames_innermost_first() -> None:
    by_address = callsites.parse_addr2line(ADDR2LINE_O1)
    assert [(f.function, f.line, f.own) for f in by_address[0x156D]] == [
        ("make_listener", 89, True),
        ("main", 25, True),
    ]
    assert by_address[0x1600] == [Frame("", None, None, False)]  # stripped: nothing to name


@pytest.mark.parametrize(
    ("argv", "found"),
    [
        (["python3", "-S", "srv.py", "--port", "1"], ("script", "srv.py")),
        (["python3", "-u", "-X", "dev", "-W", "ignore", "a/srv.py"], ("script", "a/srv.py")),
        (["python3", "-uSm", "pkg.srv", "1"], ("module", "pkg.srv")),
        (["python3", "-m", "srv"], ("module", "srv")),
        (["python3", "-c", "import srv"], None),
        (["python3"], None),
    ],
)
def test_the_script_a_python_server_runs(argv: list[str], found: object) -> None:
    assert callsites.script_of(argv) == found


SOCKETSERVER = """\
import socketserver


class Server(socketserver.ThreadingTCPServer):
    request_queue_size = 2


def serve(port):
    return Server(("", port), Handler)


def main():
    serve(1).serve_forever()
"""


def test_python_sources_name_the_listen_call_and_its_callers(tmp_path: Path) -> None:
    """Parsed, not run: socketserver's class attribute, and a listen() in a module beside
    the script, with the function that calls it (the line holding the number)."""
    (tmp_path / "helpers.py").write_text(
        "def listener(sock, n):\n    sock.listen(n)\n    return sock\n"
    )
    (tmp_path / "main.py").write_text(
        "import socket\nfrom helpers import listener\n\n\ndef main():\n"
        "    listener(socket.socket(), 3)\n"
    )
    (tmp_path / "ss.py").write_text(SOCKETSERVER)
    modules: dict = {}
    me = os.getpid()
    creds = stacks._credentials(me)
    callsites._load(me, creds, str(tmp_path / "main.py"), "__main__", modules)
    (chain,) = callsites.python_chains(modules)
    assert [(f.function, Path(f.file or "").name, f.line) for f in chain] == [
        ("listener", "helpers.py", 2),
        ("main", "main.py", 6),
    ]
    assert chain[1].source == "    listener(socket.socket(), 3)"
    modules = {}
    callsites._load(me, creds, str(tmp_path / "ss.py"), "__main__", modules)
    (chain,) = callsites.python_chains(modules)
    assert [(f.function, f.line) for f in chain] == [("class Server", 5)]
    assert (
        "in class Server at "
        in callsites.render(
            callsites.CallSites(callsites.ListenRef(me, 2), "python", "how", (chain,)), 2
        )[1]
    )


METHODS = """\
class Server:
    def bind(self):
        self.sock.listen(3)

    def run(self):
        self.bind()


def elsewhere(client):
    client.bind()
"""


def test_a_method_s_callers_are_its_own_class_s_self_calls(tmp_path: Path) -> None:
    """`client.bind()` may be any class's bind(): only `self.bind()` counts as its caller."""
    (tmp_path / "m.py").write_text(METHODS)
    modules: dict = {}
    me = os.getpid()
    callsites._load(me, stacks._credentials(me), str(tmp_path / "m.py"), "__main__", modules)
    (chain,) = callsites.python_chains(modules)
    assert [(f.function, f.line) for f in chain] == [("Server.bind", 3), ("Server.run", 6)]


JAVA_SOURCE = """\
/* new ServerSocket(1, 2) in a comment is no call */
public final class Srv {
    static String s = "x.bind(a, 1)";

    static ServerSocket open(int port) throws IOException {
        if (port > 0) {
            return new ServerSocket(port); // the default backlog, 50
        }
        ServerSocket l = new ServerSocket();
        l.bind(new InetSocketAddress(port), 3);
        return l;
    }
}
"""


def test_java_source_is_searched_for_the_calls_that_take_a_backlog() -> None:
    """A text search, comments and literals blanked: each call with its class and method
    (a ServerSocket made without a port does not listen yet)."""
    sites = callsites.java_sites(JAVA_SOURCE, "Srv.java")
    assert [(f.function, f.line) for f in sites] == [("Srv.open", 7), ("Srv.open", 10)]
    assert sites[1].source == "        l.bind(new InetSocketAddress(port), 3);"
    java = ["java", "-Xmx64m", "-cp", "build:src", "Backlog3", "8080"]
    assert callsites.java_source_of(java) == ("class", "Backlog3")
    assert callsites.java_source_of(["java", "-Dx=1", "Srv.java", "1"]) == ("file", "Srv.java")
    assert callsites.java_source_of(["java", "-jar", "srv.jar"]) is None


def test_missing_disassembler_is_named_with_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stacks, "runtime_of", lambda pid: "native")
    monkeypatch.setattr(stacks, "find_tool", lambda name: None)
    found = callsites.find(callsites.ListenRef(os.getpid(), 3))
    assert found.note is not None and "apt-get install binutils" in found.note
    lines = callsites.render(found, 3)
    assert "listen(fd, 3)" in lines[0]  # the number to search for, as without the search
    assert "objdump is not installed here" in lines[1]


# -- end to end: the zoo's servers -------------------------------------------------------------
#: Comment openings: a marker in a comment of its own (a file's header) marks no line.
_COMMENT = ("*", "/*", '"""', "#", "//")


def defect_lines(source: Path) -> tuple[int, str, set[int]]:
    """(number, text, lines) of the line where the server waits or spins because of its
    defect: the one its source marks `WAITS` (where it waits), else `SPINS` (the loop that
    spins), else `DEFECT`; a marker in a comment line of its own does not count. A marked
    loop counts with its body (`lines`): a spinning thread is caught on any of its lines, by
    when the sample lands."""
    lines = source.read_text().splitlines()
    for marker in ("WAITS", "SPINS", "DEFECT"):
        for number, text in enumerate(lines, 1):
            code = text.strip()
            if marker in code and not code.startswith(_COMMENT):
                return number, code, _with_loop_body(lines, number)
    raise AssertionError(f"no WAITS, SPINS or DEFECT marker in {source}")


def _with_loop_body(lines: list[str], number: int) -> set[int]:
    """`number`, and when its line opens a loop, every line of the loop's body after it (more
    indented, up to the C or Java loop's closing brace)."""
    text = lines[number - 1]
    if not text.strip().startswith(("while", "for")):
        return {number}
    indent = len(text) - len(text.lstrip())
    body = {number}
    for after, line in enumerate(lines[number:], number + 1):
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            if line.strip().startswith("}"):
                body.add(after)
            break
        body.add(after)
    return body


def _needs(tool: str) -> None:
    if stacks.find_tool(tool) is None:
        pytest.skip(f"{tool} is not installed here ({stacks.INSTALL[tool]}): no stacks to check")


def _run(tmp_path: Path, command: str, req: str, *args: str, **env: str) -> dict:
    out = tmp_path / f"report-{len(list(tmp_path.iterdir()))}.json"
    environ = {**os.environ, **env}
    result = subprocess.run(
        [sys.executable, "-m", "conformance", "run", "--server-cmd", command,
         "--requirement", req, "--json-report", str(out), *args],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=environ,
    )  # fmt: skip
    assert out.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, SCHEMA)
    (entry,) = [r for r in doc["requirements"] if r["id"] == req]
    return entry


def _shows_line(entry: dict, source: Path) -> None:
    _, text, lines = defect_lines(source)
    assert entry["outcome"] == "failed", entry
    late = re.search(r"\((\S+) did not answer within [\d.]+ s: no stack\)", entry["detail"])
    if late:
        # The failure says so, as it must; whether the line is found is then unknown.
        pytest.skip(f"{late.group(1)} was too slow on this machine now: {late.group(0)}")
    assert any(f"{source.name}:{n}" in entry["detail"] for n in lines), entry["detail"]
    if len(lines) == 1:
        assert text in entry["detail"], entry["detail"]
    own = [f for s in entry["stacks"] for f in s["frames"] if f["own"]]
    assert any(f.get("file", "").endswith(source.name) and f.get("line") in lines for f in own)


#: The runtime each language's stacks are read as (stacks.runtime_of), and the tool.
RUNTIME = {"c": ("native", stacks.EU_STACK), "python": ("python", stacks.PY_SPY),
           "java": ("jvm", stacks.JCMD)}  # fmt: skip
PROFILES = ("quick", "default")
#: The zoo's shapes are checked at both; the README's test command runs the default profile
#: (the one a user runs, as the matrix's fast tier does) and --full-matrix adds quick.
BOTH_PROFILES = [pytest.param("quick", marks=pytest.mark.full_matrix), "default"]


def _zoo_command(language: str, name: str, request: pytest.FixtureRequest) -> tuple[str, Path]:
    """The command that starts zoo server `name` in `language`, and its source file."""
    _needs(RUNTIME[language][1])
    if language == "c":
        return f"{request.getfixturevalue('zoo_build') / name} {{port}}", ZOO / "c" / f"{name}.c"
    if language == "python":
        source = ZOO / "py" / f"{name}.py"
        return f"{sys.executable} -S {source} --port {{port}}", source
    java_class = "".join(word.capitalize() for word in name.split("_"))
    source = ZOO / "java" / f"{java_class}.java"
    # The sources' directory on the class path: where the kit finds the line's text.
    build = request.getfixturevalue("java_build")
    return f"java -cp {build}:{source.parent} {java_class} {{port}}", source


@pytest.mark.parametrize("profile", PROFILES)
def test_c_serial_built_with_g_shows_its_defect_line(
    profile: str, zoo_build: Path, tmp_path: Path
) -> None:
    _needs(stacks.EU_STACK)
    command = f"{zoo_build / 'serial'} {{port}}"
    entry = _run(tmp_path, command, "CONC-1", "--profile", profile)
    _shows_line(entry, ZOO / "c" / "serial.c")
    assert "in read_retry() at " in entry["detail"]  # the innermost frame of its own code


def test_c_serial_stripped_says_so(zoo_build: Path, tmp_path: Path) -> None:
    _needs(stacks.EU_STACK)
    if shutil.which("strip") is None:
        pytest.skip("no strip (binutils) here")
    binary = tmp_path / "serial-stripped"
    shutil.copy(zoo_build / "serial", binary)
    subprocess.run(["strip", str(binary)], check=True, timeout=60)
    entry = _run(tmp_path, f"{binary} {{port}}", "CONC-1")
    assert entry["outcome"] == "failed"
    assert "stripped" in entry["detail"], entry["detail"]
    assert "serial.c:" not in entry["detail"]


#: The zoo's defects whose failing check names where the server waits or spins: serial (CONC-1),
#: capped (CONC-2), the EOF spins (EXIT-4: busy_child's children after their session, Java's
#: read() loop at -1; EXIT-2: that loop, and sigpipe_eof replying to EOF while its client
#: still reads), and the server that ignores `exit` (EXIT-1). C's serial is above, with its
#: innermost frame.
WAITS_OR_SPINS = [
    ("python", "serial", "CONC-1"), ("java", "serial", "CONC-1"),
    ("c", "thread_cap2", "CONC-2"), ("python", "thread_cap2", "CONC-2"),
    ("java", "thread_cap2", "CONC-2"),
    ("c", "busy_child", "EXIT-4"), ("python", "busy_child", "EXIT-4"),
    ("java", "eof_spin", "EXIT-4"), ("java", "eof_spin", "EXIT-2"),
    ("c", "sigpipe_eof", "EXIT-2"), ("python", "sigpipe_eof", "EXIT-2"),
    ("c", "exit_no_close", "EXIT-1"),
]  # fmt: skip
#: The README's command: every C case, and one wait (Python: py-spy) and one spin (Java:
#: jcmd) in each other runtime; the rest of the table with --full-matrix.
FAST_WAITS_OR_SPINS = {("python", "serial", "CONC-1"), ("java", "eof_spin", "EXIT-4")}


def _waits_or_spins() -> list:
    return [
        pytest.param(
            *case,
            marks=() if case[0] == "c" or case in FAST_WAITS_OR_SPINS else pytest.mark.full_matrix,
        )
        for case in WAITS_OR_SPINS
    ]


@pytest.mark.parametrize("profile", BOTH_PROFILES)
@pytest.mark.parametrize(("language", "name", "req"), _waits_or_spins())
def test_zoo_defects_show_where_they_wait_or_spin(
    language: str, name: str, req: str, profile: str, request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:  # fmt: skip
    """The serial server reads its one client, the capped one's main thread waits for a slot,
    the spinning children and threads loop, the server that ignores `exit` reads on: each
    failure names the marked line, read with its runtime's tool."""
    command, source = _zoo_command(language, name, request)
    entry = _run(tmp_path, command, req, "--profile", profile)
    _shows_line(entry, source)
    assert {s["runtime"] for s in entry["stacks"]} == {RUNTIME[language][0]}


@pytest.mark.parametrize("profile", BOTH_PROFILES)
@pytest.mark.parametrize("language", ["c", "python"])
def test_death_by_sigpipe_says_why_there_is_no_stack(
    language: str, profile: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """sigpipe_eof dies at EXIT-3's resets: a dead process has no stack, and SIGPIPE leaves no
    core, so the failure says so rather than show anything. (Java has no such server: the JVM
    ignores SIGPIPE, and the same unchecked EOF spins instead: EofSpin above.)"""
    command, _ = _zoo_command(language, "sigpipe_eof", request)
    entry = _run(tmp_path, command, "EXIT-3", "--profile", profile)
    assert entry["outcome"] == "failed", entry
    assert "SIGPIPE" in entry["detail"], entry["detail"]
    assert deaths.NO_STACK + deaths.NO_STACK_SIGPIPE in entry["detail"], entry["detail"]
    assert "stacks" not in entry


def _backlog_of(text: str) -> str:
    """The backlog as the marked line passes it: `make_listener(port, 3)`, `backlog=3)`."""
    found = re.search(r"\b(\d+)\)", text)
    assert found, text
    return found.group(1)


def _shows_listen_line(entry: dict, source: Path, how: str) -> None:
    """CONC-3 failed naming the marked line among its listen() call's frames, with its text,
    in the failure and in the JSON report's `call_sites`."""
    number, text, _ = defect_lines(source)
    assert entry["outcome"] == "failed", entry
    assert "Stack:    none: a backlog is not where a thread waits" in entry["detail"]
    assert how in entry["detail"], entry["detail"]
    assert f"{source.name}:{number}: {text}" in entry["detail"], entry["detail"]
    frames = [f for site in entry["call_sites"] for f in site["frames"]]
    assert any(f.get("file", "").endswith(source.name) and f.get("line") == number
               for f in frames), entry["call_sites"]  # fmt: skip
    assert "stacks" not in entry


#: How each language's listen() call is found, as the failure says it.
LISTEN_HOW = {"c": callsites.NATIVE_HOW, "python": "in its source, found by reading",
              "java": "in its source, found by searching the text of Backlog3.java"}  # fmt: skip


@pytest.mark.parametrize("profile", BOTH_PROFILES)
@pytest.mark.parametrize("language", ["c", "python", "java"])
def test_backlog_names_the_line_of_its_listen_call(
    language: str, profile: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """backlog3's failure is no wait: its threads are where a correct server's are (in
    accept()), so no stack shows the line. Its listen() call is found in the code it runs
    (callsites.py): C's by disassembling the executable, down from common.h's
    make_listener() to main()'s call with the 3; Python's by parsing the script and the
    _common module it imports; Java's by searching its source's text for bind()."""
    if language == "c":
        _needs_call_site_tools()
    command, source = _zoo_command(language, "backlog3", request)
    entry = _run(tmp_path, command, "CONC-3", "--profile", profile)
    _shows_listen_line(entry, source, LISTEN_HOW[language])
    if language != "java":  # Java's callers are not followed: bind() is in main() itself
        assert "called from main() at " in entry["detail"], entry["detail"]
    assert f"when it started ({_backlog_of(defect_lines(source)[1])} here)" in entry["detail"]


def test_a_server_at_an_address_gets_the_call_to_search_for() -> None:
    """The search reads the code of a server the kit launched only: one at an address may be
    anyone's process. It gets the number and the call to search for, as before."""
    from types import SimpleNamespace

    from conformance.checks.test_concurrency import _where_the_backlog_is

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(3)
        port = listener.getsockname()[1]
        at_address = SimpleNamespace(port=port, launched=None, process=None)
        lines, ref = _where_the_backlog_is(at_address, 64)  # type: ignore[arg-type]
        assert ref is None
        assert "listen(fd, 3)" in lines[0] and "sock.listen(3)" in lines[0], lines
        launched = SimpleNamespace(port=port, launched=object(), process=SimpleNamespace(pid=7))
        lines, ref = _where_the_backlog_is(launched, 64)  # type: ignore[arg-type]
        assert (lines, ref) == ([], callsites.ListenRef(7, 3))


def _needs_call_site_tools() -> None:
    for tool in (callsites.OBJDUMP, callsites.ADDR2LINE):
        if stacks.find_tool(tool) is None:
            pytest.skip(f"{tool} is not installed here ({callsites.INSTALL[tool]})")


def _build_backlog3(tmp_path: Path, *flags: str) -> Path:
    """backlog3.c built with `flags` (the zoo builds with -O1 -g)."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc) on this machine")
    binary = tmp_path / "backlog3"
    argv = ["cc", *flags, "-Wall", "-pthread", "-o", str(binary), str(ZOO / "c" / "backlog3.c")]
    subprocess.run(argv, check=True, timeout=120)
    return binary


def test_backlog_in_a_helper_not_inlined_is_walked_up_to_main(tmp_path: Path) -> None:
    """At -O0 make_listener() is a function of its own, whose listen() call says nothing of
    the 3: its callers are found in the same disassembly, and main()'s line is shown."""
    _needs_call_site_tools()
    binary = _build_backlog3(tmp_path, "-O0", "-g")
    entry = _run(tmp_path, f"{binary} {{port}}", "CONC-3")
    _shows_listen_line(entry, ZOO / "c" / "backlog3.c", callsites.NATIVE_HOW)
    assert "in make_listener() at " in entry["detail"]
    assert "called from main() at " in entry["detail"], entry["detail"]


def test_backlog_without_debug_info_names_functions_and_stripped_says_so(
    tmp_path: Path,
) -> None:
    _needs_call_site_tools()
    plain = _build_backlog3(tmp_path, "-O1")
    entry = _run(tmp_path, f"{plain} {{port}}", "CONC-3")
    assert entry["outcome"] == "failed", entry
    assert "in main()" in entry["detail"], entry["detail"]
    assert callsites.NO_DEBUG_INFO in entry["detail"], entry["detail"]
    assert "backlog3.c:" not in entry["detail"]
    subprocess.run(["strip", str(plain)], check=True, timeout=60)
    entry = _run(tmp_path, f"{plain} {{port}}", "CONC-3")
    assert entry["outcome"] == "failed", entry
    assert "its executable is stripped" in entry["detail"], entry["detail"]
    assert "listen(fd, 3)" in entry["detail"], entry["detail"]  # the number to search for


def test_verdict_is_the_same_without_stacks(zoo_build: Path, tmp_path: Path) -> None:
    _needs(stacks.EU_STACK)
    command = f"{zoo_build / 'serial'} {{port}}"
    with_stacks = _run(tmp_path, command, "CONC-1")
    without = _run(tmp_path, command, "CONC-1", **{stacks.DISABLE_ENV: "0"})
    assert (with_stacks["outcome"], with_stacks["score"]) == (without["outcome"], without["score"])
    assert "stacks" not in without and "Stack:" not in without["detail"]

    def verdict(detail: str) -> list[str]:
        keep = ("[CONC-1", "  Expected:", "  Actual:", "  Likely cause:")
        return [line for line in detail.splitlines() if line.startswith(keep)]

    assert verdict(with_stacks["detail"]) == verdict(without["detail"])


CHECK = """
from conformance.harness import fail
from conformance.harness.stacks import ThreadRef
from conformance.marks import requirement


@requirement("CONC-1")
def test_stand_in(server):
    pid = server.process.pid
    fail("a reply", "nothing", threads=[ThreadRef(pid, pid, f"pid {pid} (main): here")])
"""
TIMES = """
import json, time
import pytest
from conformance.harness import stacks

_take = stacks.take


def _timed(*args, **kwargs):
    with open("times.json", "a") as f:
        f.write(json.dumps({"take": time.time()}) + "\\n")
    return _take(*args, **kwargs)


stacks.take = _timed


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    if call.when == "call":
        with open("times.json", "a") as f:
            f.write(json.dumps({"call_stop": call.stop}) + "\\n")
    yield
"""


def test_stacks_are_taken_after_the_check_ended(pytester: pytest.Pytester) -> None:
    """The tool runs after the check's call phase stopped (its time is taken): an order of
    events, not a duration, so load cannot change it."""
    pytester.makepyfile(test_stand_in=CHECK)
    pytester.makeconftest(TIMES)
    command = f"{sys.executable} -S {ZOO / 'py' / 'serial.py'} --port {{port}}"
    pytester.runpytest_subprocess(
        "test_stand_in.py", "--conformance-server-cmd", command, "-p", "no:cacheprovider"
    )
    events = [json.loads(line) for line in (pytester.path / "times.json").read_text().splitlines()]
    stop = next(e["call_stop"] for e in events if "call_stop" in e)
    take = next(e["take"] for e in events if "take" in e)
    assert take >= stop, events


# -- what the report may show: only what the server itself could read --------------------------
@pytest.fixture
def readable_dir() -> Iterator[Path]:
    """A directory anyone may search (pytest's tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="stacks-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def _sleeper(argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*argv, "sleep", "30"], **kwargs)  # type: ignore[call-overload]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a process as another user")
def test_a_source_line_is_shown_only_if_the_server_may_read_it(readable_dir: Path) -> None:
    open_file = readable_dir / "open.c"
    open_file.write_text("int shown;\n")
    open_file.chmod(0o644)
    secret = readable_dir / "secret.c"
    secret.write_text("int another_students_line;\n")
    secret.chmod(0o600)
    proc = _sleeper([], user=65534, group=65534, cwd="/")
    try:
        creds = stacks._credentials(proc.pid)
        assert creds is not None
        assert stacks._read_as(proc.pid, str(open_file), 1, *creds) == "int shown;\n"
        assert stacks._read_as(proc.pid, str(secret), 1, *creds) is None
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare(1) for a process in a mount namespace of its own",
)
def test_in_another_mount_namespace_no_symbolic_link_is_followed(readable_dir: Path) -> None:
    real = readable_dir / "server.c"
    real.write_text("int line_one;\n")
    elsewhere = readable_dir / "bob.c"
    elsewhere.write_text("int bobs_line;\n")
    (readable_dir / "link.c").symlink_to(elsewhere)
    proc = _sleeper(["unshare", "--mount", "--"], cwd=str(readable_dir))
    try:

        def in_own_namespace() -> bool:
            creds = stacks._credentials(proc.pid)
            return creds is not None and not creds[2]

        assert wait_until(in_own_namespace, 10)[0], "unshare did not start its child"
        creds = stacks._credentials(proc.pid)
        assert creds is not None
        assert stacks._read_as(proc.pid, "server.c", 1, *creds) == "int line_one;\n"
        assert stacks._read_as(proc.pid, "link.c", 1, *creds) is None
    finally:
        proc.kill()
        proc.wait()
