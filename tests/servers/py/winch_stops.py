"""winch_stops.py - DEFECT: SIGWINCH stops the server.

Exactly ok_thread.py except for a SIGWINCH handler that closes the listener and exits: a signal
whose default action is to do nothing is given a meaning of its own, as Apache httpd's
graceful-stop does. A storm of harmless signals (EINTR-2) ends the server.
"""

from __future__ import annotations

import signal
import sys

from _common import accept, make_listener, parse_args, session, start_thread


def main() -> None:
    args = parse_args(__doc__)
    listener = make_listener(args.port)

    def stop(signum: int, frame: object) -> None:  # DEFECT: SIGWINCH means "stop" here
        listener.close()
        print("SIGWINCH: stopping", file=sys.stderr)
        sys.exit(0)

    signal.signal(signal.SIGWINCH, stop)
    while True:
        start_thread(session, accept(listener), args.protocol)


if __name__ == "__main__":
    main()
