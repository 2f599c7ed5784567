"""`conformance grade-merge SHARD_DIR... --out DIR`: one class summary from the shards.

`conformance grade --shard I/N` lets N machines (a CI matrix, a Kubernetes Indexed Job) each
grade every N-th folder of a class into an output directory of their own. This is the other
half: it gathers every student's reports from those directories into one, and writes
`summary.md` and `summary.csv` through the same code as `grade` (summary.write), from the
same reports, in the same order, so the merged files are byte for byte what one machine that
graded the whole class would have written.

It refuses what would make a wrong grade book rather than a merged one: shards graded with a
different grading config, seed, selection or kit (each report's fingerprint says which), or
output directories of different classes. A student graded in two shards (a resubmission
regraded on another machine) keeps the newer report, and the merge says so. A student no
shard has graded is listed as not graded yet, as `grade` lists one, and the merge exits 1, so
a CI job whose shard failed does not publish a grade book with a hole in it silently.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from conformance import options
from conformance.errors import USAGE_EXIT, UsageError
from conformance.grade import summary

DESCRIPTION = (
    "Merge the output directories of `conformance grade --shard I/N` (one per machine) into "
    "one: every student's reports, and the class summary (summary.md, summary.csv) exactly as "
    "one machine grading the whole class would have written it. Shards graded with another "
    "config, seed or kit are refused."
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "grade-merge",
        help="merge the shards of a class graded on several machines",
        description=DESCRIPTION,
        epilog="exit statuses: 0 merged, every submission graded; 1 merged, but some "
        "submission has no report in any shard (listed in summary.md); 2 usage error (a "
        "directory that is no grade output, shards of different classes or configs)",
        formatter_class=options.HelpFormatter,
    )
    p.add_argument(
        "shards", metavar="SHARD_DIR", nargs="+", help="output directories of the shards"
    )
    p.add_argument(
        "-o", "--out", metavar="DIR", required=True, help="merged output directory (created)"
    )


@dataclass(frozen=True, slots=True)
class Shard:
    path: Path
    class_name: str
    submissions: tuple[str, ...]


def read_shard(path: Path) -> Shard:
    meta = path / summary.CLASS_FILE
    if not meta.is_file():
        raise UsageError(
            f"{path} has no {summary.CLASS_FILE}: is it an output directory of "
            "`conformance grade` (--out)?"
        )
    try:
        doc = json.loads(meta.read_text())
        return Shard(path, str(doc["class"]), tuple(str(n) for n in doc["submissions"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{meta}: not a class file of `conformance grade` ({exc})") from exc


def _fingerprint(student_dir: Path) -> str:
    try:
        return str(json.loads((student_dir / "grade.json").read_text())["fingerprint"])
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"{student_dir}/grade.json is missing or unreadable ({exc})") from exc


def merge(shard_dirs: list[Path], out: Path) -> tuple[list[str], list[str]]:
    """Merge into `out`; (graded, missing) names. Raises UsageError for what cannot merge."""
    shards = [read_shard(d) for d in shard_dirs]
    first = shards[0]
    for s in shards[1:]:
        if (s.class_name, s.submissions) != (first.class_name, first.submissions):
            raise UsageError(
                f"{s.path} and {first.path} are gradings of different classes (or of the "
                f"same class with other folders): {s.class_name!r} with "
                f"{len(s.submissions)} submissions, {first.class_name!r} with "
                f"{len(first.submissions)}"
            )
    chosen: dict[str, Path] = {}
    for s in shards:
        for name in s.submissions:
            candidate = s.path / name
            if not (candidate / "report.json").is_file():
                continue
            kept = chosen.get(name)
            if kept is None:
                chosen[name] = candidate
                continue
            newer = max(kept, candidate, key=lambda d: (d / "report.json").stat().st_mtime)
            print(
                f"conformance grade-merge: {name} is graded in {kept.parent} and in "
                f"{candidate.parent}: the newer report ({newer.parent}) is kept",
                file=sys.stderr,
            )
            chosen[name] = newer
    prints = {name: _fingerprint(d) for name, d in chosen.items()}
    if len(set(prints.values())) > 1:
        groups: dict[str, list[str]] = {}
        for name, fp in prints.items():
            groups.setdefault(fp, []).append(f"{name} ({chosen[name].parent})")
        listing = "; ".join(", ".join(names) for names in groups.values())
        raise UsageError(
            "the shards were graded with different grading configs, seeds, requirement "
            f"selections or kit versions, so their scores do not compare: {listing}"
        )
    out.mkdir(parents=True, exist_ok=True)
    for name, source in chosen.items():
        target = out / name
        if target.resolve() == source.resolve():
            continue
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target, symlinks=True)
    names = list(first.submissions)
    summary.write_class(out, first.class_name, names, "merged")
    graded, missing = summary.write(out, names, first.class_name)
    return [g.name for g in graded], missing


def main(ns: argparse.Namespace) -> int:
    try:
        graded, missing = merge([Path(d) for d in ns.shards], Path(ns.out))
    except UsageError as exc:
        print(f"conformance grade-merge: {exc}", file=sys.stderr)
        return USAGE_EXIT
    out = Path(ns.out)
    if missing:
        print(
            f"conformance grade-merge: no shard has a report for {', '.join(missing)}: "
            f"{out}/summary.md lists them as not graded yet",
            file=sys.stderr,
        )
        return 1
    print(
        f"{len(graded)} submissions merged from {len(ns.shards)} shards; class summary: "
        f"{out}/summary.md, {out}/summary.csv"
    )
    return 0
