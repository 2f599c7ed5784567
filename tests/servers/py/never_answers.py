"""never_answers.py - MISBEHAVING SERVER: accepts every connection and never sends a byte.

Its one defect breaks PROTO-1 (or PROTO-4 with echo); every check that needs an answer is
blocked by that, at once, instead of waiting out its own deadline with a wrong cause.
"""

from __future__ import annotations

from _common import accept, make_listener, parse_args


def main() -> None:
    args = parse_args(__doc__)
    listener = make_listener(args.port)
    held = []
    while True:
        held.append(accept(listener))  # DEFECT: never reads, never replies


if __name__ == "__main__":
    main()
