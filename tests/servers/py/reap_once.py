"""reap_once.py - DEFECT: the SIGCHLD handler reaps one child per signal.

Fork per connection like ok_fork.py, but the handler calls os.waitpid() once instead of
looping. Signals do not queue (and Python runs a handler once for any number of pending
deliveries), so when many sessions end together some children stay zombies.
"""

from __future__ import annotations

import contextlib
import os
import signal
from types import FrameType

from _common import accept, fork_session, make_listener, parse_args


def reap_one_child(signum: int, frame: FrameType | None) -> None:
    with contextlib.suppress(ChildProcessError):  # ECHILD: no children at all
        os.waitpid(-1, os.WNOHANG)  # DEFECT: no loop


def main() -> None:
    args = parse_args(__doc__)
    signal.signal(signal.SIGCHLD, reap_one_child)
    listener = make_listener(args.port)
    while True:
        fork_session(listener, accept(listener), args.protocol)


if __name__ == "__main__":
    main()
