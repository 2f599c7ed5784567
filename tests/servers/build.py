"""Compile the zoo's C servers.

Every ``c/*.c`` file is one server, compiled on its own with ``cc -O1 -Wall -pthread``
(``c/common.h`` holds the correct pieces they share). A binary that is newer than its source
and the header is not rebuilt. Also a command: ``python tests/servers/build.py OUTDIR``.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

C_DIR = Path(__file__).resolve().parent / "c"
HEADER = C_DIR / "common.h"
CC = "cc"
CFLAGS = ("-O1", "-Wall", "-pthread")


class BuildError(RuntimeError):
    """A C server did not compile; the message carries the command and the compiler output."""


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


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tests/servers/build.py OUTDIR", file=sys.stderr)
        return 2
    try:
        built = build_c_servers(Path(argv[0]))
    except BuildError as exc:
        print(exc, file=sys.stderr)
        return 1
    for path in built.values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
