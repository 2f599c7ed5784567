"""The spec is one source of truth: every requirement has a check, every check a requirement,
and SPEC.md is exactly what the registry renders."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

import conformance.checks
from conformance.marks import requirement
from conformance.spec import BY_ID, CATEGORIES, REQUIREMENTS, render_markdown, select

SPEC_MD = Path(conformance.checks.__file__).parent.parent / "SPEC.md"


def _checked_ids() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for info in pkgutil.iter_modules(conformance.checks.__path__):
        if not info.name.startswith("test_"):
            continue
        module = importlib.import_module(f"conformance.checks.{info.name}")
        for name, obj in vars(module).items():
            for mark in getattr(obj, "pytestmark", []):
                if mark.name == "requirement":
                    found.setdefault(mark.args[0], []).append(f"{info.name}.{name}")
    return found


def test_every_requirement_has_a_check() -> None:
    missing = [r.id for r in REQUIREMENTS if r.id not in _checked_ids()]
    assert not missing, f"requirements without a check: {missing}"


def test_every_check_names_a_known_requirement() -> None:
    unknown = {k: v for k, v in _checked_ids().items() if k not in BY_ID}
    assert not unknown


def test_unknown_id_in_a_check_fails_at_import() -> None:
    with pytest.raises(ValueError, match="NOPE-1"):
        requirement("NOPE-1")


def test_check_modules_mirror_categories() -> None:
    """A reader who knows the spec finds a category's checks in checks/test_<category>.py."""
    for req_id, where in _checked_ids().items():
        category = BY_ID[req_id].category.replace("-", "_")
        assert all(w.startswith(f"test_{category}.") for w in where), (req_id, where)


def test_requirements_are_well_formed() -> None:
    assert len({r.id for r in REQUIREMENTS}) == len(REQUIREMENTS)
    for r in REQUIREMENTS:
        assert r.category in CATEGORIES
        assert r.level in ("MUST", "SHOULD")
        assert r.title.endswith(".") and r.why.endswith(".")
    assert {r.category for r in REQUIREMENTS} == set(CATEGORIES)


def test_spec_md_is_rendered_from_the_registry() -> None:
    assert SPEC_MD.read_text() == render_markdown(), (
        "SPEC.md is out of date: run `conformance list --markdown > conformance/SPEC.md`"
    )


def test_select_by_id_prefix_and_category() -> None:
    assert [r.id for r in select(["CONC-2"])] == ["CONC-2"]
    assert {r.id for r in select(["EXIT"])} == {r.id for r in REQUIREMENTS if r.prefix == "EXIT"}
    assert {r.category for r in select(["fd-leak"])} == {"fd-leak"}
    with pytest.raises(ValueError, match="matches no requirement"):
        select(["CONC-99"])
