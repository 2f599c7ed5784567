"""Ports: drawn from the system's randomness, so concurrent runs never share one."""

from __future__ import annotations


def test_ports_differ_between_generated_examples() -> None:
    """Hypothesis seeds the `random` module afresh for each example; ports drawn from it came
    out the same in every example and in every concurrent kit run with the same --seed, so
    concurrent runs launched on one another's ports (the flake figure caught it)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from conformance.harness.ports import free_port

    ports: list[int] = []

    @settings(max_examples=8, database=None)
    @given(st.integers())
    def example(_: int) -> None:
        ports.append(free_port())

    example()
    assert len(set(ports)) > 1, ports
