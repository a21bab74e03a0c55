"""A small Kubernetes API server for tests: the list/watch wire protocol.

No kube-apiserver can be installed on the test machines, so this server
speaks the part of the protocol that clients of list/watch depend on,
faithfully, and knows nothing of who the client is:

  GET /api/v1/namespaces/NS/PLURAL                       list (core group)
  GET /apis/GROUP/VERSION/namespaces/NS/PLURAL           list
  GET /apis/GROUP/VERSION/PLURAL                         list, all namespaces
  ... same paths with ?watch=true                        watch
  GET .../PLURAL/NAME                                    one object
  PATCH .../namespaces/NS/PLURAL/NAME/status             the status
      subresource, with a JSON merge patch (RFC 7386,
      `application/merge-patch+json`): only `status` changes; a new
      resourceVersion and a MODIFIED event follow, as on the real server.
      A `metadata.resourceVersion` in the patch is a precondition: 409
      Conflict when the object has moved on

- A list is a JSON `<Kind>List` with `metadata.resourceVersion`, the
  collection's current version; `labelSelector` takes `key`, `!key`,
  `key=value`, `key==value`, `key!=value`, `key in (a,b)` and
  `key notin (a,b)`, comma-separated (all must hold); `fieldSelector`
  takes `path=value`, `path==value` and `path!=value` over dotted paths
  (`type`, `metadata.name`), comma-separated. `limit` is honoured with
  `metadata.continue` tokens.
- A watch answers 200 with a chunked stream of JSON lines, `{"type":
  "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR", "object": ...}`,
  starting after the `resourceVersion` given; with a selector, a change
  that takes an object into the selection is ADDED and one that takes it
  out is DELETED, as the real server sends them. Versions older than the
  history kept (see /_control/compact) get an ERROR event with a `Status`
  of code 410 (`Expired`), as the real server sends, and the stream ends.
  With `allowWatchBookmarks=true`, a BOOKMARK carrying the current version
  is sent every `--bookmark-seconds`. The stream ends after
  `timeoutSeconds`.
- Errors are `Status` objects: 401 without the bearer token given with
  `--token` (when set), 403/401 when /_control/auth says so, 404 for an
  unknown object.

Control endpoints, for the test (not part of the Kubernetes API):

  PUT    /_control/objects/PLURAL   body: an object (apiVersion, kind,
         metadata.namespace, metadata.name): created (ADDED) or replaced
         (MODIFIED); its resourceVersion is set. Without a `status`, a
         replaced object keeps the one it had (as `kubectl apply` of a
         manifest leaves the status subresource alone)
  DELETE /_control/objects/PLURAL/NS/NAME   deleted (DELETED)
  POST   /_control/compact          forget the event history: watches that
         resume from before now get 410 Expired
  POST   /_control/drop             close every open watch stream at once
         (a dropped connection, mid-stream)
  POST   /_control/hang?on=1|0      while on, requests are read and never
         answered (a hung server); open watches stop sending
  POST   /_control/auth?mode=ok|401|403[&plural=P]   for every request,
         or (with plural) only for requests on resource P: 403 there
         is RBAC that does not grant that resource
  GET    /_control/stats            requests seen: lists, watches, by path
  POST   /_control/status?fail=1|0  while on, status patches get 500

Usage: kube_api_server.py --listen 127.0.0.1:0 [--token T]
       [--bookmark-seconds S] [--start-version N] [--preload FILE]
(--preload: JSON lines {"plural": ..., "object": ...}, stored before
serving, for benchmarks with many objects.)
Once listening it prints `kube-api-server listening on 127.0.0.1:PORT`.
Standard library only.
"""

import argparse
import bisect
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Store:
    """Objects by (plural, namespace, name), one resourceVersion counter,
    and the event history watches resume from."""

    def __init__(self, start_version: int):
        self.lock = threading.Condition()
        self.version = start_version
        self.objects = {}  # (plural, ns, name) -> object
        self.events = []  # (version, plural, ns, type, object), in version order
        self.versions = []  # the events' versions, for bisection
        self.oldest = start_version  # events after this are kept
        self.generation = 0  # moves on /_control/drop
        self.hang = False
        self.auth = "ok"
        self.auth_by_plural = {}
        self.stats = {"list": 0, "watch": 0, "get": 0, "patch": 0, "paths": {}}
        self.fail_status = False

    def put(self, plural: str, obj: dict) -> dict:
        meta = obj.setdefault("metadata", {})
        key = (plural, meta.get("namespace", ""), meta["name"])
        with self.lock:
            self.version += 1
            meta["resourceVersion"] = str(self.version)
            before = self.objects.get(key)
            kind = "MODIFIED" if before is not None else "ADDED"
            self.objects[key] = obj
            self.events.append((self.version, plural, key[1], kind, obj, before))
            self.versions.append(self.version)
            self.lock.notify_all()
        return obj

    def delete(self, plural: str, ns: str, name: str) -> bool:
        key = (plural, ns, name)
        with self.lock:
            obj = self.objects.pop(key, None)
            if obj is None:
                return False
            self.version += 1
            obj = json.loads(json.dumps(obj))
            obj["metadata"]["resourceVersion"] = str(self.version)
            self.events.append((self.version, plural, ns, "DELETED", obj, None))
            self.versions.append(self.version)
            self.lock.notify_all()
            return True

    def patch_status(self, plural: str, ns: str, name: str, patch: dict):
        """Merges `patch["status"]` into the object's status (RFC 7386);
        None when there is no such object, "conflict" when the patch's
        resourceVersion is not the object's."""
        with self.lock:
            obj = self.objects.get((plural, ns, name))
            if obj is None:
                return None
            want = (patch.get("metadata") or {}).get("resourceVersion")
            if want is not None and want != obj["metadata"].get("resourceVersion"):
                return "conflict"
            obj = json.loads(json.dumps(obj))
            if "status" in patch:
                merged = merge_patch(obj.get("status"), patch["status"])
                if merged is None:
                    obj.pop("status", None)
                else:
                    obj["status"] = merged
        return self.put(plural, obj)

    def compact(self) -> None:
        with self.lock:
            self.events = []
            self.versions = []
            self.oldest = self.version
            self.lock.notify_all()


def as_seen(event, matches):
    """An event as a watch with a selector sees it: a change that takes an
    object into the selection is ADDED, one that takes it out is DELETED
    (as the real server does); (version, type, object), or None when the
    watch does not see it."""
    version, _, ns, kind, obj, before = event
    now = matches(ns, obj)
    was = before is not None and matches(ns, before)
    if kind == "MODIFIED":
        if now and not was:
            kind = "ADDED"
        elif was and not now:
            kind = "DELETED"
        elif not now:
            return None
    elif not now:
        return None
    return (version, kind, obj)


def merge_patch(target, patch):
    """RFC 7386: objects merge key by key, null deletes, anything else
    replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def parse_field_selector(text: str):
    """A field selector as a predicate over an object."""
    preds = []
    for term in (text or "").split(","):
        term = term.strip()
        if not term:
            continue
        m = re.match(r"^([\w.\-/]+)\s*(!=|==|=)\s*(.*)$", term)
        if not m:
            raise ValueError(f"invalid field selector term {term!r}")
        path, op, value = m.groups()

        def get(obj, path=path):
            for part in path.split("."):
                obj = obj.get(part) if isinstance(obj, dict) else None
            return "" if obj is None else str(obj)
        if op == "!=":
            preds.append(lambda o, get=get, value=value: get(o) != value)
        else:
            preds.append(lambda o, get=get, value=value: get(o) == value)
    return lambda obj: all(p(obj) for p in preds)


def parse_selector(text: str):
    """A label selector as a list of predicates over a labels dict."""
    preds = []
    for term in re.findall(r"[^,(]+(?:\([^)]*\))?", text or ""):
        term = term.strip()
        if not term:
            continue
        m = re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", term)
        if m:
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            if op == "in":
                preds.append(lambda l, k=key, vs=values: l.get(k) in vs)
            else:
                preds.append(lambda l, k=key, vs=values: l.get(k) not in vs)
            continue
        m = re.fullmatch(r"([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)", term)
        if m:
            key, op, value = m.groups()
            if op == "!=":
                preds.append(lambda l, k=key, v=value: l.get(k) != v)
            else:
                preds.append(lambda l, k=key, v=value: l.get(k) == v)
            continue
        if term.startswith("!"):
            preds.append(lambda l, k=term[1:].strip(): k not in l)
        else:
            preds.append(lambda l, k=term: k in l)
    return lambda obj: all(p(obj.get("metadata", {}).get("labels") or {}) for p in preds)


PATH = re.compile(
    r"^/(?:api/(?P<cv>v1)|apis/(?P<group>[^/]+)/(?P<gv>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+)(?P<status>/status)?)?$"
)

KINDS = {"endpointslices": "EndpointSlice", "services": "Service", "ingresses": "Ingress",
         "secrets": "Secret", "endpoints": "Endpoints"}


def status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    store: Store = None
    token = None
    bookmark_seconds = 1.0

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        # Headers and body are written separately: without this, Nagle's
        # algorithm and delayed ACKs hold every second write for ~40 ms.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send_json(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def hung(self) -> bool:
        if not self.store.hang:
            return False
        # Read, never answer: the client's own timeouts must notice.
        while self.store.hang:
            time.sleep(0.05)
        self.close_connection = True
        return True

    def authorized(self, plural) -> bool:
        if self.token is not None:
            if self.headers.get("Authorization") != f"Bearer {self.token}":
                self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
                return False
        mode = self.store.auth_by_plural.get(plural, self.store.auth)
        if mode == "401":
            self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
            return False
        if mode == "403":
            self.send_json(403, status(403, "Forbidden", "forbidden: the client may not list this resource"))
            return False
        return True

    # The control API.
    def control(self, method: str, path: str, query: dict, body: bytes) -> None:
        s = self.store
        parts = path.split("/")[2:]
        if method == "PUT" and parts[0] == "objects" and len(parts) == 2:
            obj = json.loads(body)
            meta = obj.get("metadata", {})
            with s.lock:
                old = s.objects.get((parts[1], meta.get("namespace", ""), meta.get("name")))
            if old is not None and "status" in old and "status" not in obj:
                obj["status"] = old["status"]
            obj = s.put(parts[1], obj)
            return self.send_json(200, obj)
        if method == "DELETE" and parts[0] == "objects" and len(parts) == 4:
            ok = s.delete(parts[1], parts[2], parts[3])
            return self.send_json(200 if ok else 404, {"deleted": ok})
        if method == "POST" and parts == ["compact"]:
            s.compact()
            return self.send_json(200, {"oldest": s.oldest})
        if method == "POST" and parts == ["drop"]:
            with s.lock:
                s.generation += 1
                s.lock.notify_all()
            return self.send_json(200, {"dropped": True})
        if method == "POST" and parts == ["hang"]:
            with s.lock:
                s.hang = query.get("on", ["1"])[0] == "1"
                s.lock.notify_all()
            return self.send_json(200, {"hang": s.hang})
        if method == "POST" and parts == ["status"]:
            s.fail_status = query.get("fail", ["1"])[0] == "1"
            return self.send_json(200, {"fail": s.fail_status})
        if method == "POST" and parts == ["auth"]:
            mode = query.get("mode", ["ok"])[0]
            plural = query.get("plural", [None])[0]
            if plural is None:
                s.auth = mode
            else:
                s.auth_by_plural[plural] = mode
            return self.send_json(200, {"auth": mode, "plural": plural})
        if method == "GET" and parts == ["stats"]:
            return self.send_json(200, s.stats)
        return self.send_json(404, status(404, "NotFound", "no such control endpoint"))

    def handle_any(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path.startswith("/_control/"):
            return self.control(method, url.path, query, self.body())
        if self.hung():
            return
        m = PATH.match(url.path)
        if not self.authorized(m.group("plural") if m else None):
            return
        if m and method == "PATCH" and m.group("status") and m.group("ns"):
            return self.patch_status(m.group("plural"), m.group("ns"), m.group("name"))
        if method != "GET" or not m or m.group("status"):
            return self.send_json(404, status(404, "NotFound", f"the server could not find the requested resource {url.path}"))
        plural, ns, name = m.group("plural"), m.group("ns"), m.group("name")
        api_version = "v1" if m.group("cv") else f"{m.group('group')}/{m.group('gv')}"
        s = self.store
        s.stats["paths"][url.path] = s.stats["paths"].get(url.path, 0) + 1
        if name:
            s.stats["get"] += 1
            obj = s.objects.get((plural, ns or "", name))
            if obj is None:
                return self.send_json(404, status(404, "NotFound", f'{plural} "{name}" not found'))
            return self.send_json(200, obj)
        selector = parse_selector(query.get("labelSelector", [""])[0])
        fields = parse_field_selector(query.get("fieldSelector", [""])[0])
        matches = lambda o_ns, obj: (ns is None or o_ns == ns) and selector(obj) and fields(obj)
        if query.get("watch", ["false"])[0] in ("true", "1"):
            s.stats["watch"] += 1
            return self.watch(plural, api_version, matches, query)
        s.stats["list"] += 1
        with s.lock:
            items = sorted(
                (o for (p, o_ns, _), o in s.objects.items() if p == plural and matches(o_ns, o)),
                key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]),
            )
            version = s.version
        start = int(query.get("continue", ["0"])[0] or 0)
        limit = int(query.get("limit", ["0"])[0] or 0)
        page = items[start:start + limit] if limit else items[start:]
        meta = {"resourceVersion": str(version)}
        if limit and start + limit < len(items):
            meta["continue"] = str(start + limit)
        kind = KINDS.get(plural, plural.capitalize()) + "List"
        self.send_json(200, {"kind": kind, "apiVersion": api_version, "metadata": meta, "items": page})

    def patch_status(self, plural: str, ns: str, name: str) -> None:
        s = self.store
        s.stats["patch"] += 1
        body = self.body()
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/merge-patch+json":
            return self.send_json(415, status(415, "UnsupportedMediaType",
                                              "the body of the request was in an unknown format"))
        if s.fail_status:
            return self.send_json(500, status(500, "InternalError", "status patches fail (test control)"))
        try:
            patch = json.loads(body)
        except ValueError as e:
            return self.send_json(400, status(400, "BadRequest", f"invalid JSON: {e}"))
        obj = s.patch_status(plural, ns, name, patch)
        if obj is None:
            return self.send_json(404, status(404, "NotFound", f'{plural} "{name}" not found'))
        if obj == "conflict":
            return self.send_json(409, status(409, "Conflict", f'Operation cannot be fulfilled on {plural} "{name}": the object has been modified'))
        return self.send_json(200, obj)

    def watch(self, plural: str, api_version: str, matches, query: dict) -> None:
        s = self.store
        since = int(query.get("resourceVersion", ["0"])[0] or 0)
        timeout = float(query.get("timeoutSeconds", ["1800"])[0])
        bookmarks = query.get("allowWatchBookmarks", ["false"])[0] == "true"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def chunk(event: dict) -> None:
            data = (json.dumps(event) + "\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        deadline = time.monotonic() + timeout
        next_bookmark = time.monotonic() + self.bookmark_seconds
        with s.lock:
            generation = s.generation
            expired = bool(since) and since < s.oldest
            oldest = s.oldest
        try:
            if expired:
                chunk({"type": "ERROR", "object": status(
                    410, "Expired", f"too old resource version: {since} ({oldest})")})
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
                return
            sent = since
            while True:
                now = time.monotonic()
                if now >= deadline:
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                    return
                bookmark_due = bookmarks and now >= next_bookmark
                with s.lock:
                    dropped = s.generation != generation
                    hang = s.hang
                    # Events are in version order: start after `sent`.
                    start = bisect.bisect_right(s.versions, sent)
                    pending = [] if (dropped or hang) else [
                        seen for seen in (as_seen(e, matches) for e in s.events[start:]
                                          if e[1] == plural)
                        if seen is not None]
                    version = s.version
                    if not dropped and not pending and not (bookmark_due and not hang):
                        s.lock.wait(max(0.0, min(deadline, next_bookmark) - now))
                        continue
                if dropped:
                    # Cut the connection mid-stream, without the final chunk.
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                for (v, kind, obj) in pending:
                    chunk({"type": kind, "object": obj})
                    sent = v
                if not pending and bookmark_due:
                    # Nothing is pending at `version`: the client may resume there.
                    chunk({"type": "BOOKMARK", "object": {
                        "kind": KINDS.get(plural, plural), "apiVersion": api_version,
                        "metadata": {"resourceVersion": str(version)}}})
                    sent = max(sent, version)
                    next_bookmark = now + self.bookmark_seconds
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
            return

    def do_GET(self):
        self.handle_any("GET")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_POST(self):
        self.handle_any("POST")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def do_PATCH(self):
        self.handle_any("PATCH")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--name", default="kube-api")
    p.add_argument("--token")
    p.add_argument("--bookmark-seconds", type=float, default=1.0)
    p.add_argument("--start-version", type=int, default=1000)
    p.add_argument("--preload", help="JSON lines {\"plural\": ..., \"object\": ...} stored before serving")
    args = p.parse_args()
    host, port = args.listen.rsplit(":", 1)
    Handler.store = Store(args.start_version)
    if args.preload:
        with open(args.preload, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    entry = json.loads(line)
                    Handler.store.put(entry["plural"], entry["object"])
        Handler.store.compact()
    Handler.token = args.token
    Handler.bookmark_seconds = args.bookmark_seconds
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    print(f"kube-api-server {args.name} listening on {host}:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
