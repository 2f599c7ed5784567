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
def script_server(tmp_path: Path, source: str) -> Iterator[Server]:
    """A Python server from `source` (its port is argv[1]), launched and handed over the
    moment it listens, as the kit gets it."""
    script = tmp_path / "server.py"
    script.write_text(source)
    launched = launch(f"{sys.executable} -S {script} {{port}}")
    try:
        assert launched.listener_pid is not None
        server = Server("127.0.0.1", launched.port, "ok", "unknown", launched)
        server.process = ServerProcess(launched.listener_pid)
        yield server
    finally:
        launched.stop()
