"""ok_fork_exec.py - correct echo server, one process per connection that executes a program.

Design: as ok_fork.py, but the child puts the connection on its standard input and output and
executes `bash -c 'exec cat'`, and cat echoes it (inetd, tcpserver and socat's EXEC work this
way). Not a defect: the kit's EINTR-3 injection also reaches the reads of bash's dynamic
loader (bash loads two libraries), on regular files where a signal never causes EINTR, so the
kit must say it cannot judge EINTR-3 here rather than fail it. Echo profile only.
"""

from __future__ import annotations

import os

from _common import accept, fork_child, install_sigchld_reaper, make_listener, parse_args

HANDLER = ["/bin/bash", "-c", "exec /bin/cat"]


def main() -> None:
    args = parse_args(__doc__)
    if args.protocol != "echo":
        raise SystemExit("ok_fork_exec.py serves the echo profile only: --protocol echo")
    install_sigchld_reaper()
    listener = make_listener(args.port)
    while True:
        conn = accept(listener)
        if fork_child() == 0:
            try:
                listener.close()
                os.dup2(conn.fileno(), 0)
                os.dup2(conn.fileno(), 1)
                conn.close()
                os.execv(HANDLER[0], HANDLER)
            finally:
                os._exit(127)
        conn.close()


if __name__ == "__main__":
    main()
