"""`conformance gradescope`: the autograder zip (setup.sh, run_autograder, the config).

These tests read the zip; `.ci/gradescope_proof.sh` runs it the way Gradescope does (a fresh
Debian root file system, setup.sh, run_autograder for every student of the sample class,
the scores against `conformance grade`): minutes and root, so not in the test suite.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import zipfile
from pathlib import Path

from conformance import __version__
from conformance.grade import config as gradeconfig
from conformance.grade import gradescope
from tests.conftest import ROOT, kit

CLASS = ROOT / "examples" / "class"


def test_the_zip_holds_setup_run_autograder_and_the_config(tmp_path: Path) -> None:
    result = kit("gradescope", str(CLASS / "grading.toml"), "-o", str(tmp_path / "a.zip"))
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        assert sorted(zf.namelist()) == ["grading.toml", "run_autograder", "setup.sh"]
        modes = {i.filename: stat.S_IMODE(i.external_attr >> 16) for i in zf.infolist()}
        setup = zf.read("setup.sh").decode()
        run = zf.read("run_autograder").decode()
        assert zf.read("grading.toml") == (CLASS / "grading.toml").read_bytes()
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755
    # The kit at this exact version, checked; what the config's `make` build needs; strace.
    assert f"pip install --quiet tcp-conformance=={__version__}" in setup
    assert f'= "conformance {__version__}"' in setup
    assert "build-essential" in setup and "strace" in setup
    assert "conformance grade /autograder --only submission" in run
    assert "--config /autograder/source/grading.toml" in run
    assert 'cp /tmp/conformance-grades/submission/results.json "$results"' in run
    for script in (setup, run):
        subprocess.run(["bash", "-n"], input=script, text=True, check=True)


def test_a_local_kit_goes_in_the_zip_and_setup_installs_it(tmp_path: Path) -> None:
    wheel = tmp_path / "tcp_conformance-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"not really a wheel")
    names = gradescope.bundle(CLASS / "grading.toml", tmp_path / "a.zip", wheel, ["libssl-dev"])
    assert wheel.name in names
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        setup = zf.read("setup.sh").decode()
    assert f"pip install --quiet /autograder/source/{wheel.name}" in setup
    assert "libssl-dev" in setup


def test_the_build_command_names_its_packages() -> None:
    def packages(build: str) -> list[str]:
        config = gradeconfig.with_run(gradeconfig.DEFAULT, build=build, run="./server {port}")
        return gradescope.packages_for(config, [])[len(gradescope.BASE_PACKAGES) :]

    assert packages("make") == ["build-essential"]
    assert packages("cargo build --release") == ["cargo"]
    assert packages("go build -o server .") == ["golang-go"]
    assert packages("javac Server.java") == ["default-jdk-headless"]
    assert packages("true") == []


def test_run_autograder_writes_a_zero_when_the_grader_cannot_run(tmp_path: Path) -> None:
    """Never no results.json: Gradescope would show the student an error they cannot read."""
    script = gradescope.run_autograder().replace("/autograder", str(tmp_path / "ag"))
    script = script.replace(gradescope.VENV + "/bin/conformance", "false")
    script = script.replace("/tmp/conformance-grades", str(tmp_path / "grades"))
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    doc = json.loads((tmp_path / "ag" / "results" / "results.json").read_text())
    assert doc["score"] == 0 and doc["tests"] == []
    assert "exited with status 1" in doc["output"] and "course staff" in doc["output"]


def test_a_config_without_a_run_command_is_refused(tmp_path: Path) -> None:
    (tmp_path / "g.toml").write_text('[assignment]\nbuild = "make"\n')
    result = kit("gradescope", str(tmp_path / "g.toml"), "-o", str(tmp_path / "a.zip"))
    assert result.returncode == 2 and "no [assignment] run command" in result.stderr
    assert not os.path.exists(tmp_path / "a.zip")
