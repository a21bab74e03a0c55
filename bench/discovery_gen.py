#!/usr/bin/env python3
"""Configuration for bench/discovery.sh: SERVICES Services, each with an
Ingress on its own host and one EndpointSlice of ENDPOINTS endpoints in a
`kubernetes` cluster (served by tests/clients/kube_api_server.py), plus a
`probe` Service whose slice the benchmark moves between two live
backends.

The slices' endpoints are addresses in 10.0.0.0/8 that nothing listens on:
only the probe host is requested, the others are there to be compiled,
kept in memory and updated.

  discovery_gen.py --out DIR --services 10000 --endpoints 10 \\
      --api 127.0.0.1:PORT --probe 127.0.0.201:PORT
writes DIR/gw.toml, DIR/bench.kubeconfig and DIR/slices.jsonl.
Standard library only.
"""

import argparse
import json
import os


def slice_object(name: str, service: str, port: int, ips: list) -> dict:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": "bench",
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"port": port, "protocol": "TCP"}],
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}, "zone": "zone-a"}
                      for ip in ips],
    }


def fake_ips(i: int, n: int) -> list:
    base = i * n
    return [f"10.{(base + k) >> 16 & 255}.{(base + k) >> 8 & 255}.{(base + k) & 255}" for k in range(n)]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--services", type=int, default=10000)
    p.add_argument("--endpoints", type=int, default=10)
    p.add_argument("--api", required=True)
    p.add_argument("--probe", required=True, help="IP:port of the first probe backend")
    p.add_argument("--listen", default="127.0.0.1:8080")
    p.add_argument("--admin", default="127.0.0.1:9901")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    probe_ip, probe_port = a.probe.rsplit(":", 1)
    with open(os.path.join(a.out, "bench.kubeconfig"), "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
clusters:
- name: bench
  cluster:
    server: http://{a.api}
contexts:
- name: bench
  context: {{cluster: bench, user: bench}}
current-context: bench
users:
- name: bench
  user: {{token: bench}}
""")
    toml = [f"""[gateway]
name = "discovery-bench"
listen = ["{a.listen}"]
ingress_class = "bench"
threads = 1
keepalive_requests = 1000000

[admin]
listen = "{a.admin}"

[log]
access = "off"

[[cluster]]
id = "c1"
zone = "zone-a"
source = "kubernetes"
kubeconfig = "bench.kubeconfig"
api_timeout = "30s"

[[service]]
namespace = "bench"
name = "probe"
port = 80

[[ingress]]
namespace = "bench"
name = "probe"
class = "bench"
rules = [{{ host = "probe.example", paths = [{{ path = "/", type = "Prefix", service = "probe", port = 80 }}] }}]
"""]
    with open(os.path.join(a.out, "slices.jsonl"), "w") as slices:
        slices.write(json.dumps({"plural": "endpointslices",
                                 "object": slice_object("probe-1", "probe", int(probe_port), [probe_ip])}) + "\n")
        for i in range(a.services):
            toml.append(f"""
[[service]]
namespace = "bench"
name = "s{i}"
port = 80

[[ingress]]
namespace = "bench"
name = "s{i}"
class = "bench"
rules = [{{ host = "s{i}.example", paths = [{{ path = "/", type = "Prefix", service = "s{i}", port = 80 }}] }}]
""")
            slices.write(json.dumps({"plural": "endpointslices",
                                     "object": slice_object(f"s{i}-1", f"s{i}", 8080, fake_ips(i, a.endpoints))}) + "\n")
    with open(os.path.join(a.out, "gw.toml"), "w") as f:
        f.write("".join(toml))


if __name__ == "__main__":
    main()
