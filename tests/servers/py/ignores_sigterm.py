"""ignores_sigterm.py - MISBEHAVING LAUNCH: a correct server that ignores SIGTERM.

Serves like ok_thread.py, but SIGTERM is set to SIG_IGN, so stopping it takes SIGKILL after
the kit's grace period.
"""

from __future__ import annotations

import signal

from _common import accept, make_listener, parse_args, session, start_thread


def main() -> None:
    args = parse_args(__doc__)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    listener = make_listener(args.port)
    while True:
        start_thread(session, accept(listener), args.protocol)


if __name__ == "__main__":
    main()
