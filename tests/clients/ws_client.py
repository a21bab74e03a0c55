"""WebSocket client for the end-to-end tests: talks to ws_server.py.

Connects (sending the given Host header, by which the gateway routes),
checks the echo of one text and one binary message, stays idle for a while
without sending pings, checks one more echo (a byte injected into the idle
connection would have made the library fail it), then asks the server to
close with a given code and records the close code and reason it sees.

Usage:
  ws_client.py --url ws://127.0.0.1:PORT/path [--host HOST] [--idle SECONDS]
               [--close-code CODE]

It prints one JSON object and exits 0, whatever happened:
  {"echo_ok": bool, "after_idle_ok": bool, "close_code": int|null,
   "close_reason": str|null, "error": str|null}
"""

import argparse
import json
import socket
import time
from urllib.parse import urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

TIMEOUT = 10.0


def echoed(websocket: ClientConnection, message: str | bytes) -> bool:
    """Sends `message`; whether the next message received is the same."""
    websocket.send(message)
    return websocket.recv(timeout=TIMEOUT) == message


def run(url: str, host: str | None, idle: float, close_code: int) -> dict:
    """Runs the whole exchange; the JSON report as a dict."""
    result = {
        "echo_ok": False,
        "after_idle_ok": False,
        "close_code": None,
        "close_reason": None,
        "error": None,
    }
    target = urlsplit(url)
    # The URI given to the library names the Host header; the socket is
    # connected by hand to the real address.
    uri = target._replace(netloc=host or target.netloc).geturl()
    closing = False
    try:
        sock = socket.create_connection(
            (target.hostname, target.port or 80), timeout=TIMEOUT
        )
        # The library's reader thread must block through the idle time.
        sock.settimeout(None)
        with connect(
            uri, sock=sock, ping_interval=None, compression=None, open_timeout=TIMEOUT
        ) as websocket:
            text_ok = echoed(websocket, "hello")
            result["echo_ok"] = text_ok and echoed(websocket, b"\x00\x01binary\xff")
            time.sleep(idle)
            result["after_idle_ok"] = echoed(websocket, "after idle")
            closing = True
            websocket.send(f"close:{close_code}:bye")
            message = websocket.recv(timeout=TIMEOUT)
            result["error"] = f"expected the server to close, got {message!r}"
    except ConnectionClosed as closed:
        if closed.rcvd is not None:
            result["close_code"] = closed.rcvd.code
            result["close_reason"] = closed.rcvd.reason
        if not closing or closed.rcvd is None:
            result["error"] = f"{type(closed).__name__}: {closed}"
    except Exception as error:  # any failure is reported in the JSON
        result["error"] = f"{type(error).__name__}: {error}"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", required=True, help="ws://127.0.0.1:PORT/path to connect to"
    )
    parser.add_argument("--host", help="Host header to send (default: the URL's)")
    parser.add_argument("--idle", type=float, default=0.0, help="seconds to stay idle")
    parser.add_argument(
        "--close-code", type=int, default=1000, help="close code to ask the server for"
    )
    args = parser.parse_args()
    if urlsplit(args.url).scheme != "ws":
        parser.error("--url must be a ws:// URL")
    print(json.dumps(run(args.url, args.host, args.idle, args.close_code)), flush=True)


if __name__ == "__main__":
    main()
