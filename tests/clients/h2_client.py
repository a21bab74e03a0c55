"""HTTP/2 client for the end-to-end tests of the gateway's multiplexing.

Built on the h2 library over one raw socket: cleartext with prior knowledge
(h2c) by default, or TLS with ALPN h2 (certificates are not verified). It
sends GET requests as concurrent streams of that one connection: every
stream's HEADERS go out before any response is read, never more streams
open than the server's SETTINGS_MAX_CONCURRENT_STREAMS allows (finished
streams are replaced by new ones). The streams cycle through the --request
pairs. The whole exchange is bounded by --timeout.

Usage:
  h2_client.py --connect 127.0.0.1:PORT [--tls [--sni NAME]] [--streams N]
               --request AUTHORITY PATH [--request ...]
               [--header NAME VALUE ...] [--timeout SECONDS]

It prints one JSON object and exits 0, whatever happened:
  {"alpn": "h2"|null, "connections": 1,
   "responses": [{"authority", "path", "status": int|null, "body": str,
                  "headers": {name: value}, "reset": error-code-name|null}],
   "errors": [str]}
Responses are in stream order. A response's trailers are merged into its
headers; repeated header names have their values joined with ", ".
"""

import argparse
import itertools
import json
import socket
import ssl
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions


def connect(
    address: str, tls: bool, sni: str, timeout: float
) -> tuple[socket.socket, str | None]:
    """The connected socket, and the protocol ALPN chose (None for h2c)."""
    host, _, port = address.rpartition(":")
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    if not tls:
        return sock, None
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    sock = context.wrap_socket(sock, server_hostname=sni)
    return sock, sock.selected_alpn_protocol()


def reset_name(code: int) -> str:
    """The name of an HTTP/2 error code, or its hex value when unknown."""
    try:
        return h2.errors.ErrorCodes(code).name
    except ValueError:
        return f"0x{code:x}"


class Exchange:
    """The streams of one connection, one per entry of `responses`."""

    def __init__(self, scheme: str, extra_headers: list, responses: list[dict]):
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config)
        self.scheme = scheme
        self.extra_headers = extra_headers
        self.waiting = responses[::-1]  # entries not sent yet, the next one last
        self.entries: dict[int, dict] = {}  # stream id -> its entry in responses
        self.open_ids: set[int] = set()
        self.bodies: dict[int, bytearray] = {}
        # No stream before the server's SETTINGS say how many may be open.
        self.settings_seen = False
        self.errors: list[str] = []

    def open_streams(self) -> None:
        """Sends HEADERS for as many waiting entries as the server allows."""
        limit = self.conn.remote_settings.max_concurrent_streams
        while self.waiting and len(self.open_ids) < limit:
            entry = self.waiting.pop()
            stream_id = self.conn.get_next_available_stream_id()
            headers = [
                (":method", "GET"),
                (":scheme", self.scheme),
                (":authority", entry["authority"]),
                (":path", entry["path"]),
                *self.extra_headers,
            ]
            self.conn.send_headers(stream_id, headers, end_stream=True)
            self.entries[stream_id] = entry
            self.open_ids.add(stream_id)

    def handle(self, event: h2.events.Event) -> None:
        stream_id = getattr(event, "stream_id", None)
        if stream_id is not None and stream_id not in self.open_ids:
            return  # a stream this client did not open, or one already over
        match event:
            case h2.events.RemoteSettingsChanged():
                self.settings_seen = True
            case h2.events.ResponseReceived() | h2.events.TrailersReceived():
                entry = self.entries[stream_id]
                for name, value in event.headers:
                    if name == ":status":
                        entry["status"] = int(value)
                    elif name in entry["headers"]:
                        entry["headers"][name] += ", " + value
                    else:
                        entry["headers"][name] = value
            case h2.events.DataReceived():
                self.bodies.setdefault(stream_id, bytearray()).extend(event.data)
                self.conn.acknowledge_received_data(
                    event.flow_controlled_length, stream_id
                )
            case h2.events.StreamEnded():
                self.open_ids.discard(stream_id)
            case h2.events.StreamReset():
                self.entries[stream_id]["reset"] = reset_name(event.error_code)
                self.open_ids.discard(stream_id)
            case h2.events.ConnectionTerminated():
                # h2 takes no frame after a GOAWAY (python-hyper/h2#1181), so
                # the streams still open stay unanswered.
                self.errors.append(
                    f"GOAWAY {reset_name(event.error_code)}"
                    f" last_stream_id={event.last_stream_id}"
                )

    def run(self, sock: socket.socket, deadline: float) -> list[str]:
        """Runs every stream on `sock`; the errors met."""
        self.conn.initiate_connection()
        try:
            while not self.errors:
                if self.settings_seen:
                    self.open_streams()
                sock.sendall(self.conn.data_to_send())
                if self.settings_seen and not self.open_ids and not self.waiting:
                    self.conn.close_connection()
                    sock.sendall(self.conn.data_to_send())
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.errors.append(
                        f"timed out with {len(self.open_ids)} streams open"
                        f" and {len(self.waiting)} not sent"
                    )
                    break
                sock.settimeout(remaining)
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    self.errors.append(
                        "connection closed by the server"
                        f" with {len(self.open_ids)} streams open"
                    )
                    break
                for event in self.conn.receive_data(data):
                    self.handle(event)
        except (OSError, h2.exceptions.H2Error) as error:
            self.errors.append(f"{type(error).__name__}: {error}")
        for stream_id, body in self.bodies.items():
            self.entries[stream_id]["body"] = body.decode(errors="replace")
        return self.errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connect", required=True, help="HOST:PORT to connect to")
    parser.add_argument(
        "--tls", action="store_true", help="TLS with ALPN h2 instead of h2c"
    )
    parser.add_argument(
        "--sni", help="TLS server name (default: the first request's authority host)"
    )
    parser.add_argument(
        "--streams", type=int, default=100, help="number of streams (requests)"
    )
    parser.add_argument(
        "--request",
        nargs=2,
        action="append",
        required=True,
        metavar=("AUTHORITY", "PATH"),
    )
    parser.add_argument(
        "--header", nargs=2, action="append", default=[], metavar=("NAME", "VALUE")
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="bound of the whole exchange"
    )
    args = parser.parse_args()
    if args.streams < 1:
        parser.error("--streams must be at least 1")

    requests = itertools.islice(itertools.cycle(args.request), args.streams)
    responses = [
        {
            "authority": authority,
            "path": path,
            "status": None,
            "body": "",
            "headers": {},
            "reset": None,
        }
        for authority, path in requests
    ]
    report = {"alpn": None, "connections": 1, "responses": responses, "errors": []}
    deadline = time.monotonic() + args.timeout
    sni = args.sni or args.request[0][0].rsplit(":", 1)[0]
    try:
        sock, report["alpn"] = connect(args.connect, args.tls, sni, args.timeout)
        with sock:
            if args.tls and report["alpn"] != "h2":
                report["errors"].append(f"ALPN chose {report['alpn']!r}, not 'h2'")
            else:
                headers = [(name.lower(), value) for name, value in args.header]
                scheme = "https" if args.tls else "http"
                exchange = Exchange(scheme, headers, responses)
                report["errors"] = exchange.run(sock, deadline)
    except OSError as error:
        report["errors"].append(f"{type(error).__name__}: {error}")
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
