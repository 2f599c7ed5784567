"""The pytest plugin: options, the server fixtures, verdicts per requirement, report, exit code.

It does one job: turn pytest items marked `@requirement(ID)` into verdicts about a server.
It is registered only in a run that names a server (by pytest_entry.py, the `pytest11` entry
point, which loads in every pytest run and declares the options); `pytest_configure_node` is
optional, so `-p no:xdist` works. Everything the checks need comes from fixtures here;
verdicts travel as `user_properties` on test reports, which pytest-xdist forwards from workers,
so the controller builds the summary and the JSON report alone; the JUnit XML and the HTML
page are rendered from that report (junit.py, htmlreport.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn

import pytest

from conformance import options, protocols
from conformance import report as report_mod
from conformance import settings as settings_mod
from conformance.checks.hypothesis_profiles import without_shrinking
from conformance.errors import Refusal, UsageError
from conformance.harness import callsites, launcher, stacks
from conformance.harness.client import LATER_REPLIES
from conformance.harness.deaths import DIED_DURING, STOPPING, death_of, judge_death
from conformance.harness.failure import (
    KIT_ERROR,
    SERVER_GONE,
    CannotJudge,
    KitError,
    Violation,
    is_kit_error,
    unwrap_flaky,
)
from conformance.harness.launcher import LINGER_LIMIT, LaunchError
from conformance.harness.launcher import NOTES as LAUNCH_NOTES
from conformance.harness.limits import CHECK_CLIENTS, DescriptorLimitError, ensure_descriptors
from conformance.harness.liveness import (
    DIES_AFTER_SESSIONS,
    death_after_sessions,
    one_reply_per_connection,
    root,
    silence,
)
from conformance.harness.model import detect_model
from conformance.harness.polling import wait_until
from conformance.harness.reaper import become_subreaper
from conformance.harness.server import (
    LAUNCH_AHEAD,
    SEEN_THIS_CHECK,
    Server,
    attach_server,
    check_reachable,
    start_server,
)
from conformance.harness.sessions import DEATH_GRACE
from conformance.harness.timeouts import READY_TIMEOUT, SETTLE_TIMEOUT
from conformance.marks import Blocked, NotApplicable
from conformance.profiles import PROFILES as PROFILE_RECORDS
from conformance.settings import NO_SERVER, Settings, launch_hint, refusal_of
from conformance.spec import BY_ID, Requirement
from conformance.terminal import RequirementView, requirement_of_nodeid


@dataclass
class RunState:
    """Everything the plugin knows about one run (on the controller, or one xdist worker)."""

    settings: Settings | None = None
    error: str | None = None
    model: str = "unknown"
    started_at: str = ""
    t0: float = 0.0
    results: dict[str, report_mod.Result] = field(default_factory=dict)
    serialised: list[str] = field(default_factory=list)
    #: Address mode: the check during which the shared server died.
    died_during: str | None = None
    address_server: Server | None = None
    #: Address mode under xdist: the lock file that keeps quiet checks alone (see below).
    quiet_lock: str | None = None
    #: What the kit saw when the server answered no message before the checks (see liveness).
    silent: str | None = None
    #: Requirements the server was seen to break before the checks, with what was seen: a
    #: check that then fails because of it is blocked by it (see liveness).
    broken: dict[str, str] = field(default_factory=dict)
    #: What the kit saw when the server answered only the first request of a connection: a
    #: check that then fails is blocked by the adapter's `several` (see liveness).
    one_per_connection: str | None = None
    #: What the kit saw when the server closed the connection after a reply that said it
    #: would, as the protocol lets it: sessions of one request (see liveness).
    one_reply: str | None = None
    #: The most one launched server wrote to its stdout or stderr, in bytes.
    largest_output: int = 0
    #: What the kit did that the user should know though no check failed for it.
    notes: list[str] = field(default_factory=list)
    #: Seconds the run waited for launched servers to listen (see LaunchAhead).
    start_wait_s: float = 0.0
    #: The terminal's requirements view (controller only; None with --pytest-view).
    view: RequirementView | None = None


def _result_of(state: RunState, req_id: str) -> tuple[str, str, str | None] | None:
    """A requirement's verdict so far, for the terminal view."""
    result = state.results.get(req_id)
    return None if result is None else (result.outcome, result.detail, result.blocked_by)


STATE = pytest.StashKey[RunState]()


def _state(config: pytest.Config) -> RunState:
    return config.stash[STATE]


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    """Parse the settings, raise the descriptor limit, and plan the run for xdist."""
    state = RunState()
    config.stash[STATE] = state
    try:
        state.settings = settings_mod.parse(config)
    except UsageError as exc:
        state.error = str(exc)
    else:
        LAUNCH_AHEAD.ready_timeout = state.settings.start_timeout
    # Servers launched for the checks inherit our limits: room for the most clients a check
    # opens, on both sides. A hard limit too low makes only that check skip, with the reason.
    with contextlib.suppress(DescriptorLimitError):
        ensure_descriptors(CHECK_CLIENTS)
    if state.settings is not None and state.settings.target.fixed_port and _uses_xdist(config):
        # One port holds one server, so the checks of a fixed-port server run one at a time
        # whatever -n says (the same verdicts as -n 0, which is what they then are).
        config.option.numprocesses = 0
        config.option.dist = "no"
        config.option.tx = []
        state.notes.append(
            f"port {state.settings.target.port} is fixed, so the checks ran one at a time "
            "(-n ignored: one port holds one server)"
        )
    if _is_worker(config):
        # pytest-xdist gives a worker's config `workerinput`, the dict the controller filled.
        inputs: dict[str, Any] = getattr(config, "workerinput")  # noqa: B009
        state.model = inputs.get("conformance_model", "unknown")
        state.quiet_lock = inputs.get("conformance_quiet_lock")
        state.silent = inputs.get("conformance_silent")
        state.broken = inputs.get("conformance_broken", {})
        state.one_per_connection = inputs.get("conformance_one_per_connection")
        state.one_reply = inputs.get("conformance_one_reply")
    else:
        config.pluginmanager.register(_Recorder(state), "conformance-recorder")
        if state.settings is not None and not options.value(config, "pytest_view"):
            state.view = RequirementView(
                config,
                state.settings.strict,
                functools.partial(_result_of, state),
                requirement_of_nodeid(_check_requirements),
            )
            config.pluginmanager.register(state.view, "conformance-view")
        settings = state.settings
        if settings and settings.target.mode == "address" and _uses_xdist(config):
            # Checks that need a quiet server carry xdist_group("quiet-server"); only the
            # loadgroup scheduler keeps a group on one worker. Decided here, on the
            # controller, which never collects: the report names them.
            if config.getoption("dist", "no") == "load":
                config.option.dist = "loadgroup"
            state.serialised = [r.id for r in settings.selected if r.needs_quiet]
            state.quiet_lock = str(Path(tempfile.mkdtemp(prefix="conformance-")) / "quiet.lock")


def _uses_xdist(config: pytest.Config) -> bool:
    return bool(config.getoption("numprocesses", None)) and config.getoption("dist", "no") != "no"


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Before any check (and before xdist starts workers): validate, try the server once."""
    config = session.config
    state = _state(config)
    state.started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    state.t0 = time.monotonic()
    if state.error:
        _refuse(config, Refusal("usage", state.error))
    if state.settings is None or _is_worker(config):
        return
    become_subreaper()
    settings = state.settings
    try:
        if settings.target.mode == "launch":
            # Each question on a fresh server: a server that dies after its first sessions
            # (EINTR-1) must not read as one that never answers.
            probe = start_server(settings.target, settings.protocol)
            try:
                _ask_liveness(state, probe)
            finally:
                probe.retire()
            probe = start_server(settings.target, settings.protocol)
            probe.one_reply = state.one_reply  # who holds a connection is seen on held ones
            try:
                state.model = detect_model(probe)
                if state.model == "fork":
                    death = death_after_sessions(probe)
                    if death:
                        state.broken[DIES_AFTER_SESSIONS] = death
            finally:
                probe.retire()
        else:
            probe = attach_server(settings.target, settings.protocol)
            if probe.process is None:
                # Not visible here: only a connection can tell whether anything listens.
                assert settings.target.port is not None
                check_reachable(settings.target.host, settings.target.port, settings.protocol)
            state.model = detect_model(probe)
            if probe.alive():
                _ask_liveness(state, probe)
            if state.one_reply and probe.alive():
                probe.one_reply = state.one_reply  # look again, on sessions held open
                state.model = detect_model(probe)
    except (LaunchError, UsageError) as exc:
        _refuse(config, refusal_of(exc, "the server could not be started: "))
    except Violation as exc:
        _refuse(
            config,
            Refusal(
                "stopped-answering",
                f"the server stopped answering before any check began:\n{exc}",
            ),
        )
    if state.view is not None:
        target = settings.target.describe()
        where = target.get("command") or target.get("address")
        state.view.header = (
            f"conformance: {where} | model {state.model} | protocol {settings.protocol} | "
            f"profile {settings.profile} | seed {settings.seed}"
        )
    if _uses_xdist(config):
        # The workers start their own servers: the ones started ahead here would only idle
        # (eight of them for a slow starter, each a JVM perhaps) until the run ends.
        LAUNCH_AHEAD.close()


def _refuse(config: pytest.Config, refusal: Refusal) -> NoReturn:
    """The kit cannot run: the JSON report carries the refusal, the terminal shows it once.

    pytest.UsageError, not pytest.exit: pytest prints a UsageError once as `ERROR: ...`,
    where pytest.exit's message is printed twice, the second time in `! _pytest.outcomes.Exit`
    framing; both end the run before any check (exit status 4, which `conformance run`
    reports as 2)."""
    LAUNCH_AHEAD.close()
    state = _state(config)
    paths: dict[str, str | None] = {}
    for name in OUTPUTS:
        with contextlib.suppress(UsageError):
            paths[name] = options.value(config, name)
    if any(paths.values()) and not _is_worker(config):
        s = state.settings
        doc = (
            report_mod.refused(
                refusal,
                selected=s.selected,
                target=s.target.describe(),
                protocol=s.protocol,
                profile=s.profile,
                seed=s.seed,
                started_at=state.started_at,
            )
            if s is not None
            else report_mod.refused(refusal, started_at=state.started_at)
        )
        write_outputs(doc, **paths)
    if not options.started_by_cli(config):
        # A bare pytest run: the fix in its own terms (--conformance-port, not --port).
        refusal = dataclasses.replace(refusal, fix=options.in_pytest_terms(refusal.fix))
    raise pytest.UsageError(f"conformance: {refusal.text()}")


#: The options that name a file the run writes, all rendered from the JSON report.
OUTPUTS = ("json_report", "junit_xml", "html")


def write_outputs(
    doc: dict[str, object],
    json_report: str | Path | None = None,
    junit_xml: str | Path | None = None,
    html: str | Path | None = None,
) -> None:
    """The JSON report, and the JUnit XML and HTML page made from it, where asked."""
    if json_report:
        report_mod.write(doc, Path(json_report))
    if junit_xml:
        from conformance import junit

        junit.write(doc, Path(junit_xml))
    if html:
        from conformance import htmlreport

        htmlreport.write(doc, Path(html))


def _ask_liveness(state: RunState, probe: Server) -> None:
    """Before the checks: does the server answer at all, and more than once per connection?"""
    state.silent = silence(probe)
    state.one_reply = probe.one_reply  # silence() saw whether the reply announces a close
    if not state.silent and not state.one_reply and probe.alive():
        state.one_per_connection = one_reply_per_connection(probe)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist: hand the detected model to every worker so they all judge the same server."""
    node.workerinput["conformance_model"] = _state(node.config).model
    node.workerinput["conformance_quiet_lock"] = _state(node.config).quiet_lock
    node.workerinput["conformance_silent"] = _state(node.config).silent
    node.workerinput["conformance_broken"] = _state(node.config).broken
    node.workerinput["conformance_one_per_connection"] = _state(node.config).one_per_connection
    node.workerinput["conformance_one_reply"] = _state(node.config).one_reply


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """Address mode under xdist: a check that counts descriptors, threads or zombies runs alone.

    Keeping those checks on one worker (xdist_group) is not enough: the other workers' clients
    would still come and go on the same server while it counts. So every check takes a shared
    lock and a quiet check an exclusive one, on a file all workers of the run know. Taken
    outside pytest-timeout's wrapper, so waiting for the lock never counts as a check's time.
    """
    state = _state(item.config)
    req = _requirement_of(item)
    if state.quiet_lock is None or req is None:
        yield
        return
    with open(state.quiet_lock, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if req.needs_quiet else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.hookimpl(tryfirst=True)
def pytest_itemcollected(item: pytest.Item) -> None:
    """`-k CONC-1` selects the check of CONC-1: its requirement ID is one of its keywords."""
    req = _requirement_of(item)
    if req is not None:
        item.extra_keyword_matches.add(req.id)


def _requirement_of(item: pytest.Item) -> Requirement | None:
    mark = item.get_closest_marker("requirement")
    return BY_ID.get(mark.args[0]) if mark else None


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    checks = [item for item in items if _requirement_of(item) is not None]
    if not checks:
        return
    state = _state(config)
    if state.settings is None:
        _refuse(config, Refusal("no-server", NO_SERVER))
    settings = state.settings
    wanted = {r.id for r in settings.selected}
    keep, drop = [], []
    for item in items:
        req = _requirement_of(item)
        if req is not None and req.id not in wanted:
            drop.append(item)
            continue
        keep.append(item)
        if req is None:
            continue
        # On the item, so every phase's report (and JUnit XML, from teardown) carries them.
        item.user_properties += [
            ("requirement", req.id),
            ("category", req.category),
            ("protocol", protocols.get(settings.protocol).name),
        ]
        if item.get_closest_marker("timeout") is None and config.getoption("timeout", None) is None:
            # The signal method keeps fixture teardown (stopping the server) and JUnit working.
            # With a fixed port a launch may have to wait for the kernel to free the port.
            limit = PROFILE_RECORDS[settings.profile].check_timeout + (
                LINGER_LIMIT if settings.target.fixed_port else 0
            )
            # A slow starter's starts are waited for within the check (a fresh server per
            # generated example): the backstop grows with what --start-timeout adds.
            limit += PROFILE_RECORDS[settings.profile].fresh_servers * max(
                0.0, settings.start_timeout - READY_TIMEOUT
            )
            item.add_marker(pytest.mark.timeout(limit, method="signal"))
        reason = settings.exclusions.reason(req.id)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"excluded: {reason}"))
        if req.needs_quiet and settings.target.mode == "address":
            # Other workers' clients would disturb descriptor, thread and zombie counts.
            item.add_marker(pytest.mark.xdist_group("quiet-server"))
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Decide applicability before any fixture launches a server."""
    req = _requirement_of(item)
    state = _state(item.config)
    LATER_REPLIES.block = None
    if req is None or state.settings is None:
        return
    SEEN_THIS_CHECK.forget()
    LATER_REPLIES.block = _later_replies_blocked(state, req)
    settings = state.settings
    reason = protocols.inapplicable(req, protocols.get(settings.protocol))
    if reason is not None:
        raise NotApplicable(msg=reason)
    if req.models is not None and state.model not in req.models:
        if state.model == "unknown":
            pytest.skip(
                f"{req.id} needs the server's process to tell its model, and it is not "
                "visible from here (address mode with another user's or a remote process)"
            )
        raise NotApplicable(
            msg=f"not applicable: {req.id} is about {'/'.join(req.models)} servers; this "
            f"server was detected as {state.model}"
        )
    if req.launch_only and settings.target.mode != "launch":
        pytest.skip(f"{req.id} needs a server the kit launched (it signals or traces it)")
    if state.died_during is not None:
        pytest.fail(SERVER_GONE.format(check=state.died_during), pytrace=False)
    by = root(settings.protocol)
    if state.silent and req.id != by and req.id not in NEEDS_NO_ANSWER:
        raise Blocked(by, f"the server answers no message: {state.silent}")


#: Requirements judged without any answer from the server, so still judged when it gives none.
NEEDS_NO_ANSWER = frozenset({"CONC-3", "EXIT-5"})


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def conformance_settings(request: pytest.FixtureRequest) -> Settings:
    settings = _state(request.config).settings
    if settings is None:
        pytest.skip(NO_SERVER)
    return settings


@contextlib.contextmanager
def _serve(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Server]:
    state = _state(request.config)
    if settings.target.mode == "launch":
        try:
            srv = start_server(settings.target, settings.protocol, state.model)
        except LaunchError as exc:
            if exc.kind == "kit-error":
                raise KitError(str(exc)) from None
            pytest.fail(
                f"the server could not be started for this check: {launch_hint(exc)}",
                pytrace=False,
            )
        srv.one_reply = state.one_reply
        try:
            yield srv
        finally:
            srv.close_clients()
            assert srv.launched is not None
            LAUNCH_AHEAD.retire(srv.launched)
        return
    if state.address_server is None:
        state.address_server = attach_server(settings.target, settings.protocol, state.model)
    shared = state.address_server
    srv = Server(shared.host, shared.port, shared.protocol, state.model, None, shared.process)
    srv.one_reply = state.one_reply
    try:
        yield srv
    finally:
        srv.close_clients()
        if not srv.alive() and state.died_during is None:
            req = _requirement_of(request.node)
            state.died_during = req.id if req else request.node.name


@pytest.fixture
def server(request: pytest.FixtureRequest, conformance_settings: Settings) -> Iterator[Server]:
    """The server under test: a fresh one per check in launch mode, the shared one otherwise."""
    with _serve(request, conformance_settings) as srv:
        yield srv


@pytest.fixture(scope="module")
def module_server(
    request: pytest.FixtureRequest, conformance_settings: Settings
) -> Iterator[Server]:
    """One server for the checks of a module that judge one workload from different sides
    (fd-leak counts descriptors and threads after the same 200 sessions)."""
    with _serve(request, conformance_settings) as srv:
        yield srv


@pytest.fixture(scope="session")
def conformance_profile(conformance_settings: Settings) -> str:
    return conformance_settings.profile


@pytest.fixture(scope="session")
def repeats(conformance_settings: Settings) -> Callable[[int], int]:
    """`repeats(n)`: n scaled by the profile (never below 2). Spec counts never scale."""
    return PROFILE_RECORDS[conformance_settings.profile].repeats


@pytest.fixture(scope="session")
def conformance_one_reply(request: pytest.FixtureRequest) -> str | None:
    """What the kit saw if the server closes after each reply (see liveness), else None."""
    return _state(request.config).one_reply


@pytest.fixture(scope="session")
def conformance_model(request: pytest.FixtureRequest) -> str:
    """The server's model, as detected before the checks (harness/model.py)."""
    return _state(request.config).model


@pytest.fixture(scope="session")
def conformance_seed(conformance_settings: Settings) -> int:
    return conformance_settings.seed


# -- verdicts ---------------------------------------------------------------------------------
@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> object:
    """The harness says when a check cannot judge (CannotJudge); pytest calls that a skip.

    A check is judged only on a server that lived through it: if the server the kit
    launched for it died, the death decides (deaths.py), whatever the check saw first.

    A check whose failure would be blocked by the protocol's `several` is not shrunk: the
    verdict is the same, and shrinking would only wait out more reply deadlines.
    """
    req = _requirement_of(item)
    blocked = req is not None and _blocked_by_several(_state(item.config), req) is not None
    try:
        with without_shrinking() if blocked else contextlib.nullcontext():
            result = yield
    except CannotJudge as exc:
        # A check that could not judge because its server died (counts that never settle,
        # strace that cannot attach to a dead pid) is judged by the death, like a failure.
        _judge_survival(item, exc)
        pytest.skip(str(exc))
    except (NotApplicable, Blocked, KeyboardInterrupt, SystemExit):
        raise
    except pytest.skip.Exception as exc:
        _judge_survival(item, exc)
        raise
    except BaseException as exc:
        _judge_survival(item, exc)
        raise
    _judge_survival(item, None)
    return result


def _servers_of(item: pytest.Item) -> list[Server]:
    """The servers a check judged: its fixtures that are one, or hold one (a workload)."""
    values = getattr(item, "funcargs", {}).values()
    found = [getattr(v, "server", v) for v in values]
    return [v for v in found if isinstance(v, Server)]


def _settled(srv: Server) -> bool:
    """Dead, or no child of a session still running (nothing more to die of)."""
    return not srv.alive() or srv.process is None or not srv.process.live_descendants()


def _judge_survival(item: pytest.Item, exc: BaseException | None) -> None:
    """Raise the verdict of a check during which its server died (see deaths.py); return
    if the server is alive (or not one the kit launched)."""
    __tracebackhide__ = True
    req = _requirement_of(item)
    if req is None or req.id in STOPPING:
        return
    failure = unwrap_flaky(exc) if exc is not None else None
    if failure is not None and not isinstance(failure, CannotJudge) and is_kit_error(failure):
        return
    state = _state(item.config)
    servers = _servers_of(item)
    if exc is None and state.broken:
        # A server seen before the checks to die once sessions end dies a moment after the
        # check ended one (its child exits, SIGCHLD interrupts accept()): wait for that, so
        # whether the check passes or is blocked does not depend on the scheduler.
        for srv in servers:
            wait_until(functools.partial(_settled, srv), SETTLE_TIMEOUT)
    if exc is not None or state.broken:
        # A server that gives up (SIGPIPE, EINTR) dies a moment after the step that saw it.
        wait_until(lambda: any(death_of(s) is not None for s in servers), DEATH_GRACE)
    for srv in servers:
        death = death_of(srv)
        if death is None:
            continue
        own = failure if isinstance(failure, Violation) else None
        verdict = judge_death(srv, death, req.id, state.broken, own)
        if verdict.blocked_by is not None:
            blocked = Blocked(verdict.blocked_by, verdict.reason)
            blocked.by_death = True
            raise blocked from None
        assert verdict.violation is not None
        if verdict.violation is own:
            return
        raise verdict.violation from None


def _blocked_by_several(state: RunState, req: Requirement) -> str | None:
    """The protocol's `several` requirement when a failure of `req` is blocked by it: the
    server answers only the first request of a connection, and `req`'s check sends more."""
    if not state.one_per_connection or state.settings is None:
        return None
    several = protocols.get(state.settings.protocol).several
    return None if req.id == several or req.id in NEEDS_NO_ANSWER else several


def _later_replies_blocked(state: RunState, req: Requirement) -> Callable[[str], NoReturn] | None:
    """For a check that a server answering only the first request of a connection blocks
    (see `_blocked_by_several`): what ends it, at once, when a later request gets no reply."""
    several = _blocked_by_several(state, req)
    if several is None:
        return None

    def block(what: str) -> NoReturn:
        raise Blocked(
            several,
            f"the server answers only the first request of a connection "
            f"({state.one_per_connection}), and this check sends more ({what})",
        )

    return block


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    rep: pytest.TestReport = outcome.get_result()
    req = _requirement_of(item)
    if req is None:
        return
    if rep.when == "teardown":
        # Servers write their output in the workers; the controller keeps the largest.
        rep.user_properties.append(("largest_output", str(launcher.LARGEST_OUTPUT)))
        rep.user_properties.append(("start_wait_s", f"{LAUNCH_AHEAD.report_waited():.3f}"))
    if rep.when == "call":
        _add_measures(item, rep)
    if call.excinfo is not None and call.excinfo.errisinstance(NotApplicable):
        rep.user_properties.append(("not_applicable", "1"))
    if call.excinfo is not None and rep.when == "call":
        _blocked_by_known_defect(item, req, rep, call.excinfo.value)
    relabelled = any(name == "blocked_by" for name, _ in rep.user_properties)
    if call.excinfo is not None and call.excinfo.errisinstance(Blocked) and not relabelled:
        # (A block that the defect seen before the checks relabelled keeps that label.)
        rep.user_properties.append(("blocked_by", getattr(call.excinfo.value, "by", "")))
    if rep.failed and call.excinfo is not None:
        exc = unwrap_flaky(call.excinfo.value)
        if is_kit_error(exc):
            rep.user_properties.append(("kit_error", "1"))
        if rep.when == "call" and isinstance(exc, Violation) and (exc.threads or exc.listen):
            _add_stacks(exc, rep)
        if rep.when == "call" or is_kit_error(exc):
            rep.longrepr = _failure_text(item, req, exc)


def _add_measures(item: pytest.Item, rep: pytest.TestReport) -> None:
    """What the check measured, for the HTML report's pictures: the server's counts over the
    sessions it ran (every check that ran sessions), and how long each client waited for a
    reply (a failed check where a reply never came: the picture explains that failure)."""
    for srv in _servers_of(item):
        if srv.samples:
            rep.user_properties.append(("samples", json.dumps(srv.samples)))
        waits = srv.transcript.waits
        if rep.failed and any(not w["answered"] for w in waits):
            rep.user_properties.append(("waits", json.dumps(srv.transcript.waits)))


def _add_stacks(exc: Violation, rep: pytest.TestReport) -> None:
    """The stacks of the threads a failure names, added to its evidence and to the report.

    Taken here, once the check has ended and its time was taken (rep.duration), while its
    server still runs (fixtures are torn down after): stopping the server to read them can
    change neither the verdict nor the check's timing. Bounded by stacks.STACKS_BUDGET.
    """
    found = stacks.take(exc.threads)
    exc.threads = []
    if found:
        exc.evidence += stacks.render(found)
        rep.user_properties.append(("stacks", json.dumps([s.to_json() for s in found])))
    if exc.listen is not None:
        # No thread waits where a backlog was set: the listen() call is found in the code
        # the server runs (files only, the server runs on), within callsites.BUDGET.
        sites = callsites.find(exc.listen) if stacks.enabled() else None
        exc.evidence += callsites.render(sites, exc.listen.backlog)
        if sites is not None:
            rep.user_properties.append(("call_sites", json.dumps(sites.to_json())))
        exc.listen = None


def _blocked_by_known_defect(
    item: pytest.Item, req: Requirement, rep: pytest.TestReport, exc: BaseException
) -> None:
    """A check that failed because of a defect seen before the checks is blocked by that
    defect's requirement, not failed: its own requirement was never reached. Two are known:
    the server dies once its first sessions end (EINTR-1), and it answers only the first
    request of a connection (the protocol's `several`: PROTO-2, PROTO-4 or PROTO-6). The
    requirement itself is still judged."""
    state = _state(item.config)
    several = _blocked_by_several(state, req)
    if several is not None and rep.failed:
        reason = (
            f"blocked by {several}: the server answers only the first request of a "
            f"connection ({state.one_per_connection}), and this check sends more"
        )
        _mark_blocked(item, rep, several, reason)
        return
    # A check its server's death blocked is already blocked by that death's rule
    # (deaths.py); one blocked otherwise on such a server names the defect seen before.
    for by, seen in state.broken.items():
        blocked = isinstance(exc, Blocked) and not getattr(exc, "by_death", False)
        if by != req.id and blocked:
            _mark_blocked(item, rep, by, f"blocked by {by}: {seen}")
            return


def _mark_blocked(item: pytest.Item, rep: pytest.TestReport, by: str, reason: str) -> None:
    """Report the check as blocked by requirement `by` (a skip that carries `blocked_by`)."""
    rep.outcome = "skipped"
    rep.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {reason}")
    rep.user_properties.append(("blocked_by", by))


def _failure_text(item: pytest.Item, req: Requirement, exc: BaseException) -> str:
    header = f"[{req.id} {req.level}] {req.title}"
    if isinstance(exc, Violation):
        body = exc.render()
    elif is_kit_error(exc):
        body = KIT_ERROR.format(error=f"{type(exc).__name__}: {exc}")
    else:
        body = f"  {type(exc).__name__}: {exc}"
    # Hypothesis attaches the minimal example as notes ("Falsifying example: ...").
    notes = [n for n in getattr(exc, "__notes__", []) if "Falsifying" in n or "state." in n]
    if notes:
        body += "\n  Minimal example (shrunk by hypothesis):\n" + "\n".join(
            "    " + line for note in notes for line in note.splitlines()
        )
    srv = item.funcargs.get("server") if hasattr(item, "funcargs") else None
    stopped_by_kit = isinstance(srv, Server) and srv.launched is not None and srv.launched.stopped
    died = isinstance(exc, Violation) and exc.actual.startswith(DIED_DURING)
    if isinstance(srv, Server) and not stopped_by_kit and not died and not srv.alive():
        body += "\n  Server:   " + srv.death()
    return f"{header}\n{body}"


class _Recorder:
    """Folds every phase's report into the per-requirement verdict (controller and -n 0)."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = {str(k): str(v) for k, v in report.user_properties}
        req_id = props.get("requirement")
        if req_id is None and report.failed and "crashed" in str(report.longrepr):
            # pytest-xdist reports a worker that died mid-check without the check's
            # properties; the check's requirement still has to fail, and say why.
            req_id = _check_requirements().get(report.nodeid.rsplit("/", 1)[-1])
            if req_id is not None:
                report.longrepr = (
                    f"[{req_id}] the kit's worker process died while running this check "
                    f"(pytest-xdist replaced it and went on): {report.longrepr}"
                )
        output = int(props.get("largest_output", "0") or 0)
        self.state.largest_output = max(self.state.largest_output, output)
        self.state.start_wait_s += float(props.get("start_wait_s", "0") or 0)
        if req_id is not None:
            result = self.state.results.setdefault(req_id, report_mod.Result(req_id))
            result.add(report, props)


@functools.cache
def _check_requirements() -> dict[str, str]:
    """ "test_module.py::test_name" -> requirement ID, for every check of the package."""
    import importlib
    import pkgutil

    from conformance import checks

    found = {}
    for info in pkgutil.iter_modules(checks.__path__):
        if not info.name.startswith("test_"):
            continue
        module = importlib.import_module(f"conformance.checks.{info.name}")
        for name, fn in vars(module).items():
            for mark in getattr(fn, "pytestmark", []):
                if name.startswith("test_") and mark.name == "requirement":
                    found[f"{info.name}.py::{name}"] = mark.args[0]
    return found


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """The conformance summary; or, when -k left no check, how to choose requirements."""
    keyword = config.getoption("keyword", "")
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and keyword and not _is_worker(config):
        terminalreporter.write_line(
            f"conformance: -k {keyword!r} matched no check (-k matches check names, test_..., "
            "and requirement IDs such as CONC-1); to choose requirements by ID or prefix use "
            "--requirement (pytest: --conformance-requirement)"
        )
    state = _state(config)
    if state.settings is None or not state.results or _is_worker(config):
        return
    doc = _build_report(state, interrupted=exitstatus == pytest.ExitCode.INTERRUPTED)
    if state.view is not None and state.view.active:
        notes = report_mod.note_lines(doc)
        if doc.get("interrupted"):
            notes.insert(0, "INTERRUPTED: the run was stopped before every check ran")
        state.view.finish(doc, notes, time.monotonic() - state.t0)
        return
    terminalreporter.section("conformance summary")
    for line in report_mod.summary_lines(doc):
        terminalreporter.write_line(line)


def _build_report(state: RunState, interrupted: bool = False) -> dict[str, object]:
    assert state.settings is not None
    s = state.settings
    # The controller's own starts (the probes before the checks, under xdist) or the last.
    state.start_wait_s += LAUNCH_AHEAD.report_waited()
    return report_mod.build(
        results=state.results,
        selected=s.selected,
        target=s.target.describe(),
        protocol=s.protocol,
        profile=s.profile,
        seed=s.seed,
        model=state.model,
        started_at=state.started_at,
        duration_s=time.monotonic() - state.t0,
        excluded=s.exclusions.entries,
        serialised=state.serialised,
        strict=s.strict,
        points={r.id: s.grading.points_of(r) for r in s.selected},
        notes=[*state.notes, *LAUNCH_NOTES],
        interrupted=interrupted,
        largest_output=max(state.largest_output, launcher.LARGEST_OUTPUT),
        start_wait_s=state.start_wait_s,
        start_timeout=s.start_timeout,
    )


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    LAUNCH_AHEAD.close()
    config = session.config
    state = _state(config)
    if state.quiet_lock is not None and not _is_worker(config):
        shutil.rmtree(Path(state.quiet_lock).parent, ignore_errors=True)
    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    if state.settings is None or _is_worker(config) or not (state.results or interrupted):
        return
    doc = _build_report(state, interrupted=interrupted)
    s = state.settings
    write_outputs(doc, s.json_report, s.junit_xml, s.html)
    if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        session.exitstatus = report_mod.exit_code(doc)
