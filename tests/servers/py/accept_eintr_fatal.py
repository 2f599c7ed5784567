"""accept_eintr_fatal.py - DEFECT: an accept() interrupted by SIGCHLD kills the server.

Fork per connection like ok_fork.py, with a correct reaping loop; but an interrupted accept()
is treated as fatal. Python retries EINTR by itself (PEP 475), so to behave like the C server
whose handler lacks SA_RESTART, the handler raises InterruptedError after reaping: it surfaces
from accept() (or wherever the main loop is), and the loop exits with status 1.
"""

from __future__ import annotations

import errno
import signal
import sys
from types import FrameType

from _common import fork_session, make_listener, parse_args, reap_children


def reap_then_interrupt(signum: int, frame: FrameType | None) -> None:
    reap_children(signum, frame)
    raise InterruptedError(errno.EINTR, "accept interrupted")  # what C's accept() returns


def main() -> None:
    args = parse_args(__doc__)
    signal.signal(signal.SIGCHLD, reap_then_interrupt)
    listener = make_listener(args.port)
    try:
        while True:
            conn, _ = listener.accept()
            fork_session(listener, conn, args.protocol)
    except OSError as exc:  # DEFECT: EINTR is not retried
        print(f"accept: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
