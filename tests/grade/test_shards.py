"""A class graded on several machines: `grade --shard I/N`, then `grade-merge`.

The merge must give what one machine would have written, byte for byte: the shards here are
separate processes, at once, each with its own output directory, as N CI jobs or the pods of
a Kubernetes Indexed Job are; the reference is one `grade` of the whole class. The fast tests
merge made-up reports (the rules: a different config is refused, a student no shard graded
is listed and makes the exit status 1); the full tier grades four students of the sample
class on a few requirements, and the whole class on all of them, as the README's summary
shows it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.grade import autograders, merge, summary
from conformance.grade import config as gradeconfig
from tests.conftest import ROOT, kit

CLASS = ROOT / "examples" / "class"
NAMES = sorted(p.name for p in CLASS.iterdir() if p.is_dir() and not p.name.startswith("_"))
needs_cc = pytest.mark.skipif(
    shutil.which("cc") is None or shutil.which("make") is None, reason="needs cc and make"
)


# -- the rules, on made-up reports ----------------------------------------------------------
def _fake_out(out: Path, names: list[str], everyone: list[str], fingerprint: str = "f1") -> Path:
    """An output directory as `grade` leaves it: class.json, and a report per student."""
    config = gradeconfig.load(CLASS / "grading.toml")
    out.mkdir(parents=True)
    summary.write_class(out, "class", everyone, "1/1")
    for i, name in enumerate(names):
        (out / name).mkdir()
        doc = autograders.unrun_report(config, f"reason {i}")
        autograders.write_json(doc, out / name / "report.json")
        meta = {"name": name, "fingerprint": fingerprint, "notes": [f"note of {name}"]}
        autograders.write_json(meta, out / name / "grade.json")
    return out


def test_a_merge_writes_what_one_grading_writes(tmp_path: Path) -> None:
    everyone = ["ann", "ben", "cat", "dan", "eve"]
    single = _fake_out(tmp_path / "single", everyone, everyone)
    summary.write(single, everyone, "class")
    shards = [_fake_out(tmp_path / f"s{i}", everyone[i - 1 :: 3], everyone) for i in (1, 2, 3)]
    graded, missing = merge.merge(shards, tmp_path / "merged")
    assert (graded, missing) == (everyone, [])
    for name in ("summary.md", "summary.csv"):
        assert (tmp_path / "merged" / name).read_bytes() == (single / name).read_bytes()
    assert (tmp_path / "merged" / "ben" / "report.json").is_file()


def test_shards_of_another_config_are_refused(tmp_path: Path) -> None:
    everyone = ["ann", "ben"]
    one = _fake_out(tmp_path / "s1", ["ann"], everyone, fingerprint="f1")
    two = _fake_out(tmp_path / "s2", ["ben"], everyone, fingerprint="f2")
    result = kit("grade-merge", str(one), str(two), "-o", str(tmp_path / "m"))
    assert result.returncode == 2, result.stderr
    assert "different grading configs" in result.stderr and "ann" in result.stderr
    other = _fake_out(tmp_path / "s3", ["ben"], ["ben", "zoe"])
    result = kit("grade-merge", str(one), str(other), "-o", str(tmp_path / "m"))
    assert result.returncode == 2 and "different classes" in result.stderr
    result = kit("grade-merge", str(tmp_path), "-o", str(tmp_path / "m"))
    assert result.returncode == 2 and "no class.json" in result.stderr


def test_a_student_no_shard_graded_is_listed_and_fails_the_merge(tmp_path: Path) -> None:
    everyone = ["ann", "ben", "cat"]
    one = _fake_out(tmp_path / "s1", ["ann"], everyone)
    three = _fake_out(tmp_path / "s3", ["cat"], everyone)
    result = kit("grade-merge", str(one), str(three), "-o", str(tmp_path / "m"))
    assert result.returncode == 1
    assert "no shard has a report for ben" in result.stderr
    assert "Not graded yet: ben." in (tmp_path / "m" / "summary.md").read_text()


# -- the sample class, graded for real --------------------------------------------------------
def _sharded_and_single(
    tmp_path: Path, picks: list[str], timeout: float, names: list[str] = NAMES
) -> Path:
    """Grade the class (the students `names` of it) as 3 shards at once (separate processes
    and output directories) and once whole; merge the shards; return the directory of the
    single grading."""
    subs = tmp_path / "class"
    left_out = [name for name in NAMES if name not in names]
    shutil.copytree(CLASS, subs, ignore=shutil.ignore_patterns("__pycache__", "*.py", *left_out))
    command = [sys.executable, "-m", "conformance", "grade", str(subs), *picks]
    shards = [
        subprocess.Popen(
            [*command, "--shard", f"{i}/3", "--out", str(tmp_path / f"shard{i}")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
        for i in (1, 2, 3)
    ]
    try:
        outputs = [p.communicate(timeout=timeout)[0] for p in shards]
    finally:
        for p in shards:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, output in zip(shards, outputs):
        assert p.returncode == 0, output
    single = kit("grade", str(subs), *picks, "-j", "2", "--out", str(tmp_path / "one"),
                 timeout=timeout)  # fmt: skip
    assert single.returncode == 0, single.stderr
    merged = kit(
        "grade-merge", *(str(tmp_path / f"shard{i}") for i in (1, 2, 3)),
        "-o", str(tmp_path / "merged"),
    )  # fmt: skip
    assert merged.returncode == 0, merged.stderr
    assert f"{len(names)} submissions merged from 3 shards" in merged.stdout
    return tmp_path / "one"


def _same_bytes(tmp_path: Path, single: Path, names: list[str] = NAMES) -> None:
    for name in ("summary.md", "summary.csv"):
        one, merged = (single / name).read_text(), (tmp_path / "merged" / name).read_text()
        assert merged == one, f"{name} differs:\n--- one machine\n{one}\n--- merged\n{merged}"
    rows = (single / "summary.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == names


@needs_cc
@pytest.mark.slow
@pytest.mark.full_matrix
def test_three_shards_merged_are_one_grading_byte_for_byte(tmp_path: Path) -> None:
    """Four students, one per shard and one more, on three requirements they split on (dave
    fails PROTO-1, bob ZOMB-1, carol CONC-1; alice passes all): some 20 s, 35 s beside the
    README's command, whose merges are the made-up reports above. The full tier runs this
    and grades the whole class on every requirement."""
    picks = ["--requirement", "PROTO-1", "--requirement", "ZOMB-1", "--requirement", "CONC-1"]
    names = ["alice", "bob", "carol", "dave"]
    single = _sharded_and_single(tmp_path, picks, timeout=600, names=names)
    _same_bytes(tmp_path, single, names)
    rows = (single / "summary.csv").read_text().splitlines()[1:]
    assert [row.split(",")[:3] for row in rows] == [
        ["alice", "6", "6"], ["bob", "5", "6"], ["carol", "3", "6"], ["dave", "4", "6"],
    ]  # fmt: skip


@needs_cc
@pytest.mark.full_matrix
def test_three_shards_of_the_whole_class_merged_are_one_grading(tmp_path: Path) -> None:
    """Every requirement, as the README's summary: some 4 to 8 minutes on 2 cores."""
    single = _sharded_and_single(tmp_path, [], timeout=1500)
    _same_bytes(tmp_path, single)
    assert json.loads((tmp_path / "merged" / "class.json").read_text())["shard"] == "merged"


# -- the examples that run it elsewhere -------------------------------------------------------
SHARDED = ROOT / "examples" / "sharded"


def _commands(path: Path) -> list[str]:
    """The `conformance ...` command lines of a workflow or manifest: a folded block
    (`run: >-`) is joined into one line, the way the runner joins it."""
    lines = path.read_text().splitlines()
    found, folded = [], 0
    for i, line in enumerate(lines):
        if i < folded:
            continue
        if line.rstrip().endswith("run: >-"):
            indent = len(lines[i + 1]) - len(lines[i + 1].lstrip())
            block = []
            for follow in lines[i + 1 :]:
                if len(follow) - len(follow.lstrip()) < indent or not follow.strip():
                    break
                block.append(follow.strip())
            found.append(" ".join(block))
            folded = i + 1 + len(block)
        elif "conformance grade" in line and not line.lstrip().startswith("#"):
            found.append(line.strip().removeprefix("run:").strip())
    return [c[c.index("conformance ") :] for c in found if "conformance " in c]


def _parsed(command: str, monkeypatch: pytest.MonkeyPatch) -> object:
    from conformance import cli
    from conformance.grade import batch

    seen = []
    monkeypatch.setattr(batch, "main", lambda ns: seen.append(ns) or 0)
    monkeypatch.setattr(merge, "main", lambda ns: seen.append(ns) or 0)
    assert cli.main(command.split()[1:]) == 0
    return seen[0]


@pytest.mark.parametrize("shards", [1, 3, 4])
def test_the_workflow_and_the_job_give_every_shard_once(
    shards: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The GitHub matrix's I/N and the Indexed Job's index+1/N, filled in as their engines
    fill them, parse as `conformance grade` options and name every shard once; the merge
    commands parse, and read the directories the shards write."""
    gh = _commands(SHARDED / "github-actions.yml")
    assert len(gh) == 2, gh
    k8s = _commands(SHARDED / "k8s-grade-job.yaml") + _commands(SHARDED / "k8s-merge-job.yaml")
    assert len(k8s) == 2, k8s
    seen: dict[str, list[str]] = {"gh": [], "k8s": []}
    for i in range(1, shards + 1):
        fill = {
            "${{ matrix.shard }}": str(i),
            "${{ strategy.job-total }}": str(shards),
            "$((JOB_COMPLETION_INDEX + 1))": str(i),
            "$SHARDS": str(shards),
            'sudo -E env "PATH=$PATH" ': "",
        }
        for engine, command in (("gh", gh[0]), ("k8s", k8s[0])):
            for key, value in fill.items():
                command = command.replace(key, value)
            ns = _parsed(command[command.index("conformance ") :], monkeypatch)
            assert ns.shard == f"{i}/{shards}", command  # type: ignore[attr-defined]
            seen[engine].append(ns.out)  # type: ignore[attr-defined]
    assert seen == {"gh": [f"grades-{i}" for i in range(1, shards + 1)],
                    "k8s": [f"/grades/shard-{i}" for i in range(1, shards + 1)]}  # fmt: skip
    gh_merge = _parsed(gh[1], monkeypatch)
    assert gh_merge.shards == ["shards/grades-*"]  # type: ignore[attr-defined]
    assert "grades-${{ matrix.shard }}" in (SHARDED / "github-actions.yml").read_text()
    k8s_merge = _parsed(k8s[1], monkeypatch)
    assert k8s_merge.shards == ["/grades/shard-*"]  # type: ignore[attr-defined]
