"""What `conformance bench` measured, as a record, a table, a JSON document and a plot.

Kept apart from the measuring (bench/__init__.py), so that matplotlib stays an optional
import used only by `--plot`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

PLOT_MISSING = (
    "--plot needs matplotlib, which is not installed: pip install 'tcp-conformance[plot]' "
    "(or pip install matplotlib)"
)


@dataclass(slots=True)
class Row:
    """One client count against one server."""

    clients: int
    served: int = 0
    requests: int = 0
    duration_s: float = 0.0
    requests_per_s: float = 0.0
    #: Clients served (connected, first message answered) per second of the connect phase,
    #: up to the last one served.
    connections_per_s: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    #: The server's process tree while it held every connection (None in address mode).
    server_processes: int | None = None
    server_threads: int | None = None
    server_memory_mb: float | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


HEADER = (
    f"{'clients':>8} {'served':>7} {'req/s':>9} {'conn/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
    f"{'max ms':>8} {'errors':>7} {'procs':>6} {'threads':>7} {'mem MB':>7}"
)


def _num(value: float | int | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def table_line(row: Row) -> str:
    return (
        f"{row.clients:>8} {row.served:>7} {row.requests_per_s:>9.0f} "
        f"{row.connections_per_s:>8.0f} {_num(row.p50_ms, '8.2f')} {_num(row.p99_ms, '8.2f')} "
        f"{_num(row.max_ms, '8.2f')} {row.errors:>7} {_num(row.server_processes, '6d')} "
        f"{_num(row.server_threads, '7d')} {_num(row.server_memory_mb, '7.0f')}"
    )


def error_lines(rows: list[Row]) -> list[str]:
    """One line per row with errors, naming each kind: never only a total."""
    return [
        f"{row.clients} clients: "
        + ", ".join(f"{n} {kind}" for kind, n in sorted(row.error_kinds.items()))
        for row in rows
        if row.errors
    ]


def write_json(path: Path, header: dict[str, object], rows: list[Row]) -> None:
    doc = dict(header, results=[row.as_dict() for row in rows])
    path.write_text(json.dumps(doc, indent=2) + "\n")


def plot_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def write_plot(path: Path, title: str, rows: list[Row]) -> None:
    """Throughput and p99 latency against clients, log-scaled, side by side."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    xs = [r.clients for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(xs, [r.requests_per_s for r in rows], marker="o")
    left.set(xscale="log", xlabel="clients", ylabel="requests/s", title="throughput")
    left.set_ylim(bottom=0)  # a truncated axis would make noise look like a trend
    p99 = [(r.clients, r.p99_ms) for r in rows if r.p99_ms is not None]
    right.plot([c for c, _ in p99], [v for _, v in p99], marker="o", color="tab:red")
    right.set(xscale="log", yscale="log", xlabel="clients", ylabel="ms", title="p99 latency")
    for ax in (left, right):
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
