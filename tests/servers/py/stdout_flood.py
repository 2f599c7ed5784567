"""stdout_flood.py - MISBEHAVING LAUNCH: a correct server that floods stdout first.

Writes about 20 MB to stdout at start-up, then serves like ok_thread.py. A kit that pipes
stdout without reading it leaves this server blocked in write() before it ever listens; one
that sends stdout to a file (or drains the pipe) sees a correct server.
"""

from __future__ import annotations

import sys

from _common import accept, make_listener, parse_args, session, start_thread

FLOOD_BYTES = 20 * 1024 * 1024
LINE = b"debug: " + b"x" * 56 + b"\n"  # 64 bytes


def main() -> None:
    args = parse_args(__doc__)
    for _ in range(FLOOD_BYTES // len(LINE)):
        sys.stdout.buffer.write(LINE)
    sys.stdout.buffer.flush()
    listener = make_listener(args.port)
    while True:
        start_thread(session, accept(listener), args.protocol)


if __name__ == "__main__":
    main()
