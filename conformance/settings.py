"""The run's settings: the plugin's options, parsed and checked in one place.

The options are declared in options.py (one table for pytest, the CLI and the grader); here
they are read (`options.value`: command line > CONFORMANCE_<NAME> > ini > default) and
checked, into the `Settings` the checks use. Neither the plugin nor the checks parse anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance import options, protocols
from conformance.errors import Refusal, UsageError
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
from conformance.spec import Requirement, select

#: Kept for the callers that name it here; the text is in options.py.
NO_SERVER = options.NO_SERVER


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
    #: Where to write the JUnit XML and the HTML page (both rendered from the JSON report).
    junit_xml: Path | None = None
    html: Path | None = None


def parse(config: pytest.Config) -> Settings:
    """The settings of this run, or UsageError (exit status 2) naming the bad option and where
    its value came from (the option, an environment variable or the ini file)."""
    protocol = options.value(config, "protocol")
    profile = options.value(config, "profile")
    seed = options.value(config, "seed")
    server_cmd = options.value(config, "server_cmd")
    adapter_options(
        protocol, options.value(config, "line_reply"), options.value(config, "http_path")
    )
    target = target_from_options(
        options.value(config, "server"),
        server_cmd,
        options.value(config, "target"),
        options.value(config, "port"),
        protocol,
    )
    try:
        selected = select(options.value(config, "requirement") or None)
    except ValueError as exc:
        raise UsageError(f"--requirement: {exc}") from exc
    path = options.value(config, "exclusions")
    exclusions = Exclusions.load(Path(path)) if path else Exclusions({})
    grading_path = options.value(config, "grading_config")
    grading = gradeconfig.load(Path(grading_path)) if grading_path else gradeconfig.DEFAULT
    # The config's exclusions first, so an exclusions file given on top has the last word.
    exclusions = Exclusions({**grading.excluded, **exclusions.entries})
    json_report = options.value(config, "json_report")
    start_timeout = parse_start_timeout(options.value(config, "start_timeout"), grading)
    return Settings(
        target,
        protocol,
        profile,
        seed,
        bool(options.value(config, "strict")),
        selected,
        exclusions,
        Path(json_report) if json_report else None,
        grading,
        start_timeout,
        _path(options.value(config, "junit_xml")),
        _path(options.value(config, "html")),
    )


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def parse_start_timeout(text: str | float | None, grading: gradeconfig.GradingConfig) -> float:
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


def refusal_of(exc: Exception, prefix: str = "") -> Refusal:
    """`exc` (the server could not be started or reached) as a record, with what to do about
    it in terms of this command line's options: the harness states the facts, it knows
    nothing of options. `prefix` goes before the harness's message."""
    text = str(exc)
    first = text.partition("\n")[0]
    kind, fix = "usage", ""
    elsewhere: tuple[int, ...] = ()
    if isinstance(exc, TargetError):
        kind, fix = (
            "unreachable",
            "start your server first, or let the kit launch it with --server-cmd",
        )
    elif isinstance(exc, LaunchError):
        kind, elsewhere = exc.kind, exc.elsewhere
        if exc.kind == "never-listened" and exc.elsewhere:
            fix = PORT_ELSEWHERE_HINT
        elif exc.kind == "never-listened":
            fix = START_TIMEOUT_HINT
        elif exc.kind == "bad-command":
            fix = "put {port} where the port goes, or give the port it always uses with --port N"
        elif exc.kind == "port-in-use":
            # A process holds the port (named), or connections still linger on it (none is).
            holder = "in use by" in first
            fix = "stop it, or choose another --port" if holder else "choose another --port"
    return Refusal(kind, prefix + text, fix, elsewhere)


def launch_hint(exc: Exception) -> str:
    """`exc` with what to do about it, in this command line's terms (see `refusal_of`)."""
    return refusal_of(exc).text()


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
