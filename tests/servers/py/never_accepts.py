"""never_accepts.py - MISBEHAVING SERVER: listens and never calls accept().

Connections wait in the backlog until it is full; no message is ever answered. Like
never_answers.py, it breaks PROTO-1 and blocks every check that needs an answer.
"""

from __future__ import annotations

import signal

from _common import make_listener, parse_args


def main() -> None:
    args = parse_args(__doc__)
    _listener = make_listener(args.port)  # kept: a collected socket would close
    while True:
        signal.pause()  # DEFECT: never calls accept()


if __name__ == "__main__":
    main()
