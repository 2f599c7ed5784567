"""sigpipe_eof.py - DEFECT: the end of the stream is ignored and SIGPIPE is left fatal.

Thread per connection like ok_thread.py, but the ok session loop never looks at what recv()
returned: at EOF (b"") or after a reset it still replies OK!!! and reads again, so only the
exit message ends a session. SIGPIPE is put back to its default action (Python ignores it
otherwise), so the first write to the departed peer kills the whole server, as it would a C
server. (In the echo profile the loop is the correct one; only SIGPIPE is fatal there.)
"""

from __future__ import annotations

import contextlib
import signal
import socket

from _common import (
    MSG_MAX,
    REPLY,
    accept,
    is_exit,
    make_listener,
    parse_args,
    serve_echo,
    start_thread,
)


def serve_ok_ignoring_eof(conn: socket.socket) -> None:
    while True:  # SPINS here at EOF, replying to b"" (the line a stack names)
        # DEFECT: no "if not data: return", and errors pass for an empty message
        try:
            data = conn.recv(MSG_MAX)
        except OSError:
            data = b""
        with contextlib.suppress(OSError):
            conn.sendall(REPLY)
        if is_exit(data):
            return


def session(conn: socket.socket, protocol: str) -> None:
    with conn:
        if protocol == "echo":
            serve_echo(conn)
        else:
            serve_ok_ignoring_eof(conn)


def main() -> None:
    args = parse_args(__doc__)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # DEFECT: a C server that never ignored it
    listener = make_listener(args.port)
    while True:
        start_thread(session, accept(listener), args.protocol)


if __name__ == "__main__":
    main()
