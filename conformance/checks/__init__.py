"""The checks: one module per spec category, each check beside its requirement ID.

These are pytest tests collected by `conformance run` (or `pytest --pyargs conformance`).
They act through the harness and judge with its `expect*`/`fail` helpers; none of them
touches sockets or processes directly.
"""
