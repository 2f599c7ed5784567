"""child_keeps_listener.py - DEFECT: the child does not close the listening socket.

Fork per connection like ok_fork.py, but the child keeps its copy of the listening socket for
the whole session, so the port stays held by every session process.
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
                # DEFECT: no listener.close() here.
                serve(conn, args.protocol)
                conn.close()
            finally:
                os._exit(0)
        conn.close()


if __name__ == "__main__":
    main()
