"""ok_thread.py - correct server, one thread per connection.

Design: the main thread accepts and starts a daemon thread per connection; the thread serves
the session, closes its socket and returns.
"""

from __future__ import annotations

from _common import accept, make_listener, parse_args, session, start_thread


def main() -> None:
    args = parse_args(__doc__)
    listener = make_listener(args.port)
    while True:
        start_thread(session, accept(listener), args.protocol)


if __name__ == "__main__":
    main()
