"""backlog3.py - DEFECT: listen() backlog of 3.

Exactly ok_thread.py except for the backlog: the kernel queues at most a handful of completed
connections, so in a burst of connects the SYNs that find the queue full are dropped and those
clients wait for a retransmit (about a second) before they are even connected.
"""

from __future__ import annotations

from _common import accept, make_listener, parse_args, session, start_thread


def main() -> None:
    args = parse_args(__doc__)
    listener = make_listener(args.port, backlog=3)  # DEFECT: instead of BACKLOG (128)
    while True:
        start_thread(session, accept(listener), args.protocol)


if __name__ == "__main__":
    main()
