"""slow_start.py - correct server that takes seconds to start listening.

Design: ok_thread's, after a sleep of START_DELAY seconds (environment; default 7) before the
listening socket is opened, like a JVM application, a Django app or a server that loads its
data first. Nothing is wrong with it: the kit must wait for it when given --start-timeout, and
say that option's name when it is not.
"""

from __future__ import annotations

import os
import time

from _common import accept, make_listener, parse_args, session, start_thread


def main() -> None:
    args = parse_args(__doc__)
    time.sleep(float(os.environ.get("START_DELAY", "7")))
    listener = make_listener(args.port)
    while True:
        start_thread(session, accept(listener), args.protocol)


if __name__ == "__main__":
    main()
