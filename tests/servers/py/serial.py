"""serial.py - DEFECT: serves one client at a time.

An iterative server: no fork, no threads. It accepts a connection and serves it to the end
before calling accept() again, so one idle client blocks everybody else.
"""

from __future__ import annotations

from _common import accept, make_listener, parse_args, session


def main() -> None:
    args = parse_args(__doc__)
    listener = make_listener(args.port)
    while True:
        session(accept(listener), args.protocol)  # DEFECT: the next accept() waits for this


if __name__ == "__main__":
    main()
