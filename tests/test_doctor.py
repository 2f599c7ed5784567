"""`conformance doctor`: each need found or missing, with its cost and its fix, truthfully."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from conformance import doctor
from conformance.harness import signals
from tests.conftest import kit

NEEDS = ["Linux", "strace", "ptrace permission", "user namespaces or root",
         "network namespaces", "bwrap", "C compiler", "eu-stack", "py-spy", "jcmd",
         "objdump"]  # fmt: skip


def test_doctor_names_every_need_and_its_exit_status_matches() -> None:
    result = kit("doctor")
    lines = result.stdout.splitlines()
    for need in NEEDS:
        assert any(f" {need}" in line for line in lines), (need, result.stdout)
    missing = [line for line in lines if line.startswith("MISSING")]
    assert result.returncode == (1 if missing else 0), result.stdout
    assert lines[-1].startswith("as uid ")


def test_without_strace_eintr3_is_skipped_and_the_fix_is_said(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(doctor.shutil, "which", lambda name: None)
    found = {f.need: f for f in (doctor.strace(), doctor.ptrace())}
    assert not found["strace"].ok
    assert "EINTR-3" in found["strace"].cost
    assert "apt-get install strace" in found["strace"].fix
    assert not found["ptrace permission"].ok
    assert doctor.main(None) == 1  # type: ignore[arg-type]


def test_ptrace_denied_by_yama_says_which_sysctl(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Ubuntu's ptrace_scope=1 denies strace a sibling: the fix names the sysctl."""
    scope = tmp_path / "ptrace_scope"
    scope.write_text("1\n")
    monkeypatch.setattr(doctor, "YAMA", scope)

    @contextlib.contextmanager
    def denied(pid: int, log: str):  # type: ignore[no-untyped-def]
        raise signals.StraceUnavailable("strace could not attach (ptrace not allowed?): EPERM")
        yield

    monkeypatch.setattr(signals, "injected_eintr", denied)
    finding = doctor.ptrace()
    assert not finding.ok
    assert "kernel.yama.ptrace_scope=1" in finding.detail
    assert "EINTR-3" in finding.cost
    assert "sysctl kernel.yama.ptrace_scope=0" in finding.fix


def test_without_namespaces_the_grader_s_fallback_is_said(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from conformance.grade import sandbox

    monkeypatch.setattr(sandbox, "isolation_problem", lambda: "unshare: Operation not permitted")
    finding = doctor.namespaces()
    assert not finding.ok
    assert "--sandbox auto" in finding.cost and "resource limits only" in finding.cost
    assert "user namespaces" in finding.fix


def test_optional_needs_do_not_fail_the_doctor(monkeypatch: pytest.MonkeyPatch) -> None:
    absent = doctor.Finding("bwrap", False, "not installed", cost="c", fix="f")
    monkeypatch.setattr(doctor, "findings", lambda: [doctor.linux(), absent])
    assert doctor.main(None) == 0  # type: ignore[arg-type]
    lines = doctor.render([doctor.linux(), absent])
    assert lines[1].startswith("absent   bwrap (optional)")
    assert "optional, absent: bwrap" in lines[-1]


def test_stack_tools_are_named_with_what_they_serve_and_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without eu-stack, py-spy or jcmd a failure shows no stack for that runtime, and its
    verdict is the same: each is optional, absent with its cost and its install line."""
    from conformance.harness import stacks

    monkeypatch.setattr(stacks, "find_tool", lambda name: None)
    found = [doctor.eu_stack(), doctor.py_spy(), doctor.jcmd()]
    assert [f.need for f in found] == ["eu-stack", "py-spy", "jcmd"]
    for finding, servers in zip(found, ["C, C++ and Rust", "Python", "JVM"], strict=True):
        assert not finding.ok and finding.optional
        assert servers in finding.cost and "the verdict is the same" in finding.cost
        assert finding.fix == stacks.INSTALL[finding.need]
    assert "apt-get install elfutils" in found[0].fix
    lines = doctor.render(found)
    assert lines[0].startswith("absent   eu-stack (optional)")


def test_a_stack_tool_that_cannot_read_a_child_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    """Found is not enough: the doctor reads a child's stack as the kit reads a server's,
    and a refused ptrace names what would allow it."""
    from conformance.harness import stacks

    monkeypatch.setattr(stacks, "find_tool", lambda name: "/usr/bin/" + name)

    def refused(argv: list[str], timeout: float) -> str:
        raise stacks._ToolFailed("dwfl_linux_proc_attach pid 1: Operation not permitted")

    monkeypatch.setattr(stacks, "_run", refused)
    finding = doctor.eu_stack()
    assert not finding.ok
    assert "Operation not permitted" in finding.detail
    assert finding.fix == stacks.PTRACE_REFUSED


def test_objdump_for_the_listen_call_is_named_with_its_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without objdump (binutils) or eu-addr2line (elfutils) CONC-3 names no listen() line of a
    native server: optional, with what it costs and the package to install."""
    from conformance.harness import stacks

    monkeypatch.setattr(stacks, "find_tool", lambda name: None)
    finding = doctor.objdump()
    assert not finding.ok and finding.optional
    assert "CONC-3" in finding.cost
    assert finding.fix == "apt-get install binutils and apt-get install elfutils"
    monkeypatch.setattr(stacks, "find_tool", lambda name: f"/usr/bin/{name}")
    assert doctor.objdump().ok
