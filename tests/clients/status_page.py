#!/usr/bin/env python3
"""Opens fleetgate's status page in a real headless Chromium (driven over
the DevTools protocol), waits until it shows every cluster serving, kills a
backend, and measures how many page refreshes it takes the page to show
the cluster down once /status says so. Saves a screenshot.

Prints one JSON object: what the page showed and the refresh counts.
Exits non-zero with a message on stderr if Chromium cannot be driven.

    status_page.py --admin 127.0.0.1:9901 --cluster cd3007b2 --kill-pid 1234 \
        --screenshot target/test-artifacts/status-page.png [--token T]

With --token, the page must first ask for the token; the script types it
into the page's form, as an operator would.
"""

import argparse
import base64
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

from websockets.sync.client import connect

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
    "--remote-debugging-port=0",
]


class Page:
    """One Chromium tab, over its DevTools websocket."""

    def __init__(self, ws_url):
        self.ws = connect(ws_url, max_size=64 * 1024 * 1024)
        self.ids = itertools.count(1)

    def call(self, method, **params):
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv(timeout=30))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def eval(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")


def start_chromium(profile):
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if not binary:
        sys.exit("no chromium on PATH")
    proc = subprocess.Popen(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 30
    for line in proc.stderr:
        m = re.search(r"DevTools listening on ws://([^/]+)/", line)
        if m:
            return proc, m.group(1)
        if time.time() > deadline:
            break
    proc.kill()
    sys.exit("chromium printed no DevTools address")


def page_target(host_port):
    deadline = time.time() + 10
    while time.time() < deadline:
        with urllib.request.urlopen(f"http://{host_port}/json/list") as r:
            for target in json.load(r):
                if target.get("type") == "page":
                    return target["webSocketDebuggerUrl"]
        time.sleep(0.05)
    sys.exit("no page target")


def cluster_healthy(admin, cluster, token):
    request = urllib.request.Request(f"http://{admin}/status")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request) as r:
        status = json.load(r)
    for c in status["clusters"]:
        if c["id"] == cluster:
            return c["endpoints"]["healthy"]
    return None


def wait(what, check, limit):
    deadline = time.time() + limit
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    sys.exit(f"timed out waiting for {what}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--admin", required=True)
    ap.add_argument("--cluster", required=True)
    ap.add_argument("--kill-pid", type=int, required=True)
    ap.add_argument("--screenshot", required=True)
    ap.add_argument("--token")
    args = ap.parse_args()

    profile = tempfile.mkdtemp(prefix="fleetgate-chromium-")
    proc, host_port = start_chromium(profile)
    try:
        page = Page(page_target(host_port))
        page.call("Page.enable")
        page.call("Runtime.enable")
        page.call("Page.navigate", url=f"http://{args.admin}/")
        asked = None
        if args.token:
            wait("the page to ask for the token",
                 lambda: page.eval("!document.getElementById('auth').hidden"), 20)
            asked = page.eval("document.getElementById('main').hidden")
            page.eval(
                "document.getElementById('token').value = " + json.dumps(args.token) + ";"
                "document.getElementById('token-form').requestSubmit(); true")
        row = f'document.querySelector(\'tr[data-cluster="{args.cluster}"]\')'
        refreshes = "Number(document.body.dataset.refreshes || 0)"
        wait("the page to show the cluster serving",
             lambda: page.eval(f"{row} !== null && {row}.dataset.healthy !== '0'"), 20)
        first = {
            "title": page.eval("document.title"),
            "state": page.eval("document.getElementById('state').textContent"),
            "routes": page.eval("document.querySelectorAll('#routes tbody tr').length"),
            "clusters": page.eval("document.querySelectorAll('#clusters tbody tr').length"),
            "data_hidden_until_token": asked,
            "route_row": page.eval("document.querySelector('#routes tbody tr') && document.querySelector('#routes tbody tr').textContent"),
        }
        os.kill(args.kill_pid, signal.SIGKILL)
        wait("/status to report the cluster down",
             lambda: cluster_healthy(args.admin, args.cluster, args.token) == 0, 20)
        at_status = page.eval(refreshes)
        wait("the page to show the cluster down",
             lambda: page.eval(f"{row}.dataset.healthy === '0'"), 20)
        at_page = page.eval(refreshes)
        down_text = page.eval(f"{row}.textContent")
        shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        os.makedirs(os.path.dirname(os.path.abspath(args.screenshot)), exist_ok=True)
        with open(args.screenshot, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        print(json.dumps({
            **first,
            "refreshes_after_status": at_page - at_status,
            "down_row": down_text,
            "screenshot_bytes": os.path.getsize(args.screenshot),
        }))
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
