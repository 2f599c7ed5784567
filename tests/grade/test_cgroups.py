"""Memory bounded per submission: a cgroup holds all its processes (grade/cgroups.py).

The hostile submission forks six children that each touch 1 GiB, then serves: 6 GiB in all,
under per-process limits that allow each of them 4 GiB. With a cgroup of 1 GiB (the default
`memory_mb`), the OOM killer ends one of them inside the cgroup, the grader stops the run
with a note in the student's words, and nothing of the submission is left: no process, no
cgroup. Where no cgroup can be made here (not root, nothing delegated), the test is skipped
with the reason the grader gives.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from conformance.grade import batch, cgroups, containment
from conformance.grade import config as gradeconfig
from tests.conftest import kit

HOG = """\
import os, socket, sys, time

# It listens only once its children hold their memory (or were killed trying), so the
# kernel's limit acts before any check is judged, however slow a busy machine makes them.
ready, told = os.pipe()
for _ in range(6):
    if os.fork() == 0:
        os.close(ready)
        block = b"x" * (1 << 30)  # written, so resident: 1 GiB per child
        os.write(told, b"+")
        time.sleep(120)
        os._exit(0)
os.close(told)
got = b""
while len(got) < 6:
    more = os.read(ready, 6)
    if not more:
        break  # every child holds its block or is gone
    got += more
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen(64)
while True:
    conn, _ = server.accept()
    while conn.recv(1024):
        conn.sendall(b"OK!!!")
    conn.close()
"""


def test_six_children_of_1_gib_are_stopped_by_the_cgroup(tmp_path: Path) -> None:
    delegation, why = cgroups.delegation()
    if delegation is None:
        pytest.skip(f"no cgroup can be made here: {why}")
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        pytest.skip("needs the system's python3 (the submission runs it in the sandbox)")
    subs = tmp_path / "class"
    (subs / "hog").mkdir(parents=True)
    (subs / "hog" / "hog.py").write_text(HOG)
    (subs / "grading.toml").write_text(
        f'[assignment]\nrun = "{python} hog.py {{port}}"\nprofile = "quick"\n'
        # The kernel may reclaim for seconds before it kills (no swap: it evicts the
        # children's own code pages first), longer on a busy machine: the hog's start
        # waits for that, so the verdict never depends on how fast the OOM killer is.
        "start_timeout = 60\n"
    )
    result = kit(
        "grade", str(subs), "--out", str(tmp_path / "out"), "--requirement", "PROTO-3",
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"memory ({delegation.describe()}): a cgroup per submission" in result.stderr
    meta = json.loads((tmp_path / "out" / "hog" / "grade.json").read_text())
    report = json.loads((tmp_path / "out" / "hog" / "report.json").read_text())
    assert report["score"] == 0
    assert meta["cgroup"]["oom_kill"] >= 1, meta
    assert meta["notes"] == [
        "the run was stopped because its processes together used more than the memory limit "
        "of 1024 MiB (the kernel's OOM killer ended one of them): no requirement was judged"
    ]
    results = json.loads((tmp_path / "out" / "hog" / "results.json").read_text())
    assert results["output"].startswith("NOTE: the run was stopped because its processes")
    # Nothing of it survives: no process of its uid or token, no cgroup of the grading.
    if meta["uid"] is not None:
        assert containment.slot_processes(meta["uid"], "-") == []
    assert meta["cgroup"]["dirs"] and not any(Path(d).exists() for d in meta["cgroup"]["dirs"])


def test_the_grader_says_at_start_what_bounds_memory(capsys: pytest.CaptureFixture[str]) -> None:
    config = gradeconfig.DEFAULT
    batch._announce_memory(config, None, "--cgroups never")
    err = capsys.readouterr().err
    assert err.startswith("WARNING: no cgroup per submission (--cgroups never): each process")
    assert "4096 MiB (RLIMIT_AS)" in err and "nothing bounds their memory together" in err
    delegation = cgroups.Delegation(2, (Path("/sys/fs/cgroup/x"),))
    batch._announce_memory(config, delegation, "")
    assert "at most 1024 MiB and 512 tasks for all its processes together" in (
        capsys.readouterr().err
    )
    assert sys.platform.startswith("linux")


def test_v2_moves_the_graders_processes_to_a_leaf_and_enables_the_controllers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The v2 layout's file writes, on a made-up hierarchy (this machine may have none): the
    cgroup's own processes go to the leaf, then memory and pids are enabled for its children,
    and a submission's cgroup gets memory.max, no swap and pids.max."""
    own = tmp_path / "user.slice" / "grader.scope"
    own.mkdir(parents=True)
    (own / "cgroup.controllers").write_text("cpu io memory pids\n")
    (own / "cgroup.subtree_control").write_text("")
    (own / "cgroup.procs").write_text("4242\n")
    monkeypatch.setattr(cgroups, "_mounts", lambda: [(str(tmp_path), "cgroup2", {"rw"})])
    monkeypatch.setattr(cgroups, "_own_paths", lambda: {"": "/user.slice/grader.scope"})
    delegation, why = cgroups.delegation()
    assert delegation == cgroups.Delegation(2, (own,)), why
    assert (own / cgroups.LEAF / "cgroup.procs").read_text() == "4242"
    assert (own / "cgroup.subtree_control").read_text() == "+memory +pids"
    group = delegation.create("abc", memory_mb=64, nproc=32)
    d = own / f"{cgroups.PREFIX}abc"
    assert group.dirs == (d,)
    assert (d / "memory.max").read_text() == f"{64 * 1024 * 1024}\n"
    assert (d / "pids.max").read_text() == "32\n"
    # memory.swap.max is written only where the kernel made it (swap accounting on): a
    # made-up directory has none.
    assert not (d / "memory.swap.max").exists()
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n")
    (d / "pids.events").write_text("max 0\n")
    assert group.events() == {"oom_kill": 1, "pids_max": 0}


def test_no_cgroup_file_system_means_the_per_process_limits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cgroups, "_mounts", lambda: [])
    assert cgroups.delegation() == (None, "no cgroup file system is mounted")
