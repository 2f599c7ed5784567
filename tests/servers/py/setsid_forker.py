"""setsid_forker.py - MISBEHAVING LAUNCH: a correct server that scatters daemons.

At start-up it forks CHILDREN children that each call os.setsid() (leaving the server's process
group and session) and sleep forever, then serves like ok_thread.py. Killing the server's
process group does not reach them; the kit must find them some other way (for instance as
descendants recorded before the kill) and clean them up.
"""

from __future__ import annotations

import os
import signal

from _common import accept, make_listener, parse_args, session, start_thread

CHILDREN = 100


def scatter() -> None:
    for _ in range(CHILDREN):
        if os.fork() == 0:
            try:
                os.setsid()
                while True:
                    signal.pause()
            finally:
                os._exit(0)


def main() -> None:
    args = parse_args(__doc__)
    scatter()
    listener = make_listener(args.port)
    while True:
        start_thread(session, accept(listener), args.protocol)


if __name__ == "__main__":
    main()
