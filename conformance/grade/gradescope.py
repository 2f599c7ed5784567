"""`conformance gradescope grading.toml -o autograder.zip`: Gradescope's autograder in one file.

Gradescope builds an image per assignment from the zip the instructor uploads: it runs
`setup.sh` once (as root, on its Ubuntu base image), then, for every submission, a container
of that image in which `/autograder/run_autograder` grades `/autograder/submission` and
writes `/autograder/results/results.json`. The zip written here holds:

- `setup.sh`: the system packages the kit and the config's build need (Python, strace,
  elfutils, a compiler and make, or what the build command names), then the kit, at this
  exact version, in a virtual environment of its own (/opt/conformance), so nothing the
  image's Python has can change what it runs. The kit comes from the package index
  (`tcp-conformance==VERSION`), or from a wheel or sdist put in the zip (`--kit FILE`).
- `run_autograder`: `conformance grade` of the one submission with the whole sandbox (it is
  root there), its results.json copied where Gradescope reads it. If the grader itself
  cannot run, a results.json worth 0 that says so, never no file (Gradescope then shows an
  error the student cannot read).
- `grading.toml` (and the config's own protocol adapter, if it names one beside it).
"""

from __future__ import annotations

import argparse
import io
import re
import shlex
import sys
import zipfile
from pathlib import Path

from conformance import __version__, options
from conformance.errors import USAGE_EXIT, UsageError
from conformance.grade import config as gradeconfig

PACKAGE = "tcp-conformance"
VENV = "/opt/conformance"
#: What every grading needs: Python for the kit, strace (EINTR-3), eu-stack (where a failing
#: server waits), ps and friends.
BASE_PACKAGES = (
    "python3", "python3-venv", "python3-pip", "ca-certificates", "strace", "elfutils",
    "procps", "iproute2",
)  # fmt: skip
#: The build command's words that need packages, and which (Debian and Ubuntu names).
BUILD_PACKAGES = (
    (r"\b(make|cc|gcc|g\+\+|c\+\+|clang)\b", ("build-essential",)),
    (r"\bcmake\b", ("cmake", "build-essential")),
    (r"\bcargo\b|\brustc\b", ("cargo",)),
    (r"\bgo (build|run)\b", ("golang-go",)),
    (r"\bjavac\b|\bjava\b|\bmvn\b|\bgradle\b", ("default-jdk-headless",)),
)

DESCRIPTION = (
    "Write the zip a Gradescope programming assignment wants (setup.sh, run_autograder, the "
    "grading config): setup.sh installs the kit at this version and what the build needs; "
    "run_autograder grades /autograder/submission with the sandbox. docs/grading.md has the "
    "steps on Gradescope's side."
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gradescope",
        help="write a Gradescope autograder zip for a grading config",
        description=DESCRIPTION,
        epilog="exit statuses: 0 written, 2 usage error (a bad config or file)",
        formatter_class=options.HelpFormatter,
    )
    p.add_argument("config", metavar="GRADING_TOML", help="the assignment's grading config")
    p.add_argument("-o", "--out", metavar="ZIP", default="autograder.zip", help="the zip")
    p.add_argument(
        "--kit",
        metavar="FILE",
        help=f"install the kit from this wheel or sdist, put in the zip (default: {PACKAGE}"
        f"=={__version__} from the package index)",
    )
    p.add_argument(
        "--apt",
        action="append",
        default=[],
        metavar="PACKAGE",
        help="another system package the build or the server needs (repeatable)",
    )


def packages_for(config: gradeconfig.GradingConfig, extra: list[str]) -> list[str]:
    """System packages: the kit's, the build command's, and the instructor's."""
    wanted = list(BASE_PACKAGES)
    for command in (config.build or "", config.run or ""):
        for pattern, names in BUILD_PACKAGES:
            if re.search(pattern, command):
                wanted += [n for n in names if n not in wanted]
    return wanted + [n for n in extra if n not in wanted]


def setup_sh(packages: list[str], kit: str | None) -> str:
    source = f"/autograder/source/{kit}" if kit else f"{PACKAGE}=={__version__}"
    return f"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the assignment's image.
# Written by `conformance gradescope` (tcp-conformance {__version__}).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends {" ".join(packages)}
python3 -m venv {VENV}
{VENV}/bin/python -m pip install --quiet {shlex.quote(source)}
# The exact version, or the image is not built: a grade must not depend on when it was built.
test "$({VENV}/bin/conformance --version)" = "conformance {__version__}"
"""


def run_autograder() -> str:
    return f"""#!/usr/bin/env bash
# Gradescope runs this for every submission, as root, in a fresh container of the image.
# Written by `conformance gradescope` (tcp-conformance {__version__}).
set -uo pipefail
results=/autograder/results/results.json
mkdir -p /autograder/results
rm -rf /tmp/conformance-grades
{VENV}/bin/conformance grade /autograder --only submission \\
    --config /autograder/source/grading.toml --out /tmp/conformance-grades
status=$?
if [ -f /tmp/conformance-grades/submission/results.json ]; then
    cp /tmp/conformance-grades/submission/results.json "$results"
else
    # The grader could not grade (its own failure, not the student's): say so, worth 0.
    why="The autograder could not grade this submission (conformance grade exited with"
    why="$why status $status). Please tell the course staff."
    printf '{{"score": 0, "output": "%s", "tests": []}}\n' "$why" > "$results"
fi
"""


def bundle(
    config_path: Path, out: Path, kit: Path | None = None, extra: list[str] | None = None
) -> list[str]:
    """Write the zip; the names it holds."""
    config = gradeconfig.load(config_path)
    if not config.run:
        raise UsageError(f"{config_path}: no [assignment] run command: the grader needs one")
    if kit is not None and not kit.is_file():
        raise UsageError(f"--kit {kit}: no such file")
    setup = setup_sh(packages_for(config, extra or []), kit.name if kit else None)
    files: dict[str, tuple[bytes, int]] = {
        "setup.sh": (setup.encode(), 0o755),
        "run_autograder": (run_autograder().encode(), 0o755),
        "grading.toml": (config_path.read_bytes(), 0o644),
    }
    if gradeconfig.user_adapter(config.protocol):
        module = config.protocol.partition(":")[0]
        adapter = config_path.parent / f"{module}.py"
        if not adapter.is_file():
            raise UsageError(f"the config's adapter {adapter} is not beside the config")
        files[adapter.name] = (adapter.read_bytes(), 0o644)
    if kit is not None:
        files[kit.name] = (kit.read_bytes(), 0o644)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, (data, mode) in files.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buffer.getvalue())
    return list(files)


def main(ns: argparse.Namespace) -> int:
    try:
        names = bundle(Path(ns.config), Path(ns.out), Path(ns.kit) if ns.kit else None, ns.apt)
    except (UsageError, gradeconfig.ConfigError, OSError) as exc:
        print(f"conformance gradescope: {exc}", file=sys.stderr)
        return USAGE_EXIT
    print(f"{ns.out}: {', '.join(names)}; upload it as the assignment's autograder")
    return 0
