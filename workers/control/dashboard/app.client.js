// The dashboard's script: fills the page named by #app's data-page from the control API's
// read routes (the session cookie is the credential), refreshing every REFRESH_MS.
// Plain browser JavaScript, no build step; served from the control worker's bundle.
"use strict";
(function () {
  const REFRESH_MS = 2000;
  const app = document.getElementById("app");
  if (!app) return;
  const pageName = app.dataset.page;
  const csrf = app.dataset.csrf || "";

  // ---- helpers ---------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("data-")) node.setAttribute(k, String(v));
      else if (k === "text") node.textContent = String(v);
      else node.setAttribute(k, String(v));
    }
    for (const c of children) if (c !== undefined && c !== null) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined) node.setAttribute(k, String(v));
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }
  async function api(path, init) {
    const response = await fetch(path, Object.assign({ credentials: "same-origin", headers: { accept: "application/json" } }, init || {}));
    if (response.status === 401) {
      window.location.assign("/dashboard/login");
      throw new Error("logged out");
    }
    const text = await response.text();
    if (!response.ok) {
      let message = response.status + "";
      try {
        message = JSON.parse(text).error.message;
      } catch (e) {}
      throw new Error(message);
    }
    return response.headers.get("content-type") && response.headers.get("content-type").includes("json") ? JSON.parse(text) : text;
  }
  const pct = (r) => (r === null || r === undefined ? "-" : (r * 100).toFixed(2) + "%");
  const ms = (v) => (v === null || v === undefined ? "-" : v < 10 ? v.toFixed(1) + " ms" : Math.round(v) + " ms");
  const rps = (v) => (v === null || v === undefined ? "-" : v.toFixed(2));
  const health = (r) => (r === null || r === undefined ? "" : r >= 0.99 ? "good" : r >= 0.95 ? "warn" : "bad");
  /** `<service>` of a workload identity (spiffe://td/worker/<s> or .../ns/<ns>/sa/<s>). */
  function serviceOfId(id) {
    const m = /^spiffe:\/\/[^/]+\/(?:worker\/([^/]+)|ns\/[^/]+\/sa\/([^/]+))$/.exec(id || "");
    return m ? m[1] || m[2] : id || "(unauthenticated)";
  }
  function parseMetrics(text, name) {
    const rows = [];
    for (const line of text.split("\n")) {
      if (!line.startsWith(name + "{")) continue;
      const close = line.lastIndexOf("}");
      const labels = {};
      for (const m of line.slice(name.length + 1, close).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]] = m[2];
      rows.push({ labels, value: Number(line.slice(close + 1).trim()) });
    }
    return rows;
  }
  function stamp() {
    let node = document.getElementById("updated");
    if (!node) {
      node = el("p", { id: "updated", class: "muted" });
      app.append(node);
    }
    node.textContent = "Updated " + new Date().toLocaleTimeString() + ", every " + REFRESH_MS / 1000 + " s";
  }
  function replace(id, node) {
    const old = document.getElementById(id);
    node.id = id;
    if (old) old.replaceWith(node);
    else app.append(node);
  }
  function problem(error) {
    replace("problem", el("p", { class: "error", role: "alert", text: "Could not refresh: " + error.message }));
  }
  function clearProblem() {
    const node = document.getElementById("problem");
    if (node) node.remove();
  }
  function every(fn) {
    const loop = async () => {
      try {
        await fn();
        clearProblem();
      } catch (error) {
        if (error.message !== "logged out") problem(error);
      }
      setTimeout(loop, REFRESH_MS);
    };
    loop();
  }
  function dropLoading() {
    const l = app.querySelector(".loading");
    if (l) l.remove();
  }

  /** One row per service and direction, summed over its routes (latency: its busiest route's). */
  function byService(stats) {
    const rows = new Map();
    for (const r of stats.routes) {
      const key = r.dst_service + " " + r.direction;
      let row = rows.get(key);
      if (!row) {
        row = { service: r.dst_service, direction: r.direction, requests: 0, successes: 0, rps: 0, latencyMs: r.latencyMs, top: 0 };
        rows.set(key, row);
      }
      row.requests += r.requests;
      row.successes += r.successes;
      row.rps += r.rps;
      if (r.requests > row.top) {
        row.top = r.requests;
        row.latencyMs = r.latencyMs;
      }
    }
    return [...rows.values()].sort((a, b) => (a.service + a.direction < b.service + b.direction ? -1 : 1));
  }

  function statTable(rows, idle, linkServices) {
    const head = el("tr", {}, ...[linkServices ? "Service" : "Route", "Direction", "Requests", "Success", "RPS", "P50", "P95", "P99"].map((h) => el("th", { text: h })));
    const body = el("tbody");
    for (const r of rows) {
      const rate = r.requests ? r.successes / r.requests : null;
      const name = linkServices ? el("a", { href: "/dashboard/services/" + encodeURIComponent(r.service), text: r.service }) : r.route === "" ? "[default]" : r.route;
      body.append(
        el(
          "tr",
          { "data-service": r.service, "data-direction": r.direction, "data-requests": r.requests, "data-route": r.route },
          el("td", {}, name),
          el("td", { text: r.direction }),
          el("td", { class: "num requests", text: r.requests }),
          el("td", { class: "num " + health(rate), text: pct(rate) }),
          el("td", { class: "num", text: rps(r.rps) }),
          el("td", { class: "num", text: ms(r.latencyMs && r.latencyMs.p50) }),
          el("td", { class: "num", text: ms(r.latencyMs && r.latencyMs.p95) }),
          el("td", { class: "num", text: ms(r.latencyMs && r.latencyMs.p99) }),
        ),
      );
    }
    for (const name of idle) body.append(el("tr", { "data-service": name, "data-requests": 0 }, el("td", {}, el("a", { href: "/dashboard/services/" + encodeURIComponent(name), text: name })), el("td", { text: "-" }), el("td", { class: "num requests", text: "0" }), ...[1, 2, 3, 4, 5].map(() => el("td", { class: "num", text: "-" }))));
    return el("table", { class: "stats" }, el("thead", {}, head), body);
  }

  // ---- pages -----------------------------------------------------------------------------
  const pages = {};

  pages.overview = () => {
    app.append(el("p", { class: "muted", text: "Golden metrics of every service over the last minute, as routers and sidecars report them (the same figures as weft stat)." }));
    every(async () => {
      const [stats, snapshot] = await Promise.all([api("/v1/stats"), api("/v1/snapshot")]);
      dropLoading();
      const rows = byService(stats);
      const active = new Set(rows.map((r) => r.service));
      const idle = snapshot.services.map((s) => s.name).filter((n) => !active.has(n));
      replace("overview", statTable(rows, idle, true));
      stamp();
    });
  };

  function layoutGraph(names, edges) {
    const out = new Map(names.map((n) => [n, []]));
    const indeg = new Map(names.map((n) => [n, 0]));
    for (const e of edges) {
      if (e.from === e.to) continue;
      out.get(e.from).push(e.to);
      indeg.set(e.to, indeg.get(e.to) + 1);
    }
    const depth = new Map();
    const roots = names.filter((n) => indeg.get(n) === 0);
    const queue = (roots.length ? roots : names.slice(0, 1)).map((n) => [n, 0]);
    while (queue.length) {
      const [n, d] = queue.shift();
      if (depth.has(n) && depth.get(n) >= d) continue;
      if (d > names.length) continue;
      depth.set(n, d);
      for (const m of out.get(n)) queue.push([m, d + 1]);
    }
    for (const n of names) if (!depth.has(n)) depth.set(n, 0);
    const columns = new Map();
    const pos = new Map();
    for (const n of names) {
      const d = depth.get(n);
      const row = columns.get(d) || 0;
      columns.set(d, row + 1);
      pos.set(n, { x: 90 + d * 240, y: 60 + row * 110 });
    }
    return pos;
  }

  pages.topology = () => {
    app.append(el("p", { class: "muted", text: "Who calls whom over the last minute: an edge from each caller's verified identity to the service it called, with its rate and success." }));
    every(async () => {
      const [topology, snapshot] = await Promise.all([api("/v1/topology"), api("/v1/snapshot")]);
      dropLoading();
      const edges = topology.edges.map((e) => Object.assign({ from: serviceOfId(e.src), to: e.dst }, e));
      const names = [...new Set([...snapshot.services.map((s) => s.name), ...edges.map((e) => e.from), ...edges.map((e) => e.to)])].sort();
      const pos = layoutGraph(names, edges);
      const width = Math.max(480, ...[...pos.values()].map((p) => p.x + 120));
      const height = Math.max(200, ...[...pos.values()].map((p) => p.y + 60));
      const graph = svg("svg", { viewBox: "0 0 " + width + " " + height, width, height, class: "topology", role: "img", "aria-label": "service topology" });
      graph.append(svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 8, markerHeight: 8, orient: "auto-start-reverse" }, svg("path", { d: "M 0 0 L 10 5 L 0 10 z" }))));
      for (const e of edges) {
        const a = pos.get(e.from);
        const b = pos.get(e.to);
        if (!a || !b) continue;
        const rate = e.requests ? (e.requests - e.failures) / e.requests : null;
        const g = svg("g", { class: "edge " + health(rate) + (e.failures ? " failing" : ""), "data-src": e.from, "data-dst": e.to, "data-requests": e.requests, "data-failures": e.failures });
        const x1 = a.x + 70, y1 = a.y, x2 = b.x - 70, y2 = b.y;
        g.append(svg("line", { x1, y1, x2, y2, "marker-end": "url(#arrow)" }));
        g.append(svg("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 8, "text-anchor": "middle" }, rps(e.rps) + "/s · " + pct(rate)));
        graph.append(g);
      }
      for (const n of names) {
        const p = pos.get(n);
        const link = svg("a", { href: "/dashboard/services/" + encodeURIComponent(n), class: "node", "data-service": n });
        link.append(svg("rect", { x: p.x - 70, y: p.y - 22, width: 140, height: 44, rx: 8 }), svg("text", { x: p.x, y: p.y + 5, "text-anchor": "middle" }, n));
        graph.append(link);
      }
      const table = el("table", { class: "stats" }, el("thead", {}, el("tr", {}, ...["From", "To", "Requests", "Failures", "Success", "RPS"].map((h) => el("th", { text: h })))));
      const body = el("tbody");
      for (const e of edges) {
        body.append(el("tr", { "data-src": e.from, "data-dst": e.to, "data-failures": e.failures }, el("td", { text: e.from }), el("td", { text: e.to }), el("td", { class: "num", text: e.requests }), el("td", { class: "num", text: e.failures }), el("td", { class: "num " + health(e.successRate), text: pct(e.successRate) }), el("td", { class: "num", text: rps(e.rps) })));
      }
      table.append(body);
      replace("graph", el("div", { class: "graph" }, graph));
      replace("edges", table);
      stamp();
    });
  };

  const charts = {};
  function chart(id, title, seconds, series) {
    const data = [seconds, ...series.map((s) => s.values)];
    const holder = document.getElementById(id);
    if (charts[id] && charts[id].series.length === series.length + 1) {
      charts[id].setData(data);
      return;
    }
    if (charts[id]) charts[id].destroy();
    const box = el("div", { class: "chart" });
    replace(id, box);
    const colors = ["#2563eb", "#dc2626", "#16a34a", "#9333ea"];
    charts[id] = new uPlot(
      {
        title,
        width: Math.min(900, app.clientWidth || 900),
        height: 220,
        series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: colors[i % colors.length], width: 1.5 }))],
        axes: [{}, { label: "per second" }],
      },
      data,
      box,
    );
    void holder;
  }

  pages.service = () => {
    const name = app.dataset.service;
    every(async () => {
      const [stats, history, snapshot, metrics] = await Promise.all([api("/v1/stats"), api("/v1/history?service=" + encodeURIComponent(name)), api("/v1/snapshot"), api("/metrics")]);
      dropLoading();
      const service = snapshot.services.find((s) => s.name === name);
      const routes = stats.routes.filter((r) => r.dst_service === name).map((r) => Object.assign({ service: r.dst_service }, r));
      replace("routes-title", el("h2", { text: "Routes" }));
      replace("routes", statTable(routes, [], false));
      // Charts: requests and failures per second, each direction summed over its routes.
      const seconds = history.series.seconds;
      const sum = (dir, key) => seconds.map((_, i) => history.series.routes.filter((r) => r.direction === dir).reduce((a, r) => a + r[key][i], 0));
      chart("chart-requests", "Requests per second (last 5 minutes)", seconds, [
        { label: "inbound", values: sum("inbound", "requests") },
        { label: "outbound", values: sum("outbound", "requests") },
      ]);
      chart("chart-failures", "Failures per second", seconds, [
        { label: "inbound", values: sum("inbound", "failures") },
        { label: "outbound", values: sum("outbound", "failures") },
      ]);
      const backends = el("tbody");
      for (const r of snapshot.routes.filter((r) => r.service === name)) for (const b of r.backends) backends.append(el("tr", {}, el("td", { text: r.name }), el("td", {}, el("a", { href: "/dashboard/services/" + encodeURIComponent(b.service), text: b.service })), el("td", { class: "num", text: b.weight })));
      replace("backends-title", el("h2", { text: "Route backends" }));
      replace("backends", el("table", { class: "stats" }, el("thead", {}, el("tr", {}, el("th", { text: "Route" }), el("th", { text: "Backend" }), el("th", { text: "Weight" }))), backends));
      const ejections = new Map(parseMetrics(metrics, "weft_endpoint_ejections_total").filter((r) => r.labels.dst_service === name).map((r) => [r.labels.endpoint, r.value]));
      const endpoints = el("tbody");
      for (const e of (service && service.endpoints) || []) {
        const ejected = ejections.get(e.id) || 0;
        endpoints.append(el("tr", { "data-endpoint": e.id }, el("td", { text: e.id }), el("td", { text: e.address }), el("td", { text: e.leaseExpiresAt ? "leased until " + e.leaseExpiresAt : "static" }), el("td", { class: "num " + (ejected ? "warn" : ""), text: ejected })));
      }
      replace("endpoints-title", el("h2", { text: "Endpoints" }));
      replace("endpoints", el("table", { class: "stats" }, el("thead", {}, el("tr", {}, ...["Endpoint", "Address", "Registration", "Ejections (failure accrual)"].map((h) => el("th", { text: h })))), endpoints));
      const policies = el("ul", {});
      for (const p of snapshot.policies.filter((p) => p.target.service === name)) policies.append(el("li", { "data-policy": p.name }, el("strong", { text: p.action + " " }), p.name + (p.target.route ? " (route " + p.target.route + ")" : "") + (p.from ? " from " + JSON.stringify(p.from) : "")));
      if (!policies.children.length) policies.append(el("li", { text: "none: the default policy applies (" + ((service && service.defaultPolicy) || "all-unauthenticated") + ")" }));
      replace("policies-title", el("h2", { text: "Policies" }));
      replace("policies", policies);
      stamp();
    });
  };

  pages.status = () => {
    every(async () => {
      const [snapshot, metrics] = await Promise.all([api("/v1/snapshot"), api("/metrics")]);
      const entries = [];
      let after = 0;
      for (let i = 0; i < 20; i++) {
        const page = await api("/v1/audit?limit=1000&after=" + after);
        entries.push(...page.entries);
        if (page.next === null) break;
        after = page.next;
      }
      dropLoading();
      replace("version", el("p", {}, "Config version ", el("strong", { "data-version": snapshot.version, text: snapshot.version })));
      const hosts = el("tbody");
      const versions = parseMetrics(metrics, "weft_config_version");
      for (const v of versions) {
        const fresh = v.value === snapshot.version;
        hosts.append(el("tr", { "data-host": v.labels.host }, el("td", { text: v.labels.host || "(control plane)" }), el("td", { class: "num", text: v.value }), el("td", { class: fresh ? "good" : "warn", text: fresh ? "up to date" : "behind by " + (snapshot.version - v.value) })));
      }
      replace("hosts-title", el("h2", { text: "Data plane freshness" }));
      replace("hosts", el("table", { class: "stats" }, el("thead", {}, el("tr", {}, el("th", { text: "Host" }), el("th", { text: "Config version" }), el("th", { text: "State" }))), hosts));
      const audit = el("tbody");
      for (const e of entries.slice(-100).reverse()) audit.append(el("tr", {}, el("td", { text: e.at }), el("td", { text: e.actor }), el("td", { text: e.action }), el("td", { text: e.changes.map((c) => c.outcome + " " + c.kind + " " + c.name).join(", ") }), el("td", { class: "num", text: e.fromVersion + " → " + e.toVersion })));
      replace("audit-title", el("h2", { text: "Audit log (latest 100)" }));
      replace("audit", el("table", { class: "stats audit" }, el("thead", {}, el("tr", {}, ...["When", "Who", "Action", "Changes", "Version"].map((h) => el("th", { text: h })))), audit));
      stamp();
    });
  };

  pages.tap = async () => {
    dropLoading();
    const snapshot = await api("/v1/snapshot");
    const field = (name, label, input) => el("label", {}, label, input);
    const service = el("select", { name: "service", id: "tap-service" }, ...snapshot.services.map((s) => el("option", { value: s.name, text: s.name })));
    const to = el("input", { name: "to", id: "tap-to", placeholder: "any" });
    const route = el("input", { name: "route", id: "tap-route", placeholder: "any" });
    const method = el("input", { name: "method", id: "tap-method", placeholder: "any" });
    const prefix = el("input", { name: "pathPrefix", id: "tap-path-prefix", placeholder: "/" });
    const maxRps = el("input", { name: "maxRps", id: "tap-max-rps", type: "number", value: "100", min: "1", max: "10000" });
    const start = el("button", { type: "submit", id: "tap-start", text: "Start" });
    const stop = el("button", { type: "button", id: "tap-stop", text: "Stop", disabled: "" });
    const status = el("p", { id: "tap-status", class: "muted", text: app.dataset.kind === "admin" ? "Not tapping." : "Tapping needs an admin session (or the CLI with a tap token)." });
    const form = el("form", { id: "tap-form", class: "filters" }, field("service", "Service ", service), field("to", "To ", to), field("route", "Route ", route), field("method", "Method ", method), field("pathPrefix", "Path prefix ", prefix), field("maxRps", "Max RPS ", maxRps), start, stop);
    const rows = el("tbody", { id: "tap-events" });
    const table = el("table", { class: "stats tap" }, el("thead", {}, el("tr", {}, ...["Time", "Dir", "Host", "From", "Method", "Authority", "Path", "Status", "Error", "Latency", "Route", "Trace"].map((h) => el("th", { text: h })))), rows);
    app.append(form, status, table);
    if (app.dataset.kind !== "admin") start.setAttribute("disabled", "");
    let session = null;
    let cursor = 0;
    const stopTap = async () => {
      if (!session) return;
      const id = session;
      session = null;
      stop.setAttribute("disabled", "");
      start.removeAttribute("disabled");
      await api("/v1/taps/" + id, { method: "DELETE", headers: { "weft-csrf": csrf } }).catch(() => {});
      status.textContent = "Stopped.";
    };
    const poll = async (id) => {
      while (session === id) {
        let page;
        try {
          page = await api("/v1/taps/" + id + "/events?wait=5&after=" + cursor);
        } catch (error) {
          if (session === id) {
            status.textContent = "Tap ended: " + error.message;
            session = null;
          }
          break;
        }
        // Stopped (or restarted) while this poll was out: its answer is no longer news.
        if (session !== id) break;
        cursor = page.next;
        for (const e of page.events) {
          if (e.kind !== "end") continue;
          rows.prepend(el("tr", { class: "tap-event " + (e.error || e.status >= 500 ? "bad" : ""), "data-path": e.path, "data-status": e.status }, el("td", { text: new Date(e.at).toLocaleTimeString() }), el("td", { text: e.direction }), el("td", { text: e.host }), el("td", { text: serviceOfId(e.src) }), el("td", { text: e.method }), el("td", { text: e.authority }), el("td", { text: e.path }), el("td", { class: "num", text: e.status }), el("td", { text: e.error || "" }), el("td", { class: "num", text: ms(e.latencyMs) }), el("td", { text: e.route || "" }), el("td", { text: e.trace_id || "" })));
        }
        while (rows.children.length > 500) rows.lastChild.remove();
        status.textContent = "Tapping " + service.value + " · " + rows.children.length + " shown · " + page.dropped + " dropped by the rate limit";
      }
    };
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      await stopTap();
      const body = { service: service.value, maxRps: Number(maxRps.value) || 100 };
      if (to.value) body.to = to.value;
      if (route.value) body.route = route.value;
      if (method.value) body.method = method.value.toUpperCase();
      if (prefix.value) body.pathPrefix = prefix.value;
      try {
        const started = await api("/v1/taps", { method: "POST", headers: { "content-type": "application/json", "weft-csrf": csrf, accept: "application/json" }, body: JSON.stringify(body) });
        session = started.id;
        cursor = 0;
        start.setAttribute("disabled", "");
        stop.removeAttribute("disabled");
        status.textContent = "Tapping " + body.service + " …";
        status.setAttribute("data-tap", started.id);
        poll(started.id);
      } catch (error) {
        status.textContent = "Could not start the tap: " + error.message;
      }
    });
    stop.addEventListener("click", () => void stopTap());
    window.addEventListener("pagehide", () => {
      if (session) fetch("/v1/taps/" + session, { method: "DELETE", headers: { "weft-csrf": csrf }, keepalive: true, credentials: "same-origin" });
    });
  };

  (pages[pageName] || (() => {}))();
})();
