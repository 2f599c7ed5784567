"""A cgroup per submission: its processes together get `memory_mb` of memory and `nproc` tasks.

Resource limits are per process: RLIMIT_AS lets each process map `address_space_mb`, and a
submission may run `nproc` of them, so six children holding 1 GiB each run side by side and
can push the machine into the OOM killer, which may then kill the grader or another
student's server. A cgroup bounds the total. The grader makes one per submission, the
sandbox wrapper moves itself into it before anything else (so the build, the server, its
children and the isolation's init are all in it and cannot leave: a process needs write
access to a `cgroup.procs` to move, and a root grader runs the submission as a uid that has
none; a grader that is not root shares its uid with the submission, which could), and the
grader reads what the kernel did (an OOM kill, a refused fork), kills whatever is left
(`cgroup.kill`, or SIGKILL to every member until none is left) and removes it.

Two layouts are used, whichever the machine delegates to the grader:

- cgroup v2 (one hierarchy, `memory.max`, `memory.swap.max`, `pids.max`, `cgroup.kill`): the
  grader's own cgroup must offer the memory and pids controllers. To enable them for its
  children, the cgroup must hold no process itself (the "no internal processes" rule), so
  the processes in it (the grader, and whatever shares its cgroup) move to a leaf child,
  `conformance-grader`, first; the root cgroup is exempt.
- cgroup v1 (a hierarchy per controller; hybrid machines where the memory controller is
  not on v2): a child of the grader's cgroup in the memory hierarchy (`memory.limit_in_bytes`,
  `memory.memsw.limit_in_bytes` where swap accounting exists) and one in the pids hierarchy.

Where neither works (not root and nothing delegated, a container without write access to
/sys/fs/cgroup) the grader keeps the per-process limits and says so at start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

MIB = 1024 * 1024
PREFIX = "conformance-"
#: The leaf a v2 cgroup's own processes move to, so its children can have controllers.
LEAF = "conformance-grader"
#: How long `kill` keeps killing members that forked meanwhile (v1, or v2 without cgroup.kill).
KILL_DEADLINE = 10.0


class CgroupError(RuntimeError):
    pass


@dataclass(eq=False)
class Group:
    """One submission's cgroup (one directory on v2, two on v1: memory and pids)."""

    version: int
    dirs: tuple[Path, ...]
    #: The counters at creation, so what is read later is this submission's.
    base: dict[str, int] = field(default_factory=dict)

    def _file(self, name: str) -> Path | None:
        for d in self.dirs:
            if (d / name).exists():
                return d / name
        return None

    def _counter(self, filename: str, key: str) -> int:
        path = self._file(filename)
        if path is None:
            return 0
        with contextlib.suppress(OSError, ValueError):
            for line in path.read_text().splitlines():
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
        return 0

    def counters(self) -> dict[str, int]:
        """oom_kill: processes the OOM killer ended for the memory limit; pids_max: forks
        and clones refused for the task limit."""
        memory_events = "memory.events" if self.version == 2 else "memory.oom_control"
        return {
            "oom_kill": self._counter(memory_events, "oom_kill"),
            "pids_max": self._counter("pids.events", "max"),
        }

    def events(self) -> dict[str, int]:
        """The counters since the group was made."""
        now = self.counters()
        return {k: v - self.base.get(k, 0) for k, v in now.items()}

    def peak_mb(self) -> float | None:
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        path = self._file(name)
        if path is None:
            return None
        with contextlib.suppress(OSError, ValueError):
            return round(int(path.read_text()) / MIB, 1)
        return None

    def members(self) -> set[int]:
        pids: set[int] = set()
        for d in self.dirs:
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(p) for p in (d / "cgroup.procs").read_text().split())
        return pids

    def kill(self) -> None:
        """Every member killed, until none is left (a fork bomb forks while we kill; its
        members are stopped first, and pids.max bounds it anyway)."""
        kill_file = self._file("cgroup.kill")
        deadline = time.monotonic() + KILL_DEADLINE
        while time.monotonic() < deadline:
            members = self.members()
            if not members:
                return
            if kill_file is not None:
                with contextlib.suppress(OSError):
                    kill_file.write_text("1")
            else:
                for sig in (signal.SIGSTOP, signal.SIGKILL):
                    for pid in members:
                        with contextlib.suppress(ProcessLookupError, PermissionError):
                            os.kill(pid, sig)
            time.sleep(0.05)

    def remove(self) -> None:
        """Kill what is left and remove the directories (rmdir waits for the last exit)."""
        self.kill()
        for d in self.dirs:
            for _ in range(100):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


@dataclass(frozen=True)
class Delegation:
    """Where the grader may make cgroups: the parent directory per hierarchy."""

    version: int
    parents: tuple[Path, ...]

    def describe(self) -> str:
        return f"cgroup v{self.version} ({', '.join(map(str, self.parents))})"

    def create(self, token: str, memory_mb: int, nproc: int) -> Group:
        dirs = tuple(parent / f"{PREFIX}{token}" for parent in self.parents)
        group = Group(self.version, dirs)
        try:
            for d in dirs:
                d.mkdir()
            if self.version == 2:
                _write(dirs[0] / "memory.max", memory_mb * MIB)
                if (dirs[0] / "memory.swap.max").exists():
                    _write(dirs[0] / "memory.swap.max", 0)
                _write(dirs[0] / "pids.max", nproc)
            else:
                memory, pids = dirs
                _write(memory / "memory.limit_in_bytes", memory_mb * MIB)
                if (memory / "memory.memsw.limit_in_bytes").exists():
                    _write(memory / "memory.memsw.limit_in_bytes", memory_mb * MIB)
                _write(pids / "pids.max", nproc)
        except OSError as exc:
            group.remove()
            raise CgroupError(f"cannot make the submission's cgroup: {exc}") from exc
        group.base = group.counters()
        return group


def _write(path: Path, value: object) -> None:
    path.write_text(f"{value}\n")


def join(procs_files: list[str]) -> None:
    """Move the calling process into these cgroups (the sandbox wrapper, before exec)."""
    for path in procs_files:
        with open(path, "w") as f:
            f.write("0\n")


# -- finding what is delegated ---------------------------------------------------------------
def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fstype, super options) of every cgroup file system."""
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            fields = left.split()
            rfields = right.split()
            if len(fields) > 4 and len(rfields) >= 3 and rfields[0] in ("cgroup", "cgroup2"):
                found.append((fields[4], rfields[0], set(rfields[2].split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """This process's cgroup per controller ("" for v2's unified hierarchy)."""
    paths = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for c in controllers.split(",") if controllers else [""]:
                paths[c] = path
    return paths


def _probe(parents: tuple[Path, ...]) -> None:
    """Make and remove a child in each parent: proves we may (root, or a delegated subtree)."""
    for parent in parents:
        probe = parent / f"{PREFIX}probe-{os.getpid()}"
        probe.mkdir()
        probe.rmdir()


def _v2(mount: str, own: str) -> Delegation:
    here = Path(mount) / own.lstrip("/")
    controllers = set((here / "cgroup.controllers").read_text().split())
    missing = {"memory", "pids"} - controllers
    if missing:
        raise CgroupError(
            f"the cgroup v2 hierarchy at {mount} does not offer {' and '.join(sorted(missing))} "
            f"to {here} (on a hybrid machine those controllers are on cgroup v1)"
        )
    enabled = set((here / "cgroup.subtree_control").read_text().split())
    if not {"memory", "pids"} <= enabled:
        if own != "/":
            # No internal processes: what runs in this cgroup moves to a leaf of its own.
            leaf = here / LEAF
            leaf.mkdir(exist_ok=True)
            for pid in (here / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    (leaf / "cgroup.procs").write_text(pid)
        (here / "cgroup.subtree_control").write_text("+memory +pids")
    _probe((here,))
    return Delegation(2, (here,))


def _v1(mounts: list[tuple[str, str, set[str]]], own: dict[str, str]) -> Delegation:
    parents = []
    for controller in ("memory", "pids"):
        mount = next((m for m, t, opts in mounts if t == "cgroup" and controller in opts), None)
        if mount is None:
            raise CgroupError(f"no cgroup v1 hierarchy has the {controller} controller")
        parents.append(Path(mount) / own.get(controller, "/").lstrip("/"))
    _probe(tuple(parents))
    return Delegation(1, tuple(parents))


def delegation() -> tuple[Delegation | None, str]:
    """Where this grader may make a cgroup per submission, or None and why not."""
    mounts, own = _mounts(), _own_paths()
    problems = []
    v2 = [m for m, t, _ in mounts if t == "cgroup2"]
    if v2 and "" in own:
        try:
            return _v2(v2[0], own[""]), ""
        except (OSError, CgroupError) as exc:
            problems.append(f"cgroup v2: {exc}")
    if any(t == "cgroup" for _, t, _ in mounts):
        try:
            return _v1(mounts, own), ""
        except (OSError, CgroupError) as exc:
            problems.append(f"cgroup v1: {exc}")
    return None, "; ".join(problems) or "no cgroup file system is mounted"
