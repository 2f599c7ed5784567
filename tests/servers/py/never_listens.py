"""never_listens.py - MISBEHAVING LAUNCH: runs but never listens.

Prints nothing and sleeps forever without opening a socket; the kit must give up waiting for
the port after its start-up timeout and clean the process up.
"""

from __future__ import annotations

import signal

from _common import parse_args


def main() -> None:
    parse_args(__doc__)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
