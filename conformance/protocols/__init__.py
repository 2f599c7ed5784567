"""Protocol adapters: the registry of built-in ones, the loader of a user's, applicability.

`--protocol NAME` picks a built-in adapter (`ok`, `echo`, `line`, `http`, `resp`);
`--protocol package.module:ClassName` loads a user's subclass of `ProtocolAdapter`. Anything
wrong with it is a UsageError (exit status 2) raised before the checks, never a crash mid-run.
The interface is in `base.py`; docs/adapters.md describes it with an example.

Every part of the kit resolves a protocol by its option string with `get()`, so a run's
adapter (with its options: `--line-reply`, `--http-path`) is configured once, by `configure()`,
in every process of the run (xdist workers parse the same options).
"""

from __future__ import annotations

import importlib
from typing import Any

from conformance.errors import UsageError
from conformance.protocols.base import ROUND_TRIP, ProtocolAdapter
from conformance.spec import BOTH, Requirement

__all__ = [
    "BUILTIN",
    "ROUND_TRIP",
    "ProtocolAdapter",
    "configure",
    "get",
    "inapplicable",
    "load",
    "options_of",
]

#: Built-in adapters by `--protocol` name (module, class).
BUILTIN: dict[str, tuple[str, str]] = {
    "ok": ("conformance.protocols.teaching", "OkAdapter"),
    "echo": ("conformance.protocols.teaching", "EchoAdapter"),
    "line": ("conformance.protocols.line", "LineAdapter"),
    "http": ("conformance.protocols.http", "HttpAdapter"),
    "resp": ("conformance.protocols.resp", "RespAdapter"),
}
#: Options of built-in adapters, by adapter name: option -> constructor keyword.
OPTIONS: dict[str, dict[str, str]] = {
    "line": {"line_reply": "reply"},
    "http": {"http_path": "path"},
}
_REQUIRED = ("request", "reply_length")
_configured: dict[str, ProtocolAdapter] = {}
_options: dict[str, dict[str, Any]] = {}


def load(spec: str, options: dict[str, Any] | None = None) -> ProtocolAdapter:
    """The adapter `spec` names, built with `options`; UsageError saying what is wrong."""
    options = {k: v for k, v in (options or {}).items() if v is not None}
    if spec in BUILTIN:
        module_name, class_name = BUILTIN[spec]
        kwargs = {
            OPTIONS.get(spec, {})[k]: v for k, v in options.items() if k in OPTIONS.get(spec, {})
        }
        cls = getattr(importlib.import_module(module_name), class_name)
        return _build(spec, cls, kwargs)
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name.isidentifier():
        raise UsageError(
            f"--protocol {spec!r}: choose one of {', '.join(BUILTIN)}, or name your adapter "
            "as package.module:ClassName (see docs/adapters.md)"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any error importing the user's module is theirs to fix
        raise UsageError(
            f"--protocol {spec!r}: cannot import {module_name!r}: {type(exc).__name__}: {exc} "
            "(is its directory on PYTHONPATH?)"
        ) from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise UsageError(f"--protocol {spec!r}: module {module_name!r} has no {class_name!r}")
    if not (isinstance(cls, type) and issubclass(cls, ProtocolAdapter)):
        raise UsageError(
            f"--protocol {spec!r}: {class_name} is not a subclass of "
            "conformance.protocols.ProtocolAdapter (see docs/adapters.md)"
        )
    return _build(spec, cls, {})


def _build(spec: str, cls: type[ProtocolAdapter], kwargs: dict[str, Any]) -> ProtocolAdapter:
    missing = [m for m in _REQUIRED if getattr(cls, m, None) in (None, getattr(ProtocolAdapter, m))]
    if missing:
        raise UsageError(
            f"--protocol {spec!r}: {cls.__name__} does not define {', '.join(missing)}"
        )
    try:
        adapter = cls(**kwargs)
    except Exception as exc:
        raise UsageError(
            f"--protocol {spec!r}: {cls.__name__}() failed: {type(exc).__name__}: {exc}"
        ) from None
    _validate(spec, adapter)
    return adapter


def _validate(spec: str, adapter: ProtocolAdapter) -> None:
    """Try the adapter once, off the wire: a broken one fails here, not mid-run."""
    from conformance.spec import BY_ID

    where = f"--protocol {spec!r} ({type(adapter).__name__})"
    if not isinstance(adapter.name, str) or not adapter.name:
        raise UsageError(f"{where}: `name` must be a non-empty string")
    unknown = sorted(set(adapter.requirements) - set(BY_ID))
    unknown += sorted(set(adapter.not_expressible) - set(BY_ID))
    if unknown:
        raise UsageError(f"{where}: unknown requirement(s) {', '.join(unknown)}")
    for attr in ("root", "several"):
        if getattr(adapter, attr) not in BY_ID:
            raise UsageError(f"{where}: `{attr}` {getattr(adapter, attr)!r} is not a requirement")
    try:
        first, second = adapter.request(0), adapter.request(1)
        adapter.reply_length(first, b"")
        strategy = adapter.requests()
    except Exception as exc:
        raise UsageError(
            f"{where}: the adapter failed a dry run: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(first, bytes) or not first or not isinstance(second, bytes):
        raise UsageError(f"{where}: request(i) must return non-empty bytes, got {first!r}")
    if adapter.exit_request is not None and not isinstance(adapter.exit_request, bytes):
        raise UsageError(f"{where}: exit_request must be bytes or None")
    from hypothesis.strategies import SearchStrategy

    if not isinstance(strategy, SearchStrategy):
        raise UsageError(f"{where}: requests() must return a hypothesis strategy")
    if "EXIT-1" in adapter.requirements and adapter.exit_request is None:
        raise UsageError(f"{where}: it expresses EXIT-1 but has no exit_request")


def configure(spec: str, options: dict[str, Any] | None = None) -> ProtocolAdapter:
    """Load the run's adapter and make it what `get(spec)` returns in this process."""
    adapter = load(spec, options)
    _configured[spec] = adapter
    _options[spec] = {k: v for k, v in (options or {}).items() if v is not None}
    return adapter


def options_of(spec: str) -> dict[str, Any]:
    """The options `spec` was configured with (for a replay snippet to configure it again)."""
    return dict(_options.get(spec, {}))


def get(spec: str) -> ProtocolAdapter:
    """The adapter for `spec`: the configured one, else built with default options."""
    adapter = _configured.get(spec)
    if adapter is None:
        adapter = _configured[spec] = load(spec)
    return adapter


def inapplicable(req: Requirement, adapter: ProtocolAdapter) -> str | None:
    """Why `req` is not-applicable under `adapter` (None: it applies)."""
    if req.protocols == BOTH:
        reason = adapter.not_expressible.get(req.id)
        if reason:
            return (
                f"not applicable: {req.id} cannot be expressed in the {adapter.name} "
                f"protocol: {reason}"
            )
        return None
    if req.id in adapter.requirements:
        return None
    if adapter.name in ("ok", "echo"):
        if req.protocols == ("adapter",):
            return (
                f"not applicable: {req.id} is for protocol adapters; the {adapter.name} "
                "profile's own protocol requirements judge its replies"
            )
        return (
            f"not applicable: {req.id} is for the {'/'.join(req.protocols)} profile; "
            f"this run uses --protocol {adapter.name}"
        )
    return (
        f"not applicable: {req.id} is about the bytes of the {'/'.join(req.protocols)} "
        f"protocol; the {adapter.name} adapter does not express it"
    )
