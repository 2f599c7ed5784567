"""Where in its own code a server calls listen(): the line behind a small backlog (CONC-3).

A backlog is not a place where a thread waits: during CONC-3's burst the server sits in
accept(), as a correct one does, and the call that set the backlog ran once, at startup, and
is on no stack. So the line is found statically, in what the server runs:

- a native executable (/proc/PID/exe): its call sites of `listen` found by disassembly
  (`objdump -d`, binutils), each mapped to function, file and line, inlined callers included,
  by `eu-addr2line -f -i` (elfutils); where the call is in a helper that was not inlined (at
  -O0, `make_listener()` in a header), the helper's callers are walked up to main() through
  the same disassembly (static call sites: every caller is shown, not the one that ran);
- a Python script (from /proc/PID/cmdline): parsed with `ast`, with the modules beside it
  that it imports; its `.listen(...)` calls, `create_server(..., backlog=...)` and socketserver's
  `request_queue_size`, each with its enclosing function, and that function's callers.

Both read files only, never stop the server, and run once the verdict is in (the plugin asks,
like the stacks), bounded by `BUDGET`; only for a server the kit launched (docs/design.md).
Source lines are shown only where the server's own process could read them (stacks.py).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import time
from dataclasses import dataclass

from conformance.harness import stacks
from conformance.harness.stacks import Frame

#: Seconds in all for one failure's search (every tool run together).
BUDGET = 2.0
#: At most this many chains (call site and its callers) are shown.
MAX_SITES = 4
#: Callers walked up from a call site (a helper's helper's caller ...).
MAX_DEPTH = 6
#: Python files read at most (the script and the modules beside it it imports), and their size.
MAX_FILES = 20
MAX_BYTES = 1 << 20

OBJDUMP = "objdump"
ADDR2LINE = "eu-addr2line"
INSTALL = {OBJDUMP: "apt-get install binutils", ADDR2LINE: stacks.INSTALL[stacks.EU_STACK]}

#: The number kept when nothing better is found: what to search for, in each language.
SEARCH_FOR = (
    "look for listen(fd, {n}) in C, sock.listen({n}) in Python, bind(address, {n}) or "
    "new ServerSocket(port, {n}) in Java"
)
NONE = (
    "Stack:    none: a backlog is not where a thread waits but the number the server gave listen() "
)
NATIVE_HOW = "found by disassembling its executable"
JAVA_HOW = (
    "in its source, found by searching the text of {source} for the calls that set a "
    "listening socket's backlog (not a stack; its callers are not followed)"
)
NO_CALL_JAVA = "no new ServerSocket(...) or .bind(...) in {source}"
PYTHON_HOW = (
    "in its source, found by reading {script} and the modules beside it that it imports "
    "(static analysis, not a stack)"
)
STRIPPED = (
    "its executable is stripped: the listen() call is at {addresses}, with no function or "
    "line to show. Build it with -g, and without strip or -s, to see them"
)
NO_DEBUG_INFO = (
    "the executable has no debug information: functions only. Build it with -g (CFLAGS=-g) "
    "to see the file and line"
)
NO_CALL_NATIVE = (
    "its executable calls no listen() itself: a library it links does (listen() in {libs}?), "
    "or it makes the system call directly"
)
NO_CALL_PYTHON = (
    "no .listen(...) call, create_server(backlog=...) or request_queue_size in {files}: the "
    "backlog comes from a library's default"
)


@dataclass(frozen=True, slots=True)
class ListenRef:
    """A launched server whose listen() call a failure asks for, and the backlog the kernel
    holds for its listening socket (sock_diag)."""

    pid: int
    backlog: int


@dataclass(frozen=True, slots=True)
class CallSites:
    """The listen() calls found (each innermost first: the call, then its callers), or why
    there are none (`note`, also set beside partial frames)."""

    ref: ListenRef
    runtime: str
    how: str = ""
    chains: tuple[tuple[Frame, ...], ...] = ()
    note: str | None = None

    def to_json(self) -> list[dict[str, object]]:
        base: dict[str, object] = {"pid": self.ref.pid, "call": "listen", "runtime": self.runtime}
        if self.how:
            base["how"] = self.how
        if self.note:
            base["note"] = self.note
        if not self.chains:
            return [{**base, "frames": []}]
        return [{**base, "frames": [f.to_json() for f in c]} for c in self.chains]


def find(ref: ListenRef, budget: float = BUDGET) -> CallSites:
    """The listen() calls of the server `ref` names, within `budget` seconds. Reads files
    only; the server runs on."""
    runtime = stacks.runtime_of(ref.pid)
    deadline = time.monotonic() + budget
    try:
        if runtime == "native":
            return _native(ref, deadline)
        if runtime == "python":
            return _python(ref)
        if runtime == "jvm":
            return _java(ref)
    except subprocess.TimeoutExpired as exc:
        return CallSites(ref, runtime, note=stacks.TIMED_OUT.format(
            tool=os.path.basename(str(exc.cmd[0])), seconds=budget))  # fmt: skip
    except stacks._ToolFailed as exc:
        return CallSites(ref, runtime, note=f"the search failed: {exc}")
    if runtime == "unknown":
        return CallSites(ref, runtime, note="the server is gone: no executable to search")
    what = {"jvm": "Java", "go": "Go"}.get(runtime, runtime)
    return CallSites(ref, runtime, note=f"the kit does not search {what} code for listen()")


def render(found: CallSites | None, backlog: int) -> list[str]:
    """The `Stack:` lines: the calls found, with their source lines, or the number to search
    for and why nothing better is shown."""
    search = SEARCH_FOR.format(n=backlog)
    if found is None or not found.chains:
        lines = [f"{NONE}when it started: {search}"]
        if found is not None and found.note:
            lines.append(f"{'':12}({found.note})")
        return lines
    many = len(found.chains) > 1
    count = len(found.chains) if len(found.chains) <= MAX_SITES else f"more than {MAX_SITES}"
    calls = f"its {count} listen() calls" if many else "its listen() call"
    lines = [f"{NONE}when it started ({backlog} here); {calls}, {found.how}:"]
    for chain in found.chains[:MAX_SITES]:
        own = [f for f in chain if f.own] or list(chain)
        if any(f.function for f in own):
            lines.append(f"{'':12}in " + ", called from ".join(_place(f) for f in own))
        for frame in own:
            if frame.source is not None:
                where = f"{stacks._short(frame.file)}:{frame.line}"
                lines.append(f"{'':14}{where}: {frame.source.strip()}")
    if len(found.chains) > MAX_SITES:
        lines.append(f"{'':12}... and more (all are in the JSON report)")
    if many:
        lines.append(f"{'':12}(which of them ran is not known from the code: {search})")
    if found.note:
        lines.append(f"{'':12}({found.note})")
    return lines


def _place(frame: Frame) -> str:
    if frame.function.startswith("class "):
        where = f" at {stacks._short(frame.file)}:{frame.line}" if frame.file else ""
        return f"{frame.function}{where}"
    return frame.place()


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0.05:
        raise stacks._ToolFailed("no time left")
    return min(left, 3.0)


# -- native: objdump and eu-addr2line ---------------------------------------------------------
#: `0000000000001189 <make_listener>:`, `Disassembly of section .plt:`, and an instruction
#: naming its target: `156d:\tcall   1100 <listen@plt>`, `call *0x2f62(%rip) # 4068
#: <listen@GLIBC_2.2.5>` (-fno-plt), `bl 5c0 <listen@plt>` (arm64), a tail call's `jmp`.
_FUNCTION = re.compile(r"^([0-9a-f]+) <(.+)>:$")
_SECTION = re.compile(r"^Disassembly of section (\S+):")
_INSN = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s.*<([^>+]+)>\s*$")
_CALLS = frozenset({"call", "callq", "jmp", "jmpq", "bl", "b", "jal", "jalr", "tail"})
_PLT = (".plt", ".plt.got", ".plt.sec", ".iplt")


def parse_objdump(out: str) -> dict[str, list[tuple[int, str]]]:
    """objdump -d output as {called symbol: [(call address, calling function)]}; the symbol
    without its version or `@plt` (`listen`), PLT stubs themselves left out."""
    calls: dict[str, list[tuple[int, str]]] = {}
    function, section = "", ""
    for line in out.splitlines():
        if m := _SECTION.match(line):
            section = m.group(1)
        elif m := _FUNCTION.match(line):
            function = m.group(2)
        elif (m := _INSN.match(line)) and m.group(2) in _CALLS:
            if section in _PLT or function.endswith("@plt"):
                continue
            target = m.group(3).split("@")[0]
            if target != function:  # a jump inside the function, not a call
                calls.setdefault(target, []).append((int(m.group(1), 16), function))
    return calls


def chains_of(calls: dict[str, list[tuple[int, str]]], name: str) -> list[list[int]]:
    """Addresses of each call of `name`, then of the calls of the function that holds it, up to
    main() or a function nobody calls (a thread's start routine, a callback)."""
    done: list[list[int]] = []

    def walk(chain: list[int], function: str, seen: frozenset[str]) -> None:
        if len(done) > MAX_SITES:
            return
        callers = [c for c in calls.get(function, []) if c[1] not in seen]
        if function == "main" or not callers or len(chain) > MAX_DEPTH:
            done.append(chain)
            return
        for address, caller in callers:
            walk([*chain, address], caller, seen | {caller})

    for address, function in calls.get(name, []):
        walk([address], function, frozenset({function}))
    return done[: MAX_SITES + 1]


#: eu-addr2line -f -i: `make_listener inlined at /x/backlog3.c:25:15 in main`, then `FILE:L:C`.
_INLINED = " inlined at "
_LOCATION = re.compile(r"^(?P<file>.+?):(?P<line>\d+|\?)(?::\d+)?$")


def parse_addr2line(out: str) -> dict[int, list[Frame]]:
    """eu-addr2line -a -f -i output by address, innermost frame first."""
    by_address: dict[int, list[Frame]] = {}
    frames: list[Frame] | None = None
    function: str | None = None
    for line in out.splitlines():
        if line.startswith("0x") and function is None:
            frames = by_address.setdefault(int(line, 16), [])
        elif frames is not None and function is None:
            function = line.split(_INLINED)[0].strip()
        elif frames is not None and function is not None:
            m = _LOCATION.match(line.strip())
            file = m.group("file") if m and m.group("file") != "??" else None
            number = int(m.group("line")) if m and m.group("line").isdigit() else None
            name = "" if function == "??" else function
            own = bool(name) and name not in stacks._START and not _library_file(file)
            frames.append(Frame(name, file, number or None, own))
            function = None
    return by_address


def _library_file(file: str | None) -> bool:
    return file is not None and (file.startswith(stacks._NOT_OWN_PREFIXES) or "/.cargo/" in file)


def _native(ref: ListenRef, deadline: float) -> CallSites:
    for tool in (OBJDUMP, ADDR2LINE):
        if stacks.find_tool(tool) is None:
            missing = f"{tool} is not installed here, so the listen() call is not searched for: "
            return CallSites(ref, "native", note=missing + INSTALL[tool])
    exe = f"/proc/{ref.pid}/exe"
    out = stacks._run([OBJDUMP, "-d", "--no-show-raw-insn", exe], _left(deadline))
    calls = parse_objdump(out)
    chains = chains_of(calls, "listen") or chains_of(calls, "__listen")
    if not chains:
        libs = ", ".join(sorted({os.path.basename(p) for p in _libraries(ref.pid)}))
        return CallSites(
            ref, "native", NATIVE_HOW, note=NO_CALL_NATIVE.format(libs=libs or "a library")
        )
    addresses = sorted({a for c in chains for a in c})
    argv = [ADDR2LINE, "-a", "-f", "-i", "-C", "-e", exe, *map(hex, addresses)]
    by_address = parse_addr2line(stacks._run(argv, _left(deadline)))
    found = tuple(
        tuple(stacks._with_source(ref.pid, [f for a in c for f in by_address.get(a, [])]))
        for c in chains
    )
    named = [f for c in found for f in c if f.function]
    note = None
    if not named:
        note = STRIPPED.format(addresses=", ".join(hex(c[0]) for c in chains))
        found = ()
    elif not any(f.line for f in named):
        note = NO_DEBUG_INFO
    return CallSites(ref, "native", NATIVE_HOW, found, note)


def _libraries(pid: int) -> set[str]:
    """The shared libraries the process maps, other than the C library's own."""
    libs = set()
    for line in stacks._maps(pid).splitlines():
        path = line.split()[-1] if len(line.split()) >= 6 else ""
        name = os.path.basename(path)
        if ".so" in name and not name.startswith(("libc.", "ld-", "libpthread", "libm.")):
            libs.add(path)
    return libs


# -- Python: the script's own source ----------------------------------------------------------
#: Interpreter options that take a value in the next argument.
_PY_VALUE_OPTIONS = frozenset({"-W", "-X", "--check-hash-based-pycs"})


def script_of(argv: list[str]) -> tuple[str, str] | None:
    """("script", path) or ("module", name) from an interpreter's command line, or None
    (-c, or an interactive interpreter)."""
    args = iter(argv[1:])
    for arg in args:
        if arg == "--":
            nxt = next(args, None)
            return ("script", nxt) if nxt else None
        if arg in _PY_VALUE_OPTIONS:
            next(args, None)
        elif arg.startswith("--"):
            continue
        elif arg.startswith("-") and arg != "-":
            flags = arg[1:]
            for i, flag in enumerate(flags):
                if flag == "c":
                    return None
                if flag == "m":
                    module = flags[i + 1 :] or next(args, None)
                    return ("module", module) if module else None
                if flag in "WX":
                    if not flags[i + 1 :]:
                        next(args, None)
                    break
        else:
            return ("script", arg) if arg != "-" else None
    return None


@dataclass
class _Module:
    path: str
    tree: ast.Module
    lines: list[str]
    #: Local names bound to a function of another module here: name -> (module, function).
    imported: dict[str, tuple[str, str]]
    #: Names bound to a module beside the script: name -> module.
    modules: dict[str, str]


def _python(ref: ListenRef) -> CallSites:
    try:
        with open(f"/proc/{ref.pid}/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")[:-1]
        cwd = os.readlink(f"/proc/{ref.pid}/cwd")
    except OSError:
        return CallSites(ref, "python", note="the server is gone: no command line to read")
    found = script_of(argv)
    if found is None:
        return CallSites(ref, "python", note="it runs no script file (-c or standard input)")
    kind, name = found
    if kind == "module":
        name = os.path.join(*name.split(".")) + ".py"
    script = os.path.normpath(os.path.join(cwd, name))
    creds = stacks._credentials(ref.pid)
    modules: dict[str, _Module] = {}
    _load(ref.pid, creds, script, "__main__", modules)
    if "__main__" not in modules:
        return CallSites(ref, "python", note=f"its script {name} could not be read as it runs")
    how = PYTHON_HOW.format(script=os.path.basename(script))
    chains = python_chains(modules)
    if not chains:
        files = ", ".join(os.path.basename(m.path) for m in modules.values())
        return CallSites(ref, "python", how, note=NO_CALL_PYTHON.format(files=files))
    return CallSites(ref, "python", how, tuple(tuple(c) for c in chains[: MAX_SITES + 1]))


def _load(
    pid: int,
    creds: tuple[int, frozenset[int], bool] | None,
    path: str,
    name: str,
    modules: dict[str, _Module],
) -> None:
    """Parse `path` as module `name`, and the modules beside the script it imports."""
    if creds is None or name in modules or len(modules) >= MAX_FILES:
        return
    text = stacks._text_as(pid, path, *creds, limit=MAX_BYTES)
    if text is None:
        return
    try:
        tree = ast.parse(text, filename=path)
    except (SyntaxError, ValueError):
        return
    here = os.path.dirname(modules["__main__"].path if modules else path)
    module = _Module(path, tree, text.splitlines(), {}, {})
    modules[name] = module
    beside: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                module.imported[alias.asname or alias.name] = (node.module, alias.name)
            beside.append(node.module)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                module.modules[alias.asname or alias.name] = alias.name
                beside.append(alias.name)
    for other in beside:
        candidate = os.path.join(here, *other.split(".")) + ".py"
        if os.path.isfile(candidate):
            _load(pid, creds, candidate, other, modules)


def _enclosing(tree: ast.Module) -> dict[int, tuple[str, ast.AST]]:
    """id(node) -> (qualified name of the function or class body holding it, that scope)."""
    holder: dict[int, tuple[str, ast.AST]] = {}

    def visit(node: ast.AST, name: str, scope: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                inner = f"{name}.{child.name}" if name else child.name
                holder[id(child)] = (name, scope)
                visit(child, inner, child)
            else:
                holder[id(child)] = (name, scope)
                visit(child, name, scope)

    visit(tree, "", tree)
    return holder


def _is_listen(node: ast.AST) -> bool:
    """`x.listen(...)`, `create_server(..., backlog=...)` (socket's, asyncio's), and
    socketserver's `request_queue_size = N` (a class attribute or an instance's)."""
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if isinstance(func, ast.Attribute) and name == "listen":
            return True
        return name in ("create_server", "start_server") and any(
            k.arg == "backlog" for k in node.keywords
        )
    if isinstance(node, ast.Assign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(
            getattr(t, "id", None) == "request_queue_size"
            or getattr(t, "attr", None) == "request_queue_size"
            for t in targets
        )
    return False


def python_chains(modules: dict[str, _Module]) -> list[list[Frame]]:
    """Each listen() site in `modules`, then the calls of its enclosing function, up to code
    outside any function or a function nobody here calls."""
    scopes = {name: _enclosing(m.tree) for name, m in modules.items()}

    def frame(mod: str, node: ast.AST) -> Frame:
        m = modules[mod]
        name, scope = scopes[mod][id(node)]
        line = getattr(node, "lineno", 0)
        label = name or "<module>"
        if isinstance(scope, ast.ClassDef):
            label = f"class {name}"
        text = m.lines[line - 1] if 0 < line <= len(m.lines) else None
        return Frame(label, m.path, line, True, text)

    def callers(mod: str, qualname: str) -> list[tuple[str, ast.AST]]:
        simple = qualname.rsplit(".", 1)[-1]
        method = "." in qualname
        found: list[tuple[str, ast.AST]] = []
        for other, m in modules.items():
            for node in ast.walk(m.tree):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                if isinstance(func, ast.Name):
                    hit = (other == mod and not method and func.id == simple) or (
                        m.imported.get(func.id) == (mod, simple)
                    )
                elif isinstance(func, ast.Attribute) and func.attr == simple:
                    base = func.value
                    # A method's callers: `self.name(...)` in its module only; another
                    # object's `.name(...)` may be any class's method of that name.
                    on = base.id if isinstance(base, ast.Name) else None
                    hit = on is not None and (
                        (method and other == mod and on in ("self", "cls"))
                        or (not method and m.modules.get(on) == mod)
                    )
                else:
                    hit = False
                if hit:
                    found.append((other, node))
        return found

    chains: list[list[Frame]] = []

    def walk(chain: list[Frame], mod: str, node: ast.AST, seen: frozenset[str]) -> None:
        if len(chains) > MAX_SITES:
            return
        name, scope = scopes[mod][id(node)]
        up = []
        function = isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef)
        if function and name != "main" and len(chain) <= MAX_DEPTH:
            seen = seen | {f"{mod}:{name}"}
            up = [(o, n) for o, n in callers(mod, name) if f"{o}:{scopes[o][id(n)][0]}" not in seen]
        if not up:
            chains.append(chain)
            return
        for other, call in up:
            walk([*chain, frame(other, call)], other, call, seen)

    for mod, m in modules.items():
        for node in ast.walk(m.tree):
            if _is_listen(node):
                walk([frame(mod, node)], mod, node, frozenset())
    return chains


# -- Java: the main class's source, searched -------------------------------------------------
#: Launcher options that take a value in the next argument.
_JAVA_VALUE_OPTIONS = frozenset(
    {"-cp", "-classpath", "--class-path", "-p", "--module-path", "--add-modules",
     "--add-opens", "--add-exports", "--add-reads", "--enable-native-access", "-d"}
)  # fmt: skip
#: A comment or a literal (blanked before searching, newlines kept), and the calls that take
#: a listening socket's backlog: `new ServerSocket(port[, backlog])`, `.bind(address[, n])`.
_JAVA_NOISE = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\])\'', re.S)
_JAVA_CALL = re.compile(r"\bnew\s+ServerSocket\s*\((?!\s*\))|\.\s*bind\s*\(")
_JAVA_METHOD = re.compile(r"\b(\w+)\s*\([^()]*\)\s*(?:throws\s+[\w.,\s]+)?\{")
_JAVA_TYPE = re.compile(r"\b(?:class|record|enum|interface)\s+(\w+)")
_NOT_METHODS = frozenset({"if", "for", "while", "switch", "catch", "synchronized", "try"})


def java_source_of(argv: list[str]) -> tuple[str, str] | None:
    """("file", X.java) for a single-file launch, ("class", name) for a main class, or None
    (-jar, -m: not searched)."""
    args = iter(argv[1:])
    for arg in args:
        if arg in _JAVA_VALUE_OPTIONS:
            next(args, None)
        elif arg in ("-jar", "-m", "--module"):
            return None
        elif not arg.startswith("-"):
            return ("file", arg) if arg.endswith(".java") else ("class", arg)
    return None


def java_sites(text: str, path: str) -> list[Frame]:
    """The calls in `text` that set a listening socket's backlog, each with its method."""
    clean = _JAVA_NOISE.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text)
    lines = text.splitlines()
    sites = []
    for call in _JAVA_CALL.finditer(clean):
        if ".bind" in call.group().replace(" ", "") and "ServerSocket" not in clean:
            continue  # a client socket's bind()
        number = clean.count("\n", 0, call.start()) + 1
        method = _java_method(clean, call.start())
        source = lines[number - 1] if number <= len(lines) else None
        sites.append(Frame(method, path, number, True, source))
    return sites


def _java_method(clean: str, offset: int) -> str:
    """Class.method whose body holds `offset`: the last method header before it whose
    block is still open there."""
    name = "?"
    for header in _JAVA_METHOD.finditer(clean, 0, offset):
        if header.group(1) in _NOT_METHODS:
            continue
        depth = 0
        for ch in clean[header.end() - 1 : offset]:
            depth += 1 if ch == "{" else -1 if ch == "}" else 0
            if depth == 0:
                break
        if depth > 0:
            name = header.group(1)
    types = [m.group(1) for m in _JAVA_TYPE.finditer(clean, 0, offset)]
    return f"{types[-1]}.{name}" if types else name


def _java(ref: ListenRef) -> CallSites:
    try:
        with open(f"/proc/{ref.pid}/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")[:-1]
        cwd = os.readlink(f"/proc/{ref.pid}/cwd")
    except OSError:
        return CallSites(ref, "jvm", note="the server is gone: no command line to read")
    found = java_source_of(argv)
    if found is None:
        return CallSites(ref, "jvm", note="it runs a jar or a module: its source is not searched")
    kind, name = found
    if kind == "file":
        path: str | None = os.path.normpath(os.path.join(cwd, name))
    else:
        path = stacks._java_source(ref.pid, f"{name}.main", name.rsplit(".", 1)[-1] + ".java")
    creds = stacks._credentials(ref.pid)
    text = stacks._text_as(ref.pid, path, *creds, limit=MAX_BYTES) if path and creds else None
    if path is None or text is None:
        where = "beside it or on its class path"
        return CallSites(ref, "jvm", note=f"the source of {name} is not {where} (readable)")
    source = os.path.basename(path)
    sites = java_sites(text, path)
    if not sites:
        return CallSites(ref, "jvm", JAVA_HOW.format(source=source),
                         note=NO_CALL_JAVA.format(source=source))  # fmt: skip
    return CallSites(ref, "jvm", JAVA_HOW.format(source=source), tuple((s,) for s in sites))
