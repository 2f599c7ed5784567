"""The kit's `pytest11` entry point: its options, and nothing more unless a run asks for it.

Installing the kit installs this plugin into every pytest run of the environment: a user's
own project, a CI image. So it costs next to nothing there: it imports only the option table
(options.py, no harness, no hypothesis), registers the namespaced `--conformance-*` options,
and loads the real plugin (plugin.py: fixtures, verdicts, report) only when the run names a
server to check. A run that collects the kit's checks without a server is told how to give
one, once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance import options

#: The real plugin, registered under its module name (so `-p conformance.plugin` and a
#: conftest's `pytest_plugins` find it registered and do not register it twice).
PLUGIN = "conformance.plugin"
CHECKS_DIR = Path(__file__).resolve().parent / "checks"


def pytest_addoption(parser: pytest.Parser) -> None:
    """The `--conformance-*` options and ini keys, from the table in options.py."""
    options.add_pytest_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    """Register the checks' marker, and the real plugin when the run names a server."""
    config.addinivalue_line("markers", "requirement(id): the spec requirement a check checks")
    if options.wanted(config):
        config.pluginmanager.import_plugin(PLUGIN)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The kit's checks collected without a server: say how to give one (exit status 2)."""
    if config.pluginmanager.has_plugin(PLUGIN):
        return
    if any(_is_check(item) for item in items):
        # The real plugin refuses with a record: load it for that (an error path, so its
        # import cost does not matter here).
        from conformance import plugin
        from conformance.errors import Refusal

        config.stash[plugin.STATE] = plugin.RunState()
        plugin._refuse(config, Refusal("no-server", options.NO_SERVER))


def _is_check(item: pytest.Item) -> bool:
    """One of the kit's checks (not a user's test that happens to have a `requirement` mark)."""
    return item.get_closest_marker("requirement") is not None and CHECKS_DIR in item.path.parents
