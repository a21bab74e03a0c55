"""External authentication service for the end-to-end tests.

Answers every request (any method, any path) by its `Authorization`
header, as an oauth2-proxy style service would:

  Bearer good  -> 200, with X-Auth-User: alice, X-Auth-Email: alice@example.com
                  and Set-Cookie: session=refreshed; Path=/
  Bearer slow  -> nothing for 60 s (a service that hangs)
  Bearer evil  -> 403
  Bearer boom  -> 503
  otherwise    -> 401, with WWW-Authenticate: Bearer realm="shop"

Each request it gets is appended, as one JSON object (method, path,
headers with lower-case names), to the file given with --log, so that a
test can check what the gateway sent.

Usage:
  auth_server.py --listen 127.0.0.1:0 --name NAME --log FILE

Once listening it prints one line, `auth-server NAME listening on
127.0.0.1:PORT`, and serves until it is killed. Standard library only.
"""

import argparse
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    log_path = ""

    def answer(self) -> None:
        record = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
        }
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
        token = self.headers.get("Authorization", "")
        headers = []
        if token == "Bearer slow":
            time.sleep(60)
            return
        if token == "Bearer good":
            status = 200
            headers = [
                ("X-Auth-User", "alice"),
                ("X-Auth-Email", "alice@example.com"),
                ("Set-Cookie", "session=refreshed; Path=/"),
            ]
        elif token == "Bearer evil":
            status = 403
        elif token == "Bearer boom":
            status = 503
        else:
            status = 401
            headers = [("WWW-Authenticate", 'Bearer realm="shop"')]
        body = f"auth {status}\n".encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = answer

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT, port 0 for an ephemeral one")
    parser.add_argument("--name", required=True, help="name printed in the readiness line")
    parser.add_argument("--log", required=True, help="file each request is appended to")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    Handler.log_path = args.log
    server = ThreadingHTTPServer((host, int(port)), Handler)
    bound_host, bound_port = server.server_address[:2]
    print(f"auth-server {args.name} listening on {bound_host}:{bound_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
