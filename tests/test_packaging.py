"""What `pip install tcp-conformance` puts on a machine: the packages, and a wheel that works."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_is_listed_and_nothing_is_top_level_but_the_kit() -> None:
    """pyproject lists the packages by hand (the reference servers are mapped into the kit):
    a new subpackage left off the list would be missing from every install."""
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "conformance").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert listed == on_disk | {"conformance.reference_servers"}
    assert {name.split(".")[0] for name in listed} == {"conformance"}
    mapped = PYPROJECT["tool"]["setuptools"]["package-dir"]
    assert mapped == {"conformance.reference_servers": "reference_servers"}


@pytest.mark.slow
@pytest.mark.full_matrix  # end to end in CI's second step; the README's command keeps the units
def test_a_wheel_installs_and_checks_a_builtin_server(tmp_path: Path) -> None:
    """Built, installed into a fresh virtual environment, run from elsewhere: `--server fork`
    finds its reference server inside the installed package."""
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    (wheel,) = dist.glob("tcp_conformance-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "conformance/reference_servers/fork_server.py" in names
    assert not [n for n in names if n.startswith("reference_servers/")]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(wheel)],
        check=True,
        timeout=600,
        capture_output=True,
    )
    run = subprocess.run(
        [str(venv / "bin" / "conformance"), "run", "--server", "fork", "--profile", "quick",
         "--requirement", "PROTO-1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "score 2/2" in run.stdout
