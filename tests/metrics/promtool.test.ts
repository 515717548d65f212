/**
 * Every Prometheus exposition Weft serves passes `promtool check metrics` (SPEC.md section 7):
 * a sidecar's admin `/metrics` (a real sidecar process) and the control worker's `/metrics`
 * (the mesh-wide totals, in workerd), both after real traffic, so every family has samples.
 * promtool comes from Debian's `prometheus` package (`scripts/system-deps.sh` installs it);
 * a machine without it fails this test rather than skipping it.
 */
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, admin, callVia, metricsOf, sample, startMesh, startPod, type Mesh, type Pod } from "../sidecar/pods.ts";

/** What `promtool check metrics` said about a text: its exit code and everything it printed. */
interface Check {
  code: number | null;
  output: string;
}

/** Runs `promtool check metrics` with `text` on its standard input. */
function promtool(text: string): Promise<Check> {
  return new Promise((resolve, reject) => {
    const child = spawn("promtool", ["check", "metrics"], { stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    child.once("error", (error: NodeJS.ErrnoException) =>
      reject(error.code === "ENOENT" ? new Error("promtool is not installed: run `sh scripts/system-deps.sh` as root (Debian package prometheus)") : error),
    );
    child.once("close", (code) => resolve({ code, output }));
    child.stdin.on("error", () => {}); // promtool may exit before reading everything; its code says why
    child.stdin.end(text);
  });
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what}: not seen within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function controlMetrics(): Promise<string> {
  const response = await fetch(`${mesh.control.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } });
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return response.text();
}

/** The latency histogram's series in `text`, by label set: cumulative buckets by bound, _sum and _count. */
function histograms(text: string): Map<string, { buckets: [number, number][]; sum: number; count: number }> {
  const series = new Map<string, { buckets: [number, number][]; sum: number; count: number }>();
  const of = (labels: string) => {
    let entry = series.get(labels);
    if (entry === undefined) series.set(labels, (entry = { buckets: [], sum: NaN, count: NaN }));
    return entry;
  };
  for (const line of text.split("\n")) {
    const match = /^weft_response_latency_seconds_(bucket|sum|count)\{(.*)\} (\S+)$/.exec(line);
    if (match === null) continue;
    const [, part, labels, value] = match as unknown as [string, string, string, string];
    if (part === "bucket") {
      const le = /,?le="([^"]+)"$/.exec(labels)!;
      of(labels.slice(0, le.index)).buckets.push([le[1] === "+Inf" ? Infinity : Number(le[1]), Number(value)]);
    } else of(labels)[part as "sum" | "count"] = Number(value);
  }
  return series;
}

let mesh: Mesh;
let web: Pod;
let orders: Pod;

beforeAll(async () => {
  mesh = await startMesh();
  await admin(mesh.control, "POST", "/v1/apply", {
    resources: [
      { kind: "Service", name: "web", defaultPolicy: "all-authenticated" },
      {
        kind: "Service",
        name: "orders",
        defaultPolicy: "all-authenticated",
        retry: { limit: 2, on: ["5xx"], budget: { ratio: 0.5, minPerSecond: 100, ttl: "10s" } },
      },
      { kind: "Route", name: "orders-default", service: "orders", backends: [{ service: "orders" }] },
    ],
  });
  [web, orders] = await Promise.all([
    startPod(mesh, { name: "web-1", ip: "127.0.0.2", service: "web" }),
    startPod(mesh, { name: "orders-1", ip: "127.0.0.3", service: "orders" }),
  ]);
  mesh.pods.push(web, orders);
  await until(async () => (await callVia(web, "orders", "/")).status === 200, "a call from web to orders");
  // Traffic that fills every labelled family: successes, a failure retried into a success,
  // a mesh error (no such service), and a failure the app answers with.
  for (let i = 0; i < 5; i++) expect((await callVia(web, "orders", `/items/${i}`)).status).toBe(200);
  expect((await callVia(web, "orders", "/fail?times=1&key=promtool")).status).toBe(200);
  expect((await callVia(web, "nowhere", "/")).status).toBe(404);
  expect((await callVia(web, "orders", "/status/404")).status).toBe(404);
  // The sidecars push their deltas every second (WEFT_STATS_INTERVAL); wait for both sides.
  await until(async () => {
    const text = await controlMetrics();
    return sample(text, "weft_response_total", { direction: "outbound" }) !== undefined && sample(text, "weft_response_total", { direction: "inbound" }) !== undefined;
  }, "both sidecars' deltas in the control plane's /metrics");
}, 120_000);

afterAll(async () => {
  await mesh?.destroy();
});

describe("promtool check metrics", () => {
  it("finds nothing to complain about in a sidecar's admin /metrics", async () => {
    for (const pod of [web, orders]) {
      const text = await metricsOf(pod.sidecar);
      expect(await promtool(text), `promtool on ${pod.name}'s sidecar /metrics`).toEqual({ code: 0, output: "" });
      // The check is only worth something if the families it lints have samples.
      expect(sample(text, "weft_response_latency_seconds_count")).toBeGreaterThan(0);
      expect(sample(text, "weft_request_total")).toBeGreaterThan(0);
    }
    expect(sample(await metricsOf(web.sidecar), "weft_retry_total", { dst_service: "orders" })).toBeGreaterThan(0);
  });

  it("finds nothing to complain about in the control worker's /metrics", async () => {
    const text = await controlMetrics();
    expect(await promtool(text), "promtool on the control worker's /metrics").toEqual({ code: 0, output: "" });
    expect(sample(text, "weft_response_latency_seconds_count")).toBeGreaterThan(0);
    expect(sample(text, "weft_config_version")).toBeGreaterThan(0);
  });

  it("is a real check: it refuses a text that breaks the naming rules", async () => {
    const check = await promtool("# HELP weft_latency_ms latency\n# TYPE weft_latency_ms gauge\nweft_latency_ms 1\n# TYPE weft_calls counter\nweft_calls 1\n");
    expect(check.code).not.toBe(0);
    expect(check.output).toContain("abbreviated units");
    expect(check.output).toContain("_total");
  });
});

describe("the latency histogram on the wire", () => {
  it("is in seconds: bucket bounds, _sum, and a name that says so", async () => {
    const text = await metricsOf(orders.sidecar);
    expect(text).not.toMatch(/_ms\b|_ms_/);
    expect(text).toContain("# TYPE weft_response_latency_seconds histogram\n");
    // Linkerd's millisecond bounds, each divided by 1,000, ending at 50 s and +Inf.
    const bounds = [...text.matchAll(/^weft_response_latency_seconds_bucket\{[^}]*le="([^"]+)"\}/gm)].map((m) => m[1]);
    expect(bounds.slice(0, 26)).toEqual(["0.001", "0.002", "0.003", "0.004", "0.005", "0.01", "0.02", "0.03", "0.04", "0.05", "0.1", "0.2", "0.3", "0.4", "0.5", "1", "2", "3", "4", "5", "10", "20", "30", "40", "50", "+Inf"]);
    // Each series' _sum lies between what its buckets allow (every observation at its
    // bucket's lower bound, or at its upper bound): a sum kept in another unit would not.
    const series = histograms(text);
    expect(series.size).toBeGreaterThan(0);
    for (const [labels, { buckets, sum, count }] of series) {
      expect(buckets.at(-1)![1], labels).toBe(count);
      let low = 0;
      let high = 0;
      let below = 0;
      let previous = 0;
      for (const [le, cumulative] of buckets) {
        const inBucket = cumulative - below;
        if (inBucket > 0) {
          low += inBucket * previous;
          high += inBucket * le;
        }
        below = cumulative;
        previous = le;
      }
      // A hair of slack for the float division by 1,000.
      expect(sum, labels).toBeGreaterThanOrEqual(low * (1 - 1e-9));
      if (Number.isFinite(high)) expect(sum, labels).toBeLessThanOrEqual(high * (1 + 1e-9));
    }
  });
});
