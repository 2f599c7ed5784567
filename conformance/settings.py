"""The run's settings: the plugin's options, parsed and checked in one place.

The plugin registers the options and the checks read the result, a `Settings`; neither
parses anything. Precedence for the options that also have an environment variable and an
ini key is in `setting()`: command line > CONFORMANCE_<NAME> > ini > default. Help text is
written once and serves the option and its ini key (pytest-timeout's habit).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance import protocols
from conformance.errors import UsageError
from conformance.exclusions import Exclusions
from conformance.grade import config as gradeconfig
from conformance.harness.launcher import LaunchError
from conformance.harness.server import (
    BUILTIN_SERVERS,
    Target,
    TargetError,
    fill_command,
    is_loopback,
)
from conformance.harness.timeouts import READY_TIMEOUT
from conformance.profiles import NAMES as PROFILES
from conformance.spec import Requirement, select

HELP = {
    "server": "check a built-in reference server: fork, thread, select or pool",
    "server_cmd": "launch this command for every check; {port} is replaced by a free port",
    "target": "check a server that is already running at HOST:PORT (loopback only)",
    "port": "the port to use (for a command without {port}, the port it always listens on)",
    "protocol": "the protocol: ok (reply OK!!!), echo, line, http, resp, or your adapter as "
    "package.module:ClassName (default: ok; see docs/adapters.md)",
    "line_reply": "protocol line: a regular expression every reply line must match",
    "http_path": "protocol http: the path of the GET requests (default: /)",
    "profile": "how hard to try: quick, default or thorough (number of generated examples)",
    "seed": "seed for generated scenarios; the same seed gives the same scenarios",
    "json_report": "write the JSON verdict report to this path",
    "requirement": "check only these requirement IDs or prefixes (repeatable), e.g. CONC-2, EXIT",
    "exclusions": "file of requirements to skip, one 'ID: reason' per line",
    "conformance_strict": "SHOULD requirements that fail also fail the run",
    "grading_config": "grading config (TOML): points, excluded requirements, visibility",
    "start_timeout": "seconds a launched server may take to listen on its port (default: 5); "
    "for servers that are slow to start",
}
NO_SERVER = (
    "conformance checks were collected but no server was given: use --server "
    "fork|thread|select|pool, --server-cmd 'CMD {port}' or --target HOST:PORT"
)


@dataclass
class Settings:
    target: Target
    protocol: str
    profile: str
    seed: int
    strict: bool
    selected: list[Requirement]
    exclusions: Exclusions
    json_report: Path | None
    grading: gradeconfig.GradingConfig = gradeconfig.DEFAULT
    start_timeout: float = READY_TIMEOUT


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """Where the server comes from, for the `run` and `bench` commands (the plugin's options
    say the same with the same HELP)."""
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--server", help=HELP["server"])
    where.add_argument("--server-cmd", help=HELP["server_cmd"])
    where.add_argument("--target", help=HELP["target"])
    parser.add_argument("--port", type=int, help=HELP["port"])
    parser.add_argument("--protocol", default="ok", help=HELP["protocol"])


def setting(config: pytest.Config, name: str, default: str | None = None) -> str | None:
    """Precedence: command line > CONFORMANCE_<NAME> environment variable > ini > default."""
    value = config.getoption(name, None)
    if value not in (None, []):
        return str(value)
    env = os.environ.get(f"CONFORMANCE_{name.upper()}")
    if env:
        return env
    with contextlib.suppress(ValueError):
        ini = config.getini(f"conformance_{name}")
        if ini:
            return str(ini)
    return default


def parse(config: pytest.Config) -> Settings:
    """The settings of this run, or UsageError (exit status 2) naming the bad option."""
    protocol = setting(config, "protocol", "ok") or "ok"
    adapter_options(
        protocol, config.getoption("line_reply", None), config.getoption("http_path", None)
    )
    profile = setting(config, "profile", "default") or "default"
    if profile not in PROFILES:
        raise UsageError(f"--profile {profile!r}: choose one of {', '.join(PROFILES)}")
    seed_text = setting(config, "seed", "0")
    try:
        seed = int(seed_text or 0)
    except ValueError as exc:
        raise UsageError(f"--seed {seed_text!r} is not an integer") from exc
    target = target_from_options(
        config.getoption("server"),
        setting(config, "server_cmd"),
        config.getoption("target"),
        config.getoption("port"),
        protocol,
    )
    try:
        selected = select(config.getoption("requirement") or None)
    except ValueError as exc:
        raise UsageError(f"--requirement: {exc}") from exc
    path = config.getoption("exclusions")
    exclusions = Exclusions.load(Path(path)) if path else Exclusions({})
    grading_path = config.getoption("grading_config")
    grading = gradeconfig.load(Path(grading_path)) if grading_path else gradeconfig.DEFAULT
    # The config's exclusions first, so an exclusions file given on top has the last word.
    exclusions = Exclusions({**grading.excluded, **exclusions.entries})
    json_report = config.getoption("json_report")
    start_timeout = parse_start_timeout(setting(config, "start_timeout"), grading)
    return Settings(
        target,
        protocol,
        profile,
        seed,
        bool(config.getoption("conformance_strict")),
        selected,
        exclusions,
        Path(json_report) if json_report else None,
        grading,
        start_timeout,
    )


def parse_start_timeout(text: str | None, grading: gradeconfig.GradingConfig) -> float:
    """--start-timeout (or the grading config's `start_timeout`), checked: seconds > 0."""
    if text is None:
        return grading.start_timeout
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= gradeconfig.MAX_START_TIMEOUT:
        raise UsageError(
            f"--start-timeout {text!r}: give the seconds a server may take to listen, a number "
            f"above 0 and at most {gradeconfig.MAX_START_TIMEOUT:.0f}"
        )
    return value


def adapter_options(protocol: str, line_reply: str | None, http_path: str | None) -> None:
    """Load and configure the run's protocol adapter (UsageError if it is unusable)."""
    if line_reply is not None:
        try:
            re.compile(line_reply)
        except re.error as exc:
            raise UsageError(
                f"--line-reply {line_reply!r} is not a regular expression: {exc}"
            ) from None
    if http_path is not None and not http_path.startswith("/"):
        raise UsageError(f"--http-path {http_path!r} must start with /")
    protocols.configure(protocol, {"line_reply": line_reply, "http_path": http_path})


#: What to do about a server that listens on another port, in the command line's terms (the
#: grader rewrites it in its config's terms: grade/submission.py).
PORT_ELSEWHERE_HINT = (
    "Does it take the port from its arguments ({port} in --server-cmd), or does it always use "
    "one port (then give that port with --port N)?"
)
#: What to do about a server that did not listen in time, in the command line's terms (the
#: grader rewrites it in its config's terms: grade/submission.py).
START_TIMEOUT_HINT = "If it is only slow to start, give it longer with --start-timeout SECONDS."


def launch_hint(exc: Exception) -> str:
    """`exc` (the server could not be started or reached) with what to do about it, in terms of
    this command line's options: the harness states the facts, it knows nothing of options."""
    text = str(exc)
    first, sep, rest = text.partition("\n")
    hint = ""
    if isinstance(exc, TargetError):
        hint = "start your server first, or let the kit launch it with --server-cmd"
    elif isinstance(exc, LaunchError):
        if exc.kind == "never-listened" and exc.elsewhere:
            hint = PORT_ELSEWHERE_HINT
        elif exc.kind == "never-listened":
            hint = START_TIMEOUT_HINT
        elif exc.kind == "bad-command":
            hint = "put {port} where the port goes, or give the port it always uses with --port N"
        elif exc.kind == "port-in-use":
            # A process holds the port (named), or connections still linger on it (none is).
            holder = "in use by" in first
            hint = "stop it, or choose another --port" if holder else "choose another --port"
    if not hint:
        return text
    joiner = " " if first.endswith((".", "?")) else "; "
    return f"{first}{joiner}{hint}{sep}{rest}"


def target_from_options(
    server: str | None,
    server_cmd: str | None,
    address: str | None,
    port: int | None,
    protocol: str,
) -> Target:
    """The Target the options describe, or UsageError saying what is wrong with them."""
    given = [
        name
        for name, v in (
            ("--server", server),
            ("--server-cmd", server_cmd),
            ("--target", address),
        )
        if v
    ]
    if len(given) != 1:
        raise UsageError(
            "choose exactly one server to check: --server fork|thread|select|pool (a built-in "
            "reference), --server-cmd 'CMD {port}' (launch yours), or --target HOST:PORT "
            f"(one already running); got {', '.join(given) or 'none'}"
        )
    if server is not None:
        if server not in BUILTIN_SERVERS:
            raise UsageError(
                f"unknown --server {server!r}; built-in servers: "
                + ", ".join(sorted(BUILTIN_SERVERS))
            )
        command = BUILTIN_SERVERS[server]
        return Target("launch", "127.0.0.1", port, fill_command(command, protocol))
    if server_cmd is not None:
        if "{port}" not in server_cmd and port is None:
            raise UsageError(
                f"the command {server_cmd!r} has no {{port}} placeholder: put {{port}} "
                "where the port goes, or give the port it always uses with --port N"
            )
        return Target("launch", "127.0.0.1", port, fill_command(server_cmd, protocol))
    assert address is not None
    host, sep, port_text = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(
            f"--target {address!r} is not HOST:PORT (for example 127.0.0.1:8080 or [::1]:8080)"
        )
    if host == "localhost":
        host = "127.0.0.1"
    if not is_loopback(host):
        raise UsageError(
            f"--target {address!r}: the kit only sends traffic to loopback "
            "(127.0.0.0/8 or ::1), because its load and signal checks are not for shared "
            "networks"
        )
    return Target("address", host, int(port_text))
