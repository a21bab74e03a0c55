#!/usr/bin/env python3
"""Apply latency of watched endpoint changes, for bench/discovery.sh.

Moves the `probe` Service's EndpointSlice between two live backends
(answering `probe-a` and `probe-b`) through the test API server, and
measures from the moment the API server has accepted the change until a
request through the gateway is answered by the new backend (polling on one
keep-alive connection). Optionally, a storm of changes to the other
Services' slices runs at the same time (--storm-rate per second, from a
thread of its own, each change moving one endpoint of a random Service).

Changes are --gap seconds apart: far enough apart, each is applied on its
own; close together, the coalescing of builds shows.

Prints one JSON object: latencies in milliseconds (p50, p99, max) and the
storm rate achieved. Standard library only.
"""

import argparse
import http.client
import json
import random
import statistics
import threading
import time


def put(conn: http.client.HTTPConnection, obj: dict) -> None:
    body = json.dumps(obj)
    conn.request("PUT", "/_control/objects/endpointslices", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    if r.status != 200:
        raise SystemExit(f"API server answered {r.status}")


def slice_object(name, service, port, ips):
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": "bench", "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4", "ports": [{"port": port, "protocol": "TCP"}],
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}, "zone": "zone-a"} for ip in ips],
    }


def percentile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--api", required=True)
    p.add_argument("--gateway", required=True)
    p.add_argument("--probe-a", required=True)
    p.add_argument("--probe-b", required=True)
    p.add_argument("--services", type=int, default=10000)
    p.add_argument("--endpoints", type=int, default=10)
    p.add_argument("-n", type=int, default=40)
    p.add_argument("--storm-rate", type=float, default=0)
    p.add_argument("--gap", type=float, default=0.05, help="seconds between changes")
    a = p.parse_args()
    api_host, api_port = a.api.rsplit(":", 1)
    gw_host, gw_port = a.gateway.rsplit(":", 1)
    api = http.client.HTTPConnection(api_host, int(api_port), timeout=30)
    gw = http.client.HTTPConnection(gw_host, int(gw_port), timeout=30)
    targets = [("probe-a",) + tuple(a.probe_a.rsplit(":", 1)), ("probe-b",) + tuple(a.probe_b.rsplit(":", 1))]

    stop = threading.Event()
    sent = [0]

    def storm():
        conn = http.client.HTTPConnection(api_host, int(api_port), timeout=30)
        rng = random.Random(7)
        start = time.monotonic()
        while not stop.is_set():
            i = rng.randrange(a.services)
            ips = [f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}" for _ in range(a.endpoints)]
            put(conn, slice_object(f"s{i}-1", f"s{i}", 8080, ips))
            sent[0] += 1
            due = start + sent[0] / a.storm_rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    storm_thread = None
    if a.storm_rate > 0:
        storm_thread = threading.Thread(target=storm, daemon=True)
        storm_thread.start()
        time.sleep(2)
    storm_started = time.monotonic()
    storm_sent_before = sent[0]

    latencies = []
    for i in range(a.n):
        name, ip, port = targets[(i + 1) % 2]
        put(api, slice_object("probe-1", "probe", int(port), [ip]))
        t0 = time.monotonic()
        while True:
            gw.request("GET", "/", headers={"Host": "probe.example"})
            r = gw.getresponse()
            body = r.read().decode()
            if r.status == 200 and body == name:
                break
            if time.monotonic() - t0 > 30:
                raise SystemExit(f"change {i} never served: last answer {r.status} {body!r}")
            time.sleep(0.0005)
        latencies.append((time.monotonic() - t0) * 1000)
        time.sleep(a.gap)
    storm_rate = (sent[0] - storm_sent_before) / (time.monotonic() - storm_started) if storm_thread else 0
    stop.set()
    print(json.dumps({
        "changes": len(latencies),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies), 1),
        "storm_rate": round(storm_rate, 1),
    }))


if __name__ == "__main__":
    main()
