"""The matrix: the kit against every zoo server, asserting the exact set of failed categories.

A correct server must fail nothing; a defective one must fail exactly the categories its one
defect breaks (tests/servers/zoo.py says which, and why when it is more than one), at the
quick and the default profile (the default runs more generated scenarios, and reaches
interleavings the quick one does not). A requirement the defect keeps from being judged is
blocked by one of the requirements the defect breaks, never by another.

The README's test command runs the fast tier (`zoo.in_fast_tier`: a cover of the defective
C and Python servers that breaks every requirement, and the servers whose defects interact,
at the quick profile); `--full-matrix` runs every server at both profiles.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.spec import REQUIREMENTS
from tests.conftest import BUILD_FIXTURE, kit
from tests.servers.zoo import (
    BREAKS,
    COVERING,
    DEFECTIVE,
    DEFECTS,
    FAST_PROFILE,
    INTERACTING,
    ZOO,
    ZooServer,
    command,
    in_fast_tier,
)

PROFILES = ("quick", "default")


def _runs() -> list[object]:
    """Every (server, profile) of the matrix; those outside the fast tier are marked
    `full_matrix`, which runs them only with --full-matrix (tests/conftest.py)."""
    return [
        pytest.param(
            server,
            profile,
            id=f"{server.id}-{profile}",
            marks=() if in_fast_tier(server, profile) else pytest.mark.full_matrix,
        )
        for server in ZOO
        for profile in PROFILES
    ]


@pytest.mark.parametrize(("server", "profile"), _runs())
def test_kit_verdict_on_zoo_server(
    server: ZooServer, profile: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    fixture = BUILD_FIXTURE.get(server.language)  # Python servers need no build
    build = request.getfixturevalue(fixture) if fixture else Path(".")
    out = tmp_path / "report.json"
    result = kit(
        "run",
        "--server-cmd",
        command(server, build),
        "--protocol",
        server.protocol,
        "--profile",
        profile,
        "--json-report",
        str(out),
    )
    assert out.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    doc = json.loads(out.read_text())
    failed = {c for c, outcome in doc["categories"].items() if outcome == "failed"}
    details = "\n".join(r["detail"] for r in doc["requirements"] if r["outcome"] == "failed")
    expected = set(server.expected_failures)
    assert failed == expected, (
        f"expected failed categories {sorted(expected)}, got {sorted(failed)}\n{details[-4000:]}"
    )
    failed_ids = {r["id"] for r in doc["requirements"] if r["outcome"] == "failed"}
    assert server.breaks <= failed_ids, (
        f"{sorted(server.breaks - failed_ids)} should fail; failed: {sorted(failed_ids)}"
    )
    # A requirement that could not be judged names the one this server's defect breaks.
    blockers = {r["id"]: r["blocked_by"] for r in doc["requirements"] if r["outcome"] == "blocked"}
    assert set(blockers.values()) <= server.breaks, blockers
    assert not [r["id"] for r in doc["requirements"] if r["outcome"] == "kit-error"], details
    if server.design in ("fork", "prefork"):
        # Who holds each connection is what tells these: a reparented grandchild (double
        # fork), a daemon's children and a one-reply server's held sessions included.
        assert doc["model"] == server.design, doc["model"]
    assert result.returncode == (1 if server.expected_failures else 0)


@pytest.mark.parametrize("language", COVERING)
def test_every_must_is_broken_by_some_zoo_server(language: str) -> None:
    """Coverage by requirement, not only by category: every MUST has a defect built to break
    it, in each language (the matrix above proves each one does fail). The SHOULD (EXIT-5)
    is broken by the Python launch misbehaviours, which test_cli.py runs."""
    broken = set().union(*(s.breaks for s in DEFECTIVE if s.language == language))
    musts = {r.id for r in REQUIREMENTS if r.level == "MUST"}
    if language == "python":
        # EINTR-3 (EINTR injected by strace): Python retries an interrupted system call by
        # itself (PEP 475), so no Python server can be built to break it; the C one does.
        musts.discard("EINTR-3")
    # PROTO-6 is about protocol adapters other than the zoo's ok and echo: its defective
    # servers speak line, http, resp and a user's netstring (tests/protocols/test_adapters.py).
    musts.discard("PROTO-6")
    assert musts - broken == set()
    assert {s.defect for s in DEFECTIVE} <= set(BREAKS)


def test_the_fast_tier_still_breaks_every_must() -> None:
    """The README's test command runs only the fast tier of the matrix; it must still prove
    every MUST fails on a server built to break it, whatever servers are added to the zoo or
    however the rule changes (the full matrix adds languages, designs and runtimes, never a
    requirement), and it keeps the servers whose defects interact."""
    fast = [s for s in DEFECTIVE if in_fast_tier(s, FAST_PROFILE)]
    broken = set().union(*(s.breaks for s in fast))
    musts = {r.id for r in REQUIREMENTS if r.level == "MUST"}
    assert musts - broken == set(), "no fast-tier server breaks these"
    assert set(INTERACTING) <= {s.name for s in fast}
    assert len(fast) < len([s for s in DEFECTIVE if s.language in COVERING]) / 2


def test_the_zoo_readme_table_says_what_the_manifest_says() -> None:
    """tests/servers/README.md lists every defect with the categories it must fail, as the
    manifest does (SPEC.md is guarded the same way against the registry)."""
    table = (Path(__file__).resolve().parent.parent / "servers" / "README.md").read_text()
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].startswith("`"):
            rows.setdefault(cells[0].strip("`"), cells[-1])
    for defect in DEFECTS:
        assert defect.name in rows, f"{defect.name} has no row in tests/servers/README.md"
        listed = {c.strip() for c in rows[defect.name].split(",") if c.strip()}
        assert listed == set(defect.expected), (defect.name, listed, set(defect.expected))
