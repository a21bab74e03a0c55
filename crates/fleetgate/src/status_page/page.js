// fleetgate status page: reads /status and /traffic every two seconds and
// renders them. Read-only; the admin token, when the API needs one, is
// kept in this tab's session storage.
"use strict";

const REFRESH_MS = 2000;
let previous = null; // the last /traffic reading and when it was taken

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) tr.appendChild(c instanceof Node ? c : el("td", c));
  return tr;
}

function fill(tableId, rows) {
  const body = $(tableId).querySelector("tbody");
  body.replaceChildren(...rows);
}

async function get(path) {
  const headers = {};
  const token = sessionStorage.getItem("fleetgate-token");
  if (token) headers["Authorization"] = "Bearer " + token;
  const r = await fetch(path, { headers, cache: "no-store" });
  if (r.status === 401) throw new Error("unauthorized");
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}

function availability(healthy, total) {
  const cls = total === 0 ? "warn" : healthy === 0 ? "bad" : healthy < total ? "warn" : "ok";
  const td = el("td", healthy + "/" + total, "num " + cls);
  if (total > 0 && healthy === 0) td.textContent += " down";
  return td;
}

function renderStatus(s) {
  $("gateway").textContent = s.gateway;
  const state = $("state");
  state.textContent = s.draining ? s.state + " (draining)" : s.state;
  state.className = "badge " + s.state + (s.draining ? " draining" : "");
  const last = s.last_reload;
  $("summary").textContent =
    "generation " + s.generation + " · " + s.ingresses.served + " Ingress(es) served" +
    (s.message ? " · " + s.message : "") +
    (last ? " · last reload " + (last.ok ? "ok" : "REJECTED") + " at " + last.at : "");

  fill("clusters", s.clusters.map((c) => {
    const tr = row([
      el("td", c.id),
      el("td", c.name),
      el("td", c.zone || "-"),
      availability(c.endpoints.healthy, c.endpoints.total),
      el("td", c.drain && c.drain.phase ? c.drain.phase : "serving",
        c.drain && c.drain.phase && c.drain.phase !== "serving" ? "warn" : ""),
      el("td", c.endpoint_source + (c.connected === false ? " (disconnected)" : ""),
        c.connected === false ? "bad" : ""),
    ]);
    tr.dataset.cluster = c.id;
    tr.dataset.healthy = c.endpoints.healthy;
    return tr;
  }));

  const zones = new Map();
  for (const c of s.clusters) {
    const z = zones.get(c.zone || "-") || { clusters: [], healthy: 0, total: 0 };
    z.clusters.push(c.id);
    z.healthy += c.endpoints.healthy;
    z.total += c.endpoints.total;
    zones.set(c.zone || "-", z);
  }
  fill("zones", [...zones.entries()].map(([zone, z]) =>
    row([el("td", zone), el("td", z.clusters.join(", ")), availability(z.healthy, z.total)])));

  fill("reloads", (s.recent_reloads || []).map((r) => row([
    el("td", r.at),
    el("td", r.ok ? "ok" : "rejected", r.ok ? "ok" : "bad"),
    el("td", r.generation, "num"),
    el("td", r.duration_ms.toFixed(1) + " ms", "num"),
    el("td", r.message),
  ])));
}

function bar(share, cls) {
  const wrap = el("td", null, "num");
  const b = el("span", null, "bar " + (cls || ""));
  b.style.width = Math.round(share * 80) + "px";
  wrap.appendChild(b);
  wrap.appendChild(document.createTextNode((share * 100).toFixed(1) + " %"));
  return wrap;
}

// Requests per (route, target, cluster) between two readings, or since
// the start when there is only one.
function renderTraffic(t, now) {
  const routeOf = new Map();
  for (const target of t.targets) routeOf.set(target.ingress + "\u0000" + target.target, target.route);
  // Per route: requests in the window (live) and since the start.
  const tally = (counters, before) => {
    const routes = new Map();
    for (const target of t.targets) {
      if (!routes.has(target.route)) routes.set(target.route, { main: 0, canary: 0, clusters: new Map() });
    }
    for (const c of counters) {
      const route = routeOf.get(c.ingress + "\u0000" + c.target);
      if (!route) continue;
      const n = c.requests - (before.get([c.ingress, c.service, c.target, c.cluster].join("\u0000")) || 0);
      if (n <= 0) continue;
      const r = routes.get(route);
      r[c.target === "canary" ? "canary" : "main"] += n;
      r.clusters.set(c.cluster, (r.clusters.get(c.cluster) || 0) + n);
    }
    return routes;
  };
  const before = new Map();
  if (previous) for (const c of previous.traffic.counters) {
    before.set([c.ingress, c.service, c.target, c.cluster].join("\u0000"), c.requests);
  }
  const live = tally(t.counters, before);
  const overall = tally(t.counters, new Map());
  const seconds = previous ? (now - previous.at) / 1000 : null;
  $("traffic-note").textContent = seconds
    ? "Shares of the requests of the last " + seconds.toFixed(1) + " s; a route with none in that time shows its shares since the start, in grey."
    : "Shares of every request since the gateway started; live shares from the next refresh.";
  fill("routes", [...overall.keys()].sort().map((route) => {
    const windowed = live.get(route);
    const isLive = seconds !== null && windowed.main + windowed.canary > 0;
    const r = isLive ? windowed : overall.get(route);
    const total = r.main + r.canary;
    const clusters = [...r.clusters.entries()].sort()
      .map(([c, n]) => (c === "-" ? "no endpoint" : c) + " " + (100 * n / total).toFixed(1) + " %")
      .join(", ");
    const rate = seconds ? (windowed.main + windowed.canary) / seconds : 0;
    const tr = row([
      el("td", route),
      el("td", rate.toFixed(1), "num"),
      total ? bar(r.main / total) : el("td", "-"),
      total ? bar(r.canary / total, "canary") : el("td", "-"),
      el("td", total ? clusters : "no requests yet"),
    ]);
    if (!isLive) tr.className = "since-start";
    tr.dataset.route = route;
    return tr;
  }));
  previous = { traffic: t, at: now };
}

async function refresh() {
  try {
    const [status, traffic] = await Promise.all([get("/status"), get("/traffic")]);
    $("auth").hidden = true;
    $("main").hidden = false;
    renderStatus(status);
    renderTraffic(traffic, Date.now());
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
  } catch (e) {
    if (e.message === "unauthorized") {
      $("auth").hidden = false;
      $("main").hidden = true;
      if (sessionStorage.getItem("fleetgate-token")) $("auth-error").textContent = "The token was not accepted.";
    } else {
      $("updated").textContent = "cannot reach the gateway: " + e.message;
    }
  }
}

$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem("fleetgate-token", $("token").value);
  $("token").value = "";
  refresh();
});

refresh();
setInterval(refresh, REFRESH_MS);
