"""The harness: launching servers, driving clients, inspecting processes. Checks build on it.

A check never touches `socket`, `subprocess` or `psutil` directly; it goes through these
modules, which have their own tests in the kit's test suite.
"""

from conformance.harness.client import Client, Transcript
from conformance.harness.failure import Violation, fail, show
from conformance.harness.launcher import LaunchedServer, LaunchError, launch
from conformance.harness.polling import wait_until
from conformance.harness.server import Server, Target, TargetError

__all__ = [
    "Client",
    "LaunchError",
    "LaunchedServer",
    "Server",
    "Target",
    "TargetError",
    "Transcript",
    "Violation",
    "fail",
    "launch",
    "show",
    "wait_until",
]
