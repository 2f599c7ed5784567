"""Orphans the kit adopts as a subreaper are reaped."""

from __future__ import annotations

import sys

from tests.conftest import ROOT

PY_SERVERS = ROOT / "tests" / "servers" / "py"


def test_an_orphan_we_adopted_is_reaped() -> None:
    """As a subreaper the kit adopts what its servers orphan; once dead those are zombies of
    ours, and stop() must reap them (the usual case, no zombie child, is only looked at)."""
    import os
    import subprocess

    from conformance.harness.polling import wait_until
    from conformance.harness.processes import proc_table
    from conformance.harness.reaper import become_subreaper, reap_adopted

    become_subreaper()
    # The middle process forks and leaves without waiting: its child (a short sleep) is
    # reparented to us, alive or already a zombie. (A Popen there would reap it on exit.)
    middle = (
        "import os\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os.execvp('sleep', ['sleep', '0.05'])\n"
        "print(pid, flush=True)\n"
        "os._exit(0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", middle], capture_output=True, check=True, timeout=5
    )
    orphan = int(out.stdout)
    assert wait_until(lambda: proc_table().get(orphan) == (os.getpid(), "Z"), 5)[0]
    reap_adopted(owned=set())
    assert orphan not in proc_table()
