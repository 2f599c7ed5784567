"""busy_child.py - DEFECT: a child whose session ended spins forever instead of exiting.

Fork per connection like ok_fork.py, but after the session the child closes the connection
and then busy-loops: the client sees a clean EOF, yet every finished session leaves a process
burning CPU.
"""

from __future__ import annotations

import os

from _common import accept, fork_child, install_sigchld_reaper, make_listener, parse_args, serve


def main() -> None:
    args = parse_args(__doc__)
    install_sigchld_reaper()
    listener = make_listener(args.port)
    while True:
        conn = accept(listener)
        if fork_child() == 0:
            try:
                listener.close()
                serve(conn, args.protocol)
                conn.close()
                while True:  # DEFECT: spins here instead of os._exit(0)
                    pass
            finally:
                os._exit(0)
        conn.close()


if __name__ == "__main__":
    main()
