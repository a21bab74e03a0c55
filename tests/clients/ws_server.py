"""WebSocket backend for the end-to-end tests: an echo server.

Echoes every text and binary message back unchanged, except the text
`close:CODE:REASON`, on which it closes the connection with that close code
and reason. It sends no pings of its own, so an idle connection carries no
bytes at all.

Usage:
  ws_server.py --listen 127.0.0.1:0 --name NAME

Once listening it prints one line, `ws-server NAME listening on
127.0.0.1:PORT`, and serves until it is killed.
"""

import argparse
import asyncio

from websockets.asyncio.server import ServerConnection, serve


async def echo(websocket: ServerConnection) -> None:
    async for message in websocket:
        if isinstance(message, str) and message.startswith("close:"):
            code, _, reason = message.removeprefix("close:").partition(":")
            await websocket.close(int(code), reason)
            return
        await websocket.send(message)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--listen", required=True, help="HOST:PORT, port 0 for an ephemeral one"
    )
    parser.add_argument(
        "--name", required=True, help="name printed in the readiness line"
    )
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")

    async with serve(echo, host, int(port), ping_interval=None) as server:
        bound_host, bound_port = server.sockets[0].getsockname()[:2]
        print(
            f"ws-server {args.name} listening on {bound_host}:{bound_port}", flush=True
        )
        await asyncio.get_running_loop().create_future()  # serve until killed


if __name__ == "__main__":
    asyncio.run(main())
