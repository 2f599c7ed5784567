"""ok_fork.py - correct server, one process per connection.

Design: the parent accepts and forks; the child closes the listening socket, serves the session
and leaves with os._exit(0); the parent closes the connected socket. A SIGCHLD handler reaps
every exited child in a loop.
"""

from __future__ import annotations

from _common import accept, fork_session, install_sigchld_reaper, make_listener, parse_args


def main() -> None:
    args = parse_args(__doc__)
    install_sigchld_reaper()
    listener = make_listener(args.port)
    while True:
        fork_session(listener, accept(listener), args.protocol)


if __name__ == "__main__":
    main()
