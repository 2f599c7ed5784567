"""Reference TCP servers that pass the kit: fork per connection, thread per connection,
select (one thread multiplexing), and a pool of threads.

Installed as `conformance.reference_servers` (pyproject.toml maps this directory there), so
an installed kit can launch them (`--server fork`) without a top-level package of its own.
"""
