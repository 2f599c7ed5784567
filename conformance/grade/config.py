"""The grading config: one TOML file an instructor writes once per assignment.

It says how to build and launch a submission, how many points each requirement is worth,
which requirements are excluded (each with a reason, like the exclusions file), what students
may see, and the resource limits of the sandbox. Every key is checked: an unknown key or a bad
value is a one-line error naming the file, the key and what is allowed, because a typo in a
grading config silently changes two hundred grades.

    [assignment]
    build = "make"
    debug_info = true           # build with CFLAGS=-g (the default): failures show the lines
    run = "./server {port}"     # or a command without {port} plus `port = 8080`
    protocol = "ok"
    profile = "quick"
    start_timeout = 5           # seconds a server may take to listen (--start-timeout)

    [points]                    # keys: MUST, SHOULD, a category, an ID prefix or an ID;
    MUST = 1                    # the most specific wins (ID > prefix/category > level)
    "CONC-1" = 3

    [exclude]
    "EINTR-3" = "strace is not installed on the grading machine"

    [gradescope]
    visibility = "visible"
    hide_details = ["CONC-5"]   # pass/fail only, no diagnostic (or true for every test)

    [limits]
    nproc = 256
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from conformance import options as run_options
from conformance import profiles, protocols
from conformance.errors import UsageError
from conformance.harness.timeouts import READY_TIMEOUT
from conformance.spec import BY_ID, REQUIREMENTS, Requirement, select

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

#: The longest start_timeout (and --start-timeout): a bound on one start's wait.
MAX_START_TIMEOUT = 600.0
#: The option table's defaults, by [assignment] key.
_DEFAULT: dict[str, Any] = {
    o.config_key: o.default for o in run_options.OPTIONS if o.config_key is not None
}
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
PROFILES = profiles.NAMES
#: The built-in protocol adapters (conformance/protocols). A config may also name its own,
#: `module:ClassName`, importable from the config's directory (docs/adapters.md).
PROTOCOLS = tuple(protocols.BUILTIN)
#: A user's adapter: `package.module:ClassName`.
_USER_ADAPTER = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
#: Options of the built-in adapters, and the protocol each belongs to.
ADAPTER_OPTIONS = {option: name for name, opts in protocols.OPTIONS.items() for option in opts}


def user_adapter(protocol: str) -> bool:
    """Whether `protocol` names the config's own adapter rather than a built-in one."""
    return protocol not in PROTOCOLS


def adapter_path(config_path: Path | None) -> list[str]:
    """Where a config's own adapter (`module:ClassName`) is imported from: the config's
    directory, first."""
    return [str(config_path.parent)] if config_path is not None else []


#: The environment a build gets with `debug_info` (the default): C and C++ through make's
#: built-in rules and Makefiles that add to CFLAGS (`CFLAGS += -Wall`), CMake, and Cargo's
#: release profile. A Makefile that sets CFLAGS outright keeps its own flags; the failure
#: then says the binary has no debug information, and how to add it.
DEBUG_ENV = {"CFLAGS": "-g", "CXXFLAGS": "-g", "CARGO_PROFILE_RELEASE_DEBUG": "true"}


class ConfigError(UsageError):
    """A grading config that cannot be used; str() is one line for the instructor."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-process resource limits for builds and servers (see conformance/grade/sandbox.py)."""

    #: Processes and threads of the sandbox user (RLIMIT_NPROC): stops fork bombs. CONC-2
    #: needs 64 sessions at once, and a server that leaks zombies holds one process per
    #: session of FDL-1's 200: below about 300 the limit, not the spec, fails such a server
    #: in checks that are not about zombies.
    nproc: int = 512
    #: Open descriptors per process (RLIMIT_NOFILE).
    nofile: int = 1024
    #: Address space per process (RLIMIT_AS), MiB. 64 threads at 8 MiB of stack each need
    #: 512 MiB; glibc's per-thread malloc arenas need more.
    address_space_mb: int = 4096
    #: CPU seconds per process (RLIMIT_CPU): a spinning server is killed with SIGXCPU.
    cpu_s: int = 60
    #: Largest file a process may write (RLIMIT_FSIZE), MiB: a log flood dies with SIGXFSZ.
    file_size_mb: int = 16
    #: Everything the submission's work directory and logs may hold, MiB (watched by the
    #: grader, which stops the submission when it is exceeded).
    disk_mb: int = 256
    #: Memory of all the submission's processes together, MiB, where the grader can give it a
    #: cgroup (grade/cgroups.py; `memory.max`, without swap): the OOM killer ends a process
    #: inside it, never the grader or another student's server. A correct server of this
    #: assignment uses a few MiB; the sandbox's own init is some 20 MiB of it.
    memory_mb: int = 1024


@dataclass(frozen=True, slots=True)
class GradingConfig:
    build: str | None = None
    run: str | None = None
    # The run options' defaults are the option table's (conformance/options.py).
    port: int | None = None
    protocol: str = _DEFAULT["protocol"]
    #: The `line` adapter's --line-reply and the `http` adapter's --http-path.
    line_reply: str | None = None
    http_path: str | None = None
    profile: str = _DEFAULT["profile"]
    seed: int = _DEFAULT["seed"]
    #: Build with debug information (CFLAGS=-g and the like, `DEBUG_ENV`), so that a failure
    #: shows the file and line where the server waits or spins (harness/stacks.py).
    debug_info: bool = True
    #: Seconds a build may take before it is killed (and scores zero).
    build_timeout: float = 120.0
    #: Wall-clock seconds for the whole suite against one submission.
    timeout: float = 600.0
    #: Seconds a submission's server may take to listen (the kit's --start-timeout).
    start_timeout: float = READY_TIMEOUT
    points: dict[str, float] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)
    visibility: str = "visible"
    visibility_of: dict[str, str] = field(default_factory=dict)
    hidden_details: frozenset[str] = frozenset()
    limits: Limits = field(default_factory=Limits)
    source: str = "(defaults)"

    def points_of(self, req: Requirement) -> float:
        return self.points.get(req.id, req.default_points)

    def visibility_for(self, req_id: str) -> str:
        return self.visibility_of.get(req_id, self.visibility)

    def max_score(self) -> float:
        return sum(self.points_of(r) for r in REQUIREMENTS if r.id not in self.excluded)


DEFAULT = GradingConfig()

_SECTIONS = ("assignment", "points", "exclude", "gradescope", "limits")
_ASSIGNMENT_KEYS: dict[str, type | tuple[type, ...]] = {
    "build": str,
    "run": str,
    "port": int,
    "protocol": str,
    "line_reply": str,
    "http_path": str,
    "profile": str,
    "seed": int,
    "debug_info": bool,
    "build_timeout": (int, float),
    "timeout": (int, float),
    "start_timeout": (int, float),
}


def with_run(config: GradingConfig, **changes: Any) -> GradingConfig:
    """The config with run settings (protocol, profile, seed, ...) replaced."""
    return replace(config, **changes)


def load(path: Path) -> GradingConfig:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the grading config {path}: {exc.strerror}") from exc
    return parse(text, str(path))


def parse(text: str, source: str = "grading config") -> GradingConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    _only(data, _SECTIONS, source, "")
    for name in _SECTIONS:
        if name in data and not isinstance(data[name], dict):
            raise ConfigError(f"{source}: [{name}] must be a table")
    values: dict[str, Any] = {"source": source}
    values.update(_assignment(data.get("assignment", {}), source))
    values["points"] = _points(data.get("points", {}), source)
    values["excluded"] = _excluded(data.get("exclude", {}), source)
    values.update(_gradescope(data.get("gradescope", {}), source))
    values["limits"] = _limits(data.get("limits", {}), source)
    return GradingConfig(**values)


def _only(
    table: dict[str, Any], allowed: tuple[str, ...] | set[str], source: str, where: str
) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(
                f"{source}: unknown key {where}{key!r}; allowed: {', '.join(sorted(allowed))}"
            )


def _typed(value: Any, kind: type | tuple[type, ...], source: str, key: str) -> Any:
    if kind is bool and isinstance(value, bool):
        return value
    if isinstance(value, bool) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"{source}: {key} must be a {names}, not {value!r}")
    return value


def _assignment(table: dict[str, Any], source: str) -> dict[str, Any]:
    _only(table, set(_ASSIGNMENT_KEYS), source, "[assignment] ")
    out = {k: _typed(v, _ASSIGNMENT_KEYS[k], source, f"assignment.{k}") for k, v in table.items()}
    protocol = out.get("protocol", _DEFAULT["protocol"])
    if protocol not in PROTOCOLS and not _USER_ADAPTER.fullmatch(protocol):
        raise ConfigError(
            f"{source}: assignment.protocol must be one of {', '.join(PROTOCOLS)} (the built-in "
            "protocol adapters) or module:ClassName (your own, importable from the config's "
            "directory)"
        )
    for key, owner in ADAPTER_OPTIONS.items():
        if key in out and protocol != owner:
            raise ConfigError(f"{source}: assignment.{key} is an option of protocol {owner!r}")
    if "line_reply" in out:
        try:
            re.compile(out["line_reply"])
        except re.error as exc:
            raise ConfigError(
                f"{source}: assignment.line_reply is not a regular expression: {exc}"
            ) from None
    if "http_path" in out and not out["http_path"].startswith("/"):
        raise ConfigError(f"{source}: assignment.http_path must start with /")
    if out.get("profile", _DEFAULT["profile"]) not in PROFILES:
        raise ConfigError(f"{source}: assignment.profile must be one of {', '.join(PROFILES)}")
    port = out.get("port")
    if port is not None and not 0 < port < 65536:
        raise ConfigError(f"{source}: assignment.port {port} is not a TCP port")
    run = out.get("run")
    if run is not None and "{port}" not in run and port is None:
        raise ConfigError(
            f"{source}: assignment.run {run!r} has no {{port}}: add it, or set assignment.port "
            "to the port the servers hard-code"
        )
    for key in ("build_timeout", "timeout", "start_timeout"):
        if key in out and out[key] <= 0:
            raise ConfigError(f"{source}: assignment.{key} must be positive")
    if out.get("start_timeout", 0) > MAX_START_TIMEOUT:
        raise ConfigError(
            f"{source}: assignment.start_timeout must be at most {MAX_START_TIMEOUT:.0f} s"
        )
    return out


def _points(table: dict[str, Any], source: str) -> dict[str, float]:
    """Resolve level, category/prefix and ID keys to points per requirement ID."""
    by_rank: list[tuple[int, list[Requirement], float]] = []
    for key, value in table.items():
        points = _typed(value, (int, float), source, f"points.{key!r}")
        if points < 0:
            raise ConfigError(f"{source}: points.{key!r} is negative")
        if key.upper() in ("MUST", "SHOULD"):
            by_rank.append((0, [r for r in REQUIREMENTS if r.level == key.upper()], points))
            continue
        try:
            chosen = select([key])
        except ValueError as exc:
            raise ConfigError(f"{source}: [points] {exc}".replace("--requirement ", "")) from exc
        by_rank.append((2 if key.upper() in BY_ID else 1, chosen, points))
    resolved: dict[str, float] = {}
    for _, chosen, points in sorted(by_rank, key=lambda entry: entry[0]):
        resolved.update((r.id, points) for r in chosen)
    return resolved


def _excluded(table: dict[str, Any], source: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, reason in table.items():
        reason = _typed(reason, str, source, f"exclude.{key!r}").strip()
        if not reason:
            raise ConfigError(f"{source}: exclude.{key!r} has no reason; say why it is excluded")
        try:
            chosen = select([key])
        except ValueError as exc:
            raise ConfigError(f"{source}: [exclude] {exc}".replace("--requirement ", "")) from exc
        out.update((r.id, reason) for r in chosen)
    return out


def _visibility(value: Any, source: str, key: str) -> str:
    if value not in VISIBILITIES:
        raise ConfigError(f"{source}: {key} must be one of {', '.join(VISIBILITIES)}")
    return str(value)


def _gradescope(table: dict[str, Any], source: str) -> dict[str, Any]:
    _only(table, ("visibility", "visibility_of", "hide_details"), source, "[gradescope] ")
    out: dict[str, Any] = {}
    if "visibility" in table:
        out["visibility"] = _visibility(table["visibility"], source, "gradescope.visibility")
    per = table.get("visibility_of", {})
    if not isinstance(per, dict):
        raise ConfigError(f"{source}: gradescope.visibility_of must be a table of ID = visibility")
    resolved: dict[str, str] = {}
    for key, value in per.items():
        vis = _visibility(value, source, f"gradescope.visibility_of.{key!r}")
        try:
            resolved.update((r.id, vis) for r in select([key]))
        except ValueError as exc:
            raise ConfigError(f"{source}: [gradescope.visibility_of] {exc}") from exc
    out["visibility_of"] = resolved
    hide = table.get("hide_details", False)
    if hide is True:
        out["hidden_details"] = frozenset(BY_ID)
    elif hide is False:
        out["hidden_details"] = frozenset()
    elif isinstance(hide, list) and all(isinstance(h, str) for h in hide):
        try:
            out["hidden_details"] = frozenset(r.id for r in select(hide))
        except ValueError as exc:
            raise ConfigError(f"{source}: gradescope.hide_details: {exc}") from exc
    else:
        raise ConfigError(f"{source}: gradescope.hide_details must be true, false or a list of IDs")
    return out


def _limits(table: dict[str, Any], source: str) -> Limits:
    names = tuple(f.name for f in fields(Limits))
    _only(table, names, source, "[limits] ")
    values = {k: _typed(v, int, source, f"limits.{k}") for k, v in table.items()}
    for key, value in values.items():
        if value <= 0:
            raise ConfigError(f"{source}: limits.{key} must be positive")
    return Limits(**values)
