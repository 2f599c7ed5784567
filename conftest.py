"""Root conftest: makes the plugin available in a source checkout.

When the package is installed, pytest already loaded the plugin from its `pytest11` entry
point, which is named "conformance.pytest_entry" like the module, so this line finds it
registered and does nothing: no double registration.
"""

pytest_plugins = ["conformance.pytest_entry", "pytester"]
