"""no_reuseaddr.py - thread per connection, correct but for SO_REUSEADDR.

Breaks only EXIT-6 (SHOULD): stopped while a client is connected, its end of that connection
stays bound to the port, and a new instance cannot bind it until the kernel lets it go.
"""

from __future__ import annotations

import socket
import sys

from _common import accept, parse_args, session, start_thread


def main() -> None:
    args = parse_args(__doc__)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # DEFECT: no setsockopt(SO_REUSEADDR) before bind()
    listener.bind(("0.0.0.0", args.port))
    listener.listen(128)
    print(f"listening on 0.0.0.0:{args.port}", file=sys.stderr, flush=True)
    while True:
        start_thread(session, accept(listener), args.protocol)


if __name__ == "__main__":
    main()
