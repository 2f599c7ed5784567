"""ok_asyncio.py - correct server, one thread, asyncio streams.

Design: asyncio.start_server() runs one coroutine per connection on a single event loop; each
write is followed by drain(), which waits while the client is not reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

from _common import BACKLOG, ECHO_CHUNK, MSG_MAX, REPLY, is_exit, parse_args


async def serve_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(MSG_MAX):
        writer.write(REPLY)
        await writer.drain()
        if is_exit(data):
            return


async def serve_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(ECHO_CHUNK):
        writer.write(data)
        await writer.drain()


async def main() -> None:
    args = parse_args(__doc__)
    serve_session = serve_echo if args.protocol == "echo" else serve_ok

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await serve_session(reader, writer)
        except OSError:  # reset by the client: the session is over
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    server = await asyncio.start_server(
        session, "0.0.0.0", args.port, backlog=BACKLOG, reuse_address=True
    )
    port = server.sockets[0].getsockname()[1]
    print(f"listening on 0.0.0.0:{port}", file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
