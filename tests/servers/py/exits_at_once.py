"""exits_at_once.py - MISBEHAVING LAUNCH: fails before listening.

Prints a fatal error to stderr and exits with status 3, as a server does when its start-up
fails; the kit must report the status and the stderr text instead of waiting for a port.
"""

from __future__ import annotations

import sys

from _common import parse_args


def main() -> None:
    parse_args(__doc__)
    print("fatal: cannot open config", file=sys.stderr, flush=True)
    sys.exit(3)


if __name__ == "__main__":
    main()
