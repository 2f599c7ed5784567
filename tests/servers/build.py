"""Compile the zoo's C, Java and Go servers.

Every ``c/*.c`` file is one server, compiled on its own with ``cc -O1 -g -Wall -pthread``
(``-g``: a failure shows the file and line where the server waits, harness/stacks.py;
``c/common.h`` holds the correct pieces they share). A binary that is newer than its source
and the header is not rebuilt. Every ``java/*.java`` file is one server too, a class of the
same name, compiled with ``javac`` into the output directory (``java -cp OUTDIR NAME PORT``).
Every ``go/*.go`` file is one program, built with ``go build`` (``OUTDIR/NAME PORT``). Also a
command: ``python tests/servers/build.py OUTDIR`` (Java and Go only where javac and go are).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

C_DIR = Path(__file__).resolve().parent / "c"
JAVA_DIR = Path(__file__).resolve().parent / "java"
GO_DIR = Path(__file__).resolve().parent / "go"
GO = "go"
HEADER = C_DIR / "common.h"
CC = "cc"
CFLAGS = ("-O1", "-g", "-Wall", "-pthread")
JAVAC = "javac"
#: Warnings are errors, as for the C servers' warnings shown on stderr: a zoo server is read.
JAVACFLAGS = ("-Xlint:all", "-Werror")


class BuildError(RuntimeError):
    """A server did not compile; the message carries the command and the compiler output."""


def _up_to_date(out: Path, src: Path) -> bool:
    if not out.exists():
        return False
    built = out.stat().st_mtime
    return built >= src.stat().st_mtime and built >= HEADER.stat().st_mtime


def build_c_servers(out_dir: Path) -> dict[str, Path]:
    """Compiles every C server into out_dir; returns {server name: binary path}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    built: dict[str, Path] = {}
    for src in sorted(C_DIR.glob("*.c")):
        out = out_dir / src.stem
        if not _up_to_date(out, src):
            _compile(src, out)
        built[src.stem] = out
    return built


def _compile(src: Path, out: Path) -> None:
    argv = [CC, *CFLAGS, "-o", str(out), str(src)]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise BuildError(f"cannot compile {src.name}: C compiler {CC!r} not found") from exc
    if result.returncode != 0:
        raise BuildError(
            f"compiling {src.name} failed (exit status {result.returncode})\n"
            f"$ {shlex.join(argv)}\n{result.stdout}{result.stderr}"
        )
    if result.stderr:  # warnings: the build still succeeds, but say so
        print(f"{src.name}: compiler warnings:\n{result.stderr}", file=sys.stderr)


def have_javac() -> bool:
    """Whether the Java servers can be built here (Debian: default-jdk-headless)."""
    return shutil.which(JAVAC) is not None


def build_java_servers(out_dir: Path) -> dict[str, Path]:
    """Compiles every Java server into out_dir; returns {class name: class file path}.

    One javac run for all of them (the JVM starts once); skipped when every class file is
    newer than its source.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = sorted(JAVA_DIR.glob("*.java"))
    built = {src.stem: out_dir / f"{src.stem}.class" for src in sources}
    stale = [
        src
        for src in sources
        if not built[src.stem].exists() or built[src.stem].stat().st_mtime < src.stat().st_mtime
    ]
    if stale:
        argv = [JAVAC, *JAVACFLAGS, "-d", str(out_dir), *map(str, sources)]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, check=False)
        except FileNotFoundError as exc:
            raise BuildError(f"cannot compile the Java servers: {JAVAC!r} not found") from exc
        if result.returncode != 0:
            raise BuildError(
                f"compiling the Java servers failed (exit status {result.returncode})\n"
                f"$ {shlex.join(argv)}\n{result.stdout}{result.stderr}"
            )
    return built


def have_go() -> bool:
    """Whether the Go servers can be built here (Debian: golang-go)."""
    return shutil.which(GO) is not None


def build_go_servers(out_dir: Path) -> dict[str, Path]:
    """Builds every Go server into out_dir (its build cache there too); returns {name: binary}.
    A binary newer than its source is not rebuilt."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOCACHE": str(out_dir / ".gocache"), "GO111MODULE": "off"}
    built: dict[str, Path] = {}
    for src in sorted(GO_DIR.glob("*.go")):
        out = out_dir / src.stem
        if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
            argv = [GO, "build", "-o", str(out), str(src)]
            try:
                result = subprocess.run(
                    argv, capture_output=True, text=True, check=False, env=env, timeout=300
                )
            except FileNotFoundError as exc:
                raise BuildError(f"cannot build {src.name}: {GO!r} not found") from exc
            if result.returncode != 0:
                raise BuildError(
                    f"building {src.name} failed (exit status {result.returncode})\n"
                    f"$ {shlex.join(argv)}\n{result.stdout}{result.stderr}"
                )
        built[src.stem] = out
    return built


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tests/servers/build.py OUTDIR", file=sys.stderr)
        return 2
    try:
        built = build_c_servers(Path(argv[0]))
        if have_javac():
            built |= build_java_servers(Path(argv[0]))
        if have_go():
            built |= build_go_servers(Path(argv[0]))
    except BuildError as exc:
        print(exc, file=sys.stderr)
        return 1
    for path in built.values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
