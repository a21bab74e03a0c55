"""gRPC client for the end-to-end tests: calls fleetgate.test.Echo.

Talks to grpc_server.py, directly or through the gateway, with raw-bytes
messages (no generated code). Modes:

  unary --count N                       N sequential Unary calls
  stream --count N                      one Stream call expecting N messages
  fail --code C                         one Fail call asking for status C
  load --duration S --concurrency K     K threads calling Unary back to back
                                        for S seconds (at most 100000 calls)

Usage:
  grpc_client.py --target 127.0.0.1:PORT --authority HOST [--tls CA_FILE] MODE ...

It always prints one JSON object and exits 0, whatever the calls did:
  {"ok": n, "failed": n, "served_by": {NAME: n}, "codes": {"OK": n, ...},
   "trailers": {...of the last call}, "messages": [...stream mode],
   "details": "...of the last error, else null"}
"""

import argparse
import json
import threading
import time
from collections import Counter

import grpc

SERVICE = "/fleetgate.test.Echo/"
CALL_TIMEOUT = 5.0
STREAM_TIMEOUT = 30.0
LOAD_MAX_CALLS = 100_000


class Tally:
    """Outcomes of the calls, counted under a lock for the load threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ok = 0
        self.failed = 0
        self.served_by: Counter[str] = Counter()
        self.codes: Counter[str] = Counter()
        self.trailers: dict[str, str] = {}
        self.messages: list[str] = []
        self.details: str | None = None

    def record(self, call: grpc.Call, ok: bool, reply: bytes | None = None) -> None:
        """Counts a finished call; `reply` names the server if no trailer does."""
        trailers = {
            key: value.decode(errors="replace") if isinstance(value, bytes) else value
            for key, value in call.trailing_metadata() or ()
        }
        server = trailers.get("x-served-by")
        if server is None and reply:
            server = reply.decode(errors="replace").partition(":")[0]
        with self.lock:
            self.ok += ok
            self.failed += not ok
            self.codes[call.code().name] += 1
            if server is not None:
                self.served_by[server] += 1
            self.trailers = trailers
            if call.code() != grpc.StatusCode.OK:
                self.details = call.details()

    def report(self) -> dict:
        return {
            "ok": self.ok,
            "failed": self.failed,
            "served_by": dict(self.served_by),
            "codes": dict(self.codes),
            "trailers": self.trailers,
            "messages": self.messages,
            "details": self.details,
        }


def unary_call(channel: grpc.Channel, tally: Tally, payload: bytes) -> bool:
    """One Unary call; it counts as ok when the reply echoes the payload."""
    method = channel.unary_unary(SERVICE + "Unary")
    try:
        reply, call = method.with_call(payload, timeout=CALL_TIMEOUT)
    except grpc.RpcError as error:  # the error is also the grpc.Call
        tally.record(error, False)
        return False
    ok = reply.partition(b":")[2] == payload
    tally.record(call, ok, reply)
    return ok


def run_stream(channel: grpc.Channel, tally: Tally, count: int) -> None:
    """One Stream call; it counts as ok when it ends OK after `count` messages."""
    method = channel.unary_stream(SERVICE + "Stream")
    call = method(str(count).encode(), timeout=STREAM_TIMEOUT)
    try:
        for message in call:
            tally.messages.append(message.decode(errors="replace"))
    except grpc.RpcError:
        pass  # the call's code and details say what went wrong
    ok = call.code() == grpc.StatusCode.OK and len(tally.messages) == count
    first = tally.messages[0].encode() if tally.messages else None
    tally.record(call, ok, first)


def run_fail(channel: grpc.Channel, tally: Tally, code: int) -> None:
    """One Fail call asking for status `code`."""
    method = channel.unary_unary(SERVICE + "Fail")
    try:
        _, call = method.with_call(str(code).encode(), timeout=CALL_TIMEOUT)
    except grpc.RpcError as error:
        tally.record(error, False)
    else:
        tally.record(call, True)


def run_load(
    channel: grpc.Channel, tally: Tally, duration: float, concurrency: int
) -> None:
    """Unary calls from `concurrency` threads until `duration` seconds pass."""
    deadline = time.monotonic() + duration
    numbers = iter(range(LOAD_MAX_CALLS))  # one per call, so the calls are bounded
    numbers_lock = threading.Lock()

    def worker() -> None:
        while time.monotonic() < deadline:
            with numbers_lock:
                n = next(numbers, None)
            if n is None:
                return
            unary_call(channel, tally, f"load-{n}".encode())

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def at_least(minimum: int):
    """An argparse type: an integer no smaller than `minimum`."""

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    return parse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="HOST:PORT to connect to")
    parser.add_argument("--authority", required=True, help=":authority of the calls")
    parser.add_argument("--tls", metavar="CA_FILE", help="use TLS, trusting this CA")
    modes = parser.add_subparsers(dest="mode", required=True)
    for name in ("unary", "stream"):
        modes.add_parser(name).add_argument("--count", type=at_least(0), required=True)
    modes.add_parser("fail").add_argument("--code", type=int, required=True)
    load = modes.add_parser("load")
    load.add_argument("--duration", type=float, required=True)
    load.add_argument("--concurrency", type=at_least(1), required=True)
    args = parser.parse_args()

    options = [
        ("grpc.default_authority", args.authority),
        ("grpc.enable_http_proxy", 0),  # never through a proxy from the environment
    ]
    if args.tls:
        with open(args.tls, "rb") as ca:
            credentials = grpc.ssl_channel_credentials(root_certificates=ca.read())
        options.append(("grpc.ssl_target_name_override", args.authority))
        channel = grpc.secure_channel(args.target, credentials, options=options)
    else:
        channel = grpc.insecure_channel(args.target, options=options)

    tally = Tally()
    with channel:
        match args.mode:
            case "unary":
                for n in range(args.count):
                    unary_call(channel, tally, f"call-{n}".encode())
            case "stream":
                run_stream(channel, tally, args.count)
            case "fail":
                run_fail(channel, tally, args.code)
            case "load":
                run_load(channel, tally, args.duration, args.concurrency)
    print(json.dumps(tally.report()), flush=True)


if __name__ == "__main__":
    main()
