"""Servers written inline in a test, as Python source: for a behaviour one test needs
(workers that start late, a server that waits on another host) and no zoo server has."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from conformance.harness import launch
from conformance.harness.processes import ServerProcess
from conformance.harness.server import Server


@contextlib.contextmanager
def launched_server(command: str, protocol: str = "ok") -> Iterator[Server]:
    """`command` ({port} filled in) launched and handed over the moment it listens, as the
    kit gets it; stopped, its whole tree, at the end."""
    launched = launch(command)
    try:
        assert launched.listener_pid is not None
        server = Server("127.0.0.1", launched.port, protocol, "unknown", launched)
        server.process = ServerProcess(launched.listener_pid)
        yield server
    finally:
        launched.stop()


@contextlib.contextmanager
def script_server(tmp_path: Path, source: str) -> Iterator[Server]:
    """A Python server from `source` (its port is argv[1]), as `launched_server`."""
    script = tmp_path / "server.py"
    script.write_text(source)
    with launched_server(f"{sys.executable} -S {script} {{port}}") as server:
        yield server
