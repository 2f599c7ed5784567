"""no_reap.py - DEFECT: exited children are never reaped.

Fork per connection like ok_fork.py, but there is no SIGCHLD handler and no os.waitpid()
anywhere, so every finished session leaves a zombie process.
"""

from __future__ import annotations

from _common import accept, fork_session, make_listener, parse_args


def main() -> None:
    args = parse_args(__doc__)
    # DEFECT: no install_sigchld_reaper() here.
    listener = make_listener(args.port)
    while True:
        fork_session(listener, accept(listener), args.protocol)


if __name__ == "__main__":
    main()
