"""gRPC backend for the end-to-end tests: service fleetgate.test.Echo.

Built on grpcio's generic handlers with raw-bytes messages, so it needs no
protoc and no generated code. Methods:

  Unary  (unary-unary)  replies NAME:<request bytes>
  Stream (unary-stream) request is an ASCII integer N; replies with the N
                        messages NAME:0 .. NAME:N-1
  Fail   (unary-unary)  request is an ASCII status code; aborts with that
                        code and the details "failed on purpose"

Every call gets the trailing metadata x-served-by: NAME.

Usage:
  grpc_server.py --listen 127.0.0.1:0 --name NAME [--tls CERT KEY]

Once listening it prints one line, `grpc-server NAME listening on
127.0.0.1:PORT`, and serves until it is killed.
"""

import argparse
from concurrent import futures

import grpc

SERVICE = "fleetgate.test.Echo"
CODES = {code.value[0]: code for code in grpc.StatusCode}


def make_handler(name: str) -> grpc.GenericRpcHandler:
    """The Echo service answering as `name`."""
    trailers = (("x-served-by", name),)

    def unary(request: bytes, context: grpc.ServicerContext) -> bytes:
        context.set_trailing_metadata(trailers)
        return name.encode() + b":" + request

    def stream(request: bytes, context: grpc.ServicerContext):
        context.set_trailing_metadata(trailers)
        try:
            count = int(request)
        except ValueError:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "request must be an integer"
            )
        for i in range(count):
            yield f"{name}:{i}".encode()

    def fail(request: bytes, context: grpc.ServicerContext) -> bytes:
        context.set_trailing_metadata(trailers)
        try:
            code = CODES[int(request)]
        except (ValueError, KeyError):
            code = None
        if code in (None, grpc.StatusCode.OK):
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "request must be a non-OK status code"
            )
        context.abort(code, "failed on purpose")

    # No (de)serializers: the handlers see and return raw bytes.
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Stream": grpc.unary_stream_rpc_method_handler(stream),
            "Fail": grpc.unary_unary_rpc_method_handler(fail),
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--listen", required=True, help="HOST:PORT, port 0 for an ephemeral one"
    )
    parser.add_argument(
        "--name", required=True, help="name put in replies and x-served-by"
    )
    parser.add_argument(
        "--tls", nargs=2, metavar=("CERT", "KEY"), help="serve TLS with this PEM pair"
    )
    args = parser.parse_args()
    host = args.listen.rpartition(":")[0]

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=32),
        handlers=[make_handler(args.name)],
        # Two servers on port 0 must never share a port.
        options=[("grpc.so_reuseport", 0)],
    )
    if args.tls:
        cert_path, key_path = args.tls
        with open(cert_path, "rb") as cert, open(key_path, "rb") as key:
            credentials = grpc.ssl_server_credentials([(key.read(), cert.read())])
        port = server.add_secure_port(args.listen, credentials)
    else:
        port = server.add_insecure_port(args.listen)
    server.start()
    print(f"grpc-server {args.name} listening on {host}:{port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
