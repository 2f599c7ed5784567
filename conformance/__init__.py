"""A conformance kit for concurrent TCP servers: the spec, the harness, the checks, the CLI."""

__version__ = "0.1.0"
