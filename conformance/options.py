"""Every run option of the kit, declared once: the table the front ends are generated from.

One `Option` row holds an option's name, help, type, default, environment variable, ini key,
pytest flag, `conformance` flag and grading-config key. From the table come the pytest options
(`add_pytest_options`), the `conformance run`/`bench` parsers (`add_cli_options`), the pytest
command line `conformance run` builds (`pytest_argv`) and the `conformance run` command line
the grader builds (`cli_argv`). A new option is one row here and one field in `Settings`.

The pytest flags are namespaced (`--conformance-server`, ...) because the plugin loads in every
pytest run of the environment it is installed in (the `pytest11` entry point): a short flag
such as `--json-report` or `--port` collides with other plugins (pytest-json-report,
pytest-embedded) and breaks every pytest run there. The `conformance` command has its own
parser and keeps the short names.

This module imports nothing heavy: the entry point imports it in every pytest run.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conformance.errors import EXIT_STATUSES, UsageError
from conformance.profiles import NAMES as PROFILES

#: The pytest options' prefix, and the environment variables'.
PREFIX = "conformance"
ENV_PREFIX = "CONFORMANCE_"


@dataclass(frozen=True)
class Option:
    #: The attribute: `ns.<name>` in the CLI, `config.getoption("conformance_<name>")` in pytest.
    name: str
    help: str
    metavar: str | None = None
    type: type = str
    #: The effective default (applied after command line, environment and ini), shown in help.
    default: Any = None
    #: "append" (repeatable) or "store_true" (a switch); None takes one value.
    action: str | None = None
    choices: tuple[str, ...] | None = None
    #: Whether CONFORMANCE_<NAME> and the ini key conformance_<name> are read.
    env: bool = False
    #: The `[assignment]` key of the grading config the grader passes as this option.
    config_key: str | None = None
    #: Which of the `run` and `bench` commands take it.
    commands: tuple[str, ...] = ("run",)
    #: The `conformance` flag when it is not `--<name with dashes>`.
    cli_flag: str | None = None

    @property
    def flag(self) -> str:
        """The `conformance run` flag."""
        return self.cli_flag or "--" + self.name.replace("_", "-")

    @property
    def pytest_flag(self) -> str:
        return f"--{PREFIX}-" + self.name.replace("_", "-")

    @property
    def dest(self) -> str:
        """The pytest option's dest (`config.getoption(dest)`)."""
        return f"{PREFIX}_{self.name}"

    @property
    def env_var(self) -> str | None:
        return ENV_PREFIX + self.name.upper() if self.env else None

    @property
    def ini_key(self) -> str | None:
        return f"{PREFIX}_{self.name}" if self.env else None

    def full_help(self, pytest_side: bool = False, command: str = "run") -> str:
        """The help with its default and where else the value may come from."""
        if command == "grade":
            # The grader's options override its config; the config's value is the default.
            text = self.help
            if self.config_key:
                text += f" (overrides the grading config's [assignment] {self.config_key}"
                text += (
                    f"; default: the config's, else {self.default})"
                    if self.default is not None
                    else ")"
                )
            return text.replace("%", "%%")
        extra = []
        if self.default is not None and self.action is None:
            extra.append(f"default: {self.default}")
        if self.env_var:
            extra.append(f"env {self.env_var}")
            if pytest_side:
                extra.append(f"ini {self.ini_key}")
        if pytest_side:
            extra.append(f"conformance run {self.flag}")
        elif self.name != "strict" and command == "run":
            extra.append(f"pytest {self.pytest_flag}")
        if self.config_key and command == "run":
            extra.append(f"grading config [assignment] {self.config_key}")
        # argparse formats help with %: a literal percent sign must be doubled.
        text = f"{self.help} ({'; '.join(extra)})" if extra else self.help
        return text.replace("%", "%%")


#: A value's type in an error message.
_A = {int: "an integer", str: "a string"}

#: The built-in reference servers `--server` launches (harness/server.py has their commands).
BUILTIN_SERVER_NAMES = ("fork", "thread", "select", "pool")

OPTIONS: tuple[Option, ...] = (
    Option(
        "server",
        "check a built-in reference server: fork, thread, select or pool",
        metavar="NAME",
        commands=("run", "bench"),
    ),
    Option(
        "server_cmd",
        "launch this command for every check; {port} is replaced by a free port",
        metavar="CMD",
        env=True,
        commands=("run", "bench"),
    ),
    Option(
        "target",
        "check a server that is already running at HOST:PORT (loopback only)",
        metavar="HOST:PORT",
        commands=("run", "bench"),
    ),
    Option(
        "port",
        "the port to use (for a command without {port}, the port it always listens on)",
        metavar="N",
        type=int,
        config_key="port",
        commands=("run", "bench", "grade"),
    ),
    Option(
        "protocol",
        "the protocol: ok (reply OK!!!), echo, line, http, resp, or your adapter as "
        "package.module:ClassName (see docs/adapters.md)",
        metavar="NAME",
        default="ok",
        env=True,
        config_key="protocol",
        commands=("run", "bench", "grade"),
    ),
    Option(
        "line_reply",
        "protocol line: a regular expression every reply line must match",
        metavar="REGEX",
        config_key="line_reply",
        commands=("run", "bench", "grade"),
    ),
    Option(
        "http_path",
        "protocol http: the path of the GET requests (/ when not given)",
        metavar="PATH",
        config_key="http_path",
        commands=("run", "bench", "grade"),
    ),
    Option(
        "profile",
        "how hard to try: quick, default or thorough (number of generated examples)",
        choices=PROFILES,
        default="default",
        env=True,
        config_key="profile",
        commands=("run", "grade"),
    ),
    Option(
        "seed",
        "seed for generated scenarios; the same seed gives the same scenarios with the same "
        "Hypothesis version (the JSON report records it; another version may draw others)",
        metavar="N",
        type=int,
        default=0,
        env=True,
        config_key="seed",
        commands=("run", "grade"),
    ),
    Option(
        "start_timeout",
        "seconds a launched server may take to listen on its port (5 when not given, or the "
        "grading config's start_timeout); for servers that are slow to start (a JVM, an app "
        "that loads data): the run then starts more servers ahead",
        metavar="SECONDS",
        env=True,
        config_key="start_timeout",
        commands=("run", "grade"),
    ),
    Option("json_report", "write the JSON verdict report to this path", metavar="PATH"),
    Option(
        "junit_xml",
        "write JUnit XML here: one test case per requirement (`ID: title`, the category as "
        "classname); a SHOULD that failed is not a failure unless --strict",
        metavar="PATH",
    ),
    Option(
        "html",
        "write a self-contained HTML page of the run here (verdict, requirements, failures, "
        "pictures of what the checks measured)",
        metavar="PATH",
    ),
    Option(
        "requirement",
        "check only these requirement IDs or prefixes (repeatable), e.g. CONC-2, EXIT",
        metavar="ID_OR_PREFIX",
        action="append",
        commands=("run", "grade"),
    ),
    Option("exclusions", "file of requirements to skip, one 'ID: reason' per line", metavar="PATH"),
    Option(
        "grading_config",
        "grading config (TOML): points, excluded requirements, visibility",
        metavar="TOML",
    ),
    Option("strict", "SHOULD requirements that fail also fail the run", action="store_true"),
    Option(
        "pytest_view",
        "show pytest's own output (check names, tracebacks) instead of the requirements, "
        "for debugging the kit",
        action="store_true",
    ),
)
BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}

#: Where the server comes from: exactly one of these.
WHERE = ("server", "server_cmd", "target")

NO_SERVER = (
    "conformance checks were collected but no server was given: use --conformance-server "
    "fork|thread|select|pool, --conformance-server-cmd 'CMD {port}' or "
    "--conformance-target HOST:PORT (or `conformance run --server ...`)"
)


def exit_status_help() -> str:
    """The exit statuses, for every command's --help epilog."""
    return "exit statuses: " + ", ".join(f"{code} {what}" for code, what in EXIT_STATUSES)


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, when it has one worth saying."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" not in text
            and default not in (None, False, [], argparse.SUPPRESS)
            and action.option_strings
        ):
            text += " (default: %(default)s)"
        return text


# -- pytest -----------------------------------------------------------------------------------
def add_pytest_options(parser: Any) -> None:
    """The plugin's options (`parser` is pytest's; typed Any to keep pytest out of imports)."""
    group = parser.getgroup(PREFIX, "TCP server conformance (conformance run has short names)")
    for o in OPTIONS:
        kwargs: dict[str, Any] = {"dest": o.dest, "help": o.full_help(pytest_side=True)}
        if o.action == "store_true":
            kwargs.update(action="store_true", default=False)
        else:
            kwargs.update(metavar=o.metavar, type=o.type)
            if o.action == "append":
                kwargs.update(action="append", default=[])
            if o.choices:
                kwargs["choices"] = o.choices
        group.addoption(o.pytest_flag, **kwargs)
        if o.ini_key:
            parser.addini(o.ini_key, o.help)


def value(config: Any, name: str) -> Any:
    """An option's value in a pytest run. Precedence: command line > CONFORMANCE_<NAME> >
    ini conformance_<name> > the table's default (pytest-timeout's order)."""
    o = BY_NAME[name]
    given = config.getoption(o.dest, None)
    if given not in (None, []):
        return given
    if o.env_var and os.environ.get(o.env_var):
        return _typed(o, os.environ[o.env_var], f"environment variable {o.env_var}")
    if o.ini_key:
        try:
            ini = config.getini(o.ini_key)
        except ValueError:
            ini = None
        if ini:
            return _typed(o, str(ini), f"ini key {o.ini_key}")
    return given if given == [] else o.default


def _typed(o: Option, text: str, where: str) -> Any:
    """`text` from the environment or the ini file as the option's type, or UsageError
    naming where it came from (pytest-timeout's habit: blame the right source)."""
    try:
        parsed = o.type(text)
    except ValueError:
        raise UsageError(f"{where}={text!r}: not {_A[o.type]}") from None
    if o.choices and parsed not in o.choices:
        raise UsageError(f"{where}={text!r}: choose one of {', '.join(o.choices)}")
    return parsed


def started_by_cli(config: Any) -> bool:
    """Whether `conformance run` started this pytest run (its observer plugin says
    `conformance_front = "cli"`): its users know the short option names."""
    return any(
        getattr(p, "conformance_front", None) == "cli" for p in config.pluginmanager.get_plugins()
    )


def in_pytest_terms(text: str) -> str:
    """`text` (a hint in `conformance run`'s terms) with each option's pytest flag instead."""
    for o in OPTIONS:
        text = re.sub(rf"(?<![\w-]){re.escape(o.flag)}(?![\w-])", o.pytest_flag, text)
    return text


def wanted(config: Any) -> bool:
    """Whether this pytest run asked for the kit (a server to check): only then does the
    plugin load its harness and take part in the run."""
    return any(config.getoption(BY_NAME[n].dest, None) for n in WHERE) or bool(
        os.environ.get(BY_NAME["server_cmd"].env_var or "")
    )


# -- the conformance command ------------------------------------------------------------------
def add_cli_options(parser: argparse.ArgumentParser, command: str) -> None:
    """The table's options for `conformance <command>`, with their short names."""
    mine = [o for o in OPTIONS if command in o.commands]
    where = (
        parser.add_mutually_exclusive_group(required=True)
        if set(WHERE) & {o.name for o in mine}
        else parser
    )
    for o in mine:
        target: Any = where if o.name in WHERE else parser
        kwargs: dict[str, Any] = {"dest": o.name, "help": o.full_help(command=command)}
        if o.action == "store_true":
            kwargs.update(action="store_true", default=False)
        else:
            kwargs.update(metavar=o.metavar, type=o.type, default=None)
            if o.action == "append":
                kwargs.update(action="append", default=[])
            if o.choices:
                kwargs["choices"] = o.choices
                kwargs.pop("metavar")
        target.add_argument(o.flag, **kwargs)


def fill_defaults(ns: argparse.Namespace) -> argparse.Namespace:
    """Options not given on the command line, from CONFORMANCE_<NAME> or the default (the
    command reads no ini file); UsageError names a bad environment variable."""
    for o in OPTIONS:
        if getattr(ns, o.name, "absent") is not None:
            continue
        env = os.environ.get(o.env_var) if o.env_var else None
        if not env:
            setattr(ns, o.name, o.default)
            continue
        try:
            parsed = o.type(env)
        except ValueError:
            raise UsageError(
                f"environment variable {o.env_var}={env!r}: not {_A[o.type]}"
            ) from None
        if o.choices and parsed not in o.choices:
            raise UsageError(
                f"environment variable {o.env_var}={env!r}: choose one of {', '.join(o.choices)}"
            )
        setattr(ns, o.name, parsed)
    return ns


def _argv(values: Mapping[str, Any], flag_of: Any) -> list[str]:
    argv: list[str] = []
    for o in OPTIONS:
        v = values.get(o.name)
        if v is None or v is False or v == []:
            continue
        if o.action == "store_true":
            argv.append(flag_of(o))
        elif o.action == "append":
            for item in v:
                argv += [flag_of(o), str(item)]
        else:
            argv += [flag_of(o), str(v)]
    return argv


def pytest_argv(values: Mapping[str, Any]) -> list[str]:
    """The pytest flags for these option values (what `conformance run` passes pytest)."""
    return _argv(values, lambda o: o.pytest_flag)


def cli_argv(values: Mapping[str, Any]) -> list[str]:
    """The `conformance run` flags for these option values (what the grader runs)."""
    return _argv(values, lambda o: o.flag)


def from_config(config: Any, names: Iterable[str] | None = None) -> dict[str, Any]:
    """The option values a grading config's `[assignment]` table sets (`config` is a
    GradingConfig)."""
    chosen: Sequence[Option] = [o for o in OPTIONS if names is None or o.name in names]
    return {o.name: getattr(config, o.config_key) for o in chosen if o.config_key}
