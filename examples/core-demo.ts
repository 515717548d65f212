/**
 * The core demo: three local upstreams of one service, one healthy, one ten times slower and
 * one that fails 30% of its calls, called through the outbound stack `createProxy` assembles
 * (route → metrics → deadline → retry → peak-EWMA balancer → failure accrual → deadline
 * propagation → fetch). It sends a bounded burst, then shows how the balancer spread the
 * tries, the retries and ejections, and the golden metrics as `weft stat` and `/metrics`
 * would show them. Everything runs on 127.0.0.1 and stops by itself in a few seconds.
 *
 * Run: sh scripts/node.sh node examples/core-demo.ts [--calls N] [--concurrency N]
 * The last line of output is a JSON summary (for tests and scripts).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SnapshotSchema } from "../src/core/config/index.ts";
import { createRegistry } from "../src/core/metrics/index.ts";
import { createProxy, toOrigin, toWebResponse } from "../src/proxy/index.ts";
import { seededRandom } from "../src/testing/index.ts";

const CALLS = numberFlag("--calls", 2_000);
const CONCURRENCY = numberFlag("--concurrency", 16);
const SERVICE = "orders";
const SELF = "spiffe://weft.local/ns/demo/sa/web";

/** The three upstreams: how long each takes to answer and how often it answers 503. */
const UPSTREAMS = [
  { id: "healthy", latencyMs: 5, failRate: 0 },
  { id: "slow", latencyMs: 50, failRate: 0 },
  { id: "flaky", latencyMs: 5, failRate: 0.3 },
] as const;

interface Upstream {
  id: string;
  latencyMs: number;
  failRate: number;
  origin: string;
  server: Server;
  served: number;
  failed: number;
}


async function startUpstream(spec: (typeof UPSTREAMS)[number], random: () => number): Promise<Upstream> {
  const upstream: Upstream = { ...spec, origin: "", server: createServer(), served: 0, failed: 0 };
  upstream.server.on("request", (request, response) => {
    upstream.served++;
    const fails = random() < spec.failRate;
    if (fails) upstream.failed++;
    request.resume();
    setTimeout(() => {
      response.writeHead(fails ? 503 : 200, { "content-type": "application/json" });
      response.end(JSON.stringify({ endpoint: spec.id, attempt: request.headers["weft-attempt"], budgetMs: request.headers["weft-timeout-ms"] }));
    }, spec.latencyMs);
  });
  await new Promise<void>((resolve) => upstream.server.listen(0, "127.0.0.1", resolve));
  upstream.origin = `http://127.0.0.1:${(upstream.server.address() as AddressInfo).port}`;
  return upstream;
}

function numberFlag(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  const value = at === -1 ? fallback : Number(process.argv[at + 1]);
  if (!(Number.isInteger(value) && value > 0)) throw new RangeError(`${name} needs a whole number above 0`);
  return value;
}

/** A plain-text table: a header row, then one row per item, columns padded to fit. */
function table(rows: Record<string, string | number>[]): string {
  const columns = Object.keys(rows[0] ?? {});
  const cells = [columns, ...rows.map((row) => columns.map((column) => String(row[column])))];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => line[i]!.length)));
  const line = (values: string[]) => values.map((value, i) => (i === 0 ? value.padEnd(widths[i]!) : value.padStart(widths[i]!))).join("  ");
  return ["", line(columns), line(widths.map((w) => "-".repeat(w))), ...cells.slice(1).map(line)].join("\n  ");
}

const percent = (part: number, whole: number) => (whole === 0 ? "-" : `${((100 * part) / whole).toFixed(1)}%`);
const ms = (value: number | null) => (value === null ? "-" : value.toFixed(1));

const random = seededRandom(42);
const upstreams = await Promise.all(UPSTREAMS.map((spec) => startUpstream(spec, random)));
try {
  const registry = createRegistry();
  const proxy = createProxy({
    service: "web",
    identity: SELF,
    registry,
    // Each endpoint is an http origin on loopback, reached with the runtime's fetch.
    connect: (endpoint) => (request) => fetch(toOrigin(request, endpoint.address)),
    app: async () => new Response(null, { status: 404 }),
  });
  proxy.update(
    SnapshotSchema.parse({
      version: 1,
      services: [
        {
          name: SERVICE,
          endpoints: upstreams.map((u) => ({ id: u.id, address: u.origin })),
          // Linkerd's defaults (1 retry, 20% budget + 10/s), with a second retry.
          retry: { limit: 2, on: ["5xx", "reset"] },
          timeout: "1s",
          // Three failures in a row eject: Linkerd's default of 7 in a row comes once in some
          // 4,600 tries at a 30% failure rate (0.3^7), 3 in a row once in 37 (0.3^3). The
          // penalty is short, so within the demo the endpoint comes back on probation too.
          failureAccrual: { consecutiveFailures: 3, backoff: { min: "200ms", max: "2s" } },
        },
      ],
      routes: [{ name: "orders-api", service: SERVICE, matches: [{ path: { type: "PathPrefix", value: "/api" } }], backends: [{ service: SERVICE, weight: 1 }] }],
      policies: [],
      jwks: { keys: [] },
    }),
  );

  console.log(`Weft core demo: service "${SERVICE}" with ${upstreams.length} endpoints on 127.0.0.1`);
  for (const u of upstreams) console.log(`  ${u.id.padEnd(8)} ${u.origin}  answers in ~${u.latencyMs} ms${u.failRate ? `, ${u.failRate * 100}% of calls 503` : ""}`);
  console.log(`\nSending ${CALLS.toLocaleString("en-US")} calls through the outbound stack, ${CONCURRENCY} at a time...`);

  const seen = new Map<string, number>();
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < CALLS) {
      const i = next++;
      let outcome: string;
      try {
        const response = await proxy.outbound(new Request(`http://${SERVICE}/api/orders/${i}`));
        await toWebResponse(response).arrayBuffer();
        outcome = String(response.status);
      } catch (error) {
        outcome = (error as { code?: string }).code ?? "error";
      }
      seen.set(outcome, (seen.get(outcome) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (performance.now() - started) / 1000;

  const ok = seen.get("200") ?? 0;
  const others = [...seen].filter(([outcome]) => outcome !== "200").map(([outcome, n]) => `${outcome} ×${n}`);
  console.log(`Done in ${seconds.toFixed(2)} s (${Math.round(CALLS / seconds).toLocaleString("en-US")} calls/s).`);
  console.log(`\nWhat the app saw: ${ok.toLocaleString("en-US")} of ${CALLS.toLocaleString("en-US")} calls answered 200 (${percent(ok, CALLS)})${others.length ? `; ${others.join(", ")}` : ""}`);

  const tries = upstreams.reduce((sum, u) => sum + u.served, 0);
  console.log(`\nHow the balancer (peak-EWMA, power of two choices) spread the ${tries.toLocaleString("en-US")} tries:`);
  console.log(
    table(upstreams.map((u) => ({ endpoint: u.id, "latency ms": `~${u.latencyMs}`, tries: u.served, share: percent(u.served, tries), "answered 503": u.failed }))),
  );

  // The counters since start, as the registry would push them to the control plane.
  const delta = registry.takeDelta();
  const count = (list: { count: number }[]) => list.reduce((sum, c) => sum + c.count, 0);
  const retries = count(delta.retries);
  const refused = count(delta.retryBudgetExhausted);
  const ejections = new Map<string, number>();
  for (const e of delta.ejections) ejections.set(e.labels.endpoint, (ejections.get(e.labels.endpoint) ?? 0) + e.count);
  console.log(`\nRetries: ${retries} (weft_retry_total); ${refused} refused by the retry budget (weft_retry_budget_exhausted_total)`);
  console.log(
    `Ejections by failure accrual: ${ejections.size ? [...ejections].map(([endpoint, n]) => `${endpoint} ×${n}`).join(", ") : "none"} (weft_endpoint_ejections_total)`,
  );

  const stats = registry.snapshot();
  console.log(`\nGolden metrics, last ${stats.windowSeconds} s (registry.snapshot(), what \`weft stat\` shows):`);
  console.log(
    table(
      stats.routes.map((r) => ({
        direction: r.direction,
        service: r.dst_service,
        route: r.route,
        requests: r.requests,
        success: r.successRate === null ? "-" : `${(100 * r.successRate).toFixed(2)}%`,
        rps: r.rps.toFixed(1),
        "p50 ms": ms(r.latencyMs.p50),
        "p95 ms": ms(r.latencyMs.p95),
        "p99 ms": ms(r.latencyMs.p99),
      })),
    ),
  );

  const exposition = registry.expose().split("\n");
  const excerpt = exposition.filter(
    (line) => /^weft_(request_total|response_total|retry_total|retry_budget_exhausted_total|endpoint_ejections_total|config_version)[{ ]/.test(line) || /^weft_response_latency_seconds_(count|sum)/.test(line),
  );
  console.log(`\nPrometheus exposition (registry.expose(), ${excerpt.length} of ${exposition.length} lines, what GET /metrics serves):`);
  for (const line of excerpt.slice(0, 30)) console.log(`  ${line}`);

  const route = stats.routes.find((r) => r.dst_service === SERVICE && r.route === "orders-api");
  console.log(
    JSON.stringify({
      demo: "core",
      calls: CALLS,
      ok,
      successRate: ok / CALLS,
      seconds: Math.round(seconds * 100) / 100,
      retries,
      retryBudgetExhausted: refused,
      ejections: Object.fromEntries(ejections),
      tries: Object.fromEntries(upstreams.map((u) => [u.id, u.served])),
      failed: Object.fromEntries(upstreams.map((u) => [u.id, u.failed])),
      metrics: route && { requests: route.requests, successRate: route.successRate, p50: route.latencyMs.p50, p99: route.latencyMs.p99 },
    }),
  );
} finally {
  for (const u of upstreams) u.server.closeAllConnections();
  await Promise.all(upstreams.map((u) => new Promise((resolve) => u.server.close(resolve))));
}
