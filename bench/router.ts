/**
 * `npm run bench:router`: what two router hops cost, in workerd. The same client app calls the
 * same no-op app either through the mesh (app → router a → router b → app) or over a direct
 * service binding (app → app), or through two plain forwarding workers (the floor cost of two
 * extra binding hops, with no mesh logic); all are driven over HTTP from Node, interleaved, in
 * the same run. Prints p50/p99 latency and requests per second of each, the added latency and
 * the throughput ratio; the last line is JSON.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startControl } from "../workers/control/local.ts";
import { startRouters } from "../workers/router/local.ts";
import { freePort } from "../workers/local.ts";

const ROUNDS = 3;
const SEQUENTIAL = 800; // calls per round and mode, one at a time, for latency
const CONCURRENCY = 16;
const THROUGHPUT_MS = 2_000; // per round and mode

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function once(url: string): Promise<void> {
  const response = await fetch(url);
  const text = await response.text();
  if (response.status !== 200 || text !== "ok") throw new Error(`${url} answered ${response.status}: ${text.slice(0, 200)}`);
}

async function latencies(url: string): Promise<{ p50: number; p99: number }> {
  const samples: number[] = [];
  for (let i = 0; i < SEQUENTIAL; i++) {
    const started = performance.now();
    await once(url);
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  return { p50: quantile(samples, 0.5), p99: quantile(samples, 0.99) };
}

async function throughput(url: string): Promise<number> {
  let done = 0;
  const end = performance.now() + THROUGHPUT_MS;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        await once(url);
        done++;
      }
    }),
  );
  return done / ((performance.now() - started) / 1000);
}

const dir = await mkdtemp(join(tmpdir(), "weft-bench-router-"));
const ADMIN = "bench-router-admin-token-0123456789";
const control = await startControl({ adminToken: ADMIN, port: 0, persistDir: dir, trustDomain: "weft.bench", publishIntervalMs: 0 });
try {
  await control.admin("POST", "/v1/apply", {
    resources: [
      { kind: "Service", name: "a", endpoints: [{ id: "a", address: "binding:A" }] },
      { kind: "Service", name: "b", endpoints: [{ id: "b", address: "binding:B" }] },
    ],
  });
  const secrets: Record<string, string> = {};
  for (const service of ["a", "b"]) secrets[service] = await control.workerSecret(service);
  const port = await freePort();
  const routers = await startRouters({
    control: new URL(control.url).host,
    trustDomain: "weft.bench",
    persistDir: dir,
    routers: [
      { service: "a", secret: secrets.a!, app: { worker: "bench-client" } },
      { service: "b", secret: secrets.b!, app: { worker: "bench-upstream" } },
    ],
    apps: [
      { name: "bench-client", entry: "bench/router-client.ts", mesh: "a", services: { DIRECT: "bench-upstream", RELAY: "relay-a" }, port },
      { name: "relay-a", entry: "bench/router-relay.ts", services: { NEXT: "relay-b" } },
      { name: "relay-b", entry: "bench/router-relay.ts", services: { NEXT: "bench-upstream" } },
      { name: "bench-upstream", entry: "bench/router-upstream.ts" },
    ],
  });
  const base = `http://127.0.0.1:${port}`;
  const modes = { mesh: `${base}/mesh`, direct: `${base}/direct`, relay: `${base}/relay` } as const;
  try {
    // Warm up: tokens, config, JIT, connections.
    for (const url of Object.values(modes)) for (let i = 0; i < 300; i++) await once(url);
    const rows: Record<keyof typeof modes, { p50: number[]; p99: number[]; rps: number[] }> = {
      mesh: { p50: [], p99: [], rps: [] },
      direct: { p50: [], p99: [], rps: [] },
      relay: { p50: [], p99: [], rps: [] },
    };
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which mode goes first, so drift on a shared machine hits both alike.
      const orders = [["mesh", "direct", "relay"], ["direct", "relay", "mesh"], ["relay", "mesh", "direct"]] as const;
      const order = orders[round % orders.length]!;
      for (const mode of order) {
        const { p50, p99 } = await latencies(modes[mode]);
        rows[mode].p50.push(p50);
        rows[mode].p99.push(p99);
      }
      for (const mode of order) rows[mode].rps.push(await throughput(modes[mode]));
    }
    // Then the mesh path while a `weft tap` session (issue 14) samples the upstream's traffic at
    // the default 100 calls a second: what tapping costs. The routers learn of it with their
    // next config read (every 5 s by default), so the runs start after that.
    const tapped = { p50: [] as number[], p99: [] as number[], rps: [] as number[] };
    const tap = (await control.admin("POST", "/v1/taps", { service: "b" })) as { id: string };
    await new Promise((resolve) => setTimeout(resolve, 6_500));
    for (let round = 0; round < ROUNDS; round++) {
      const { p50, p99 } = await latencies(modes.mesh);
      tapped.p50.push(p50);
      tapped.p99.push(p99);
      tapped.rps.push(await throughput(modes.mesh));
    }
    await control.admin("DELETE", `/v1/taps/${tap.id}`);
    const m = (mode: keyof typeof modes, key: "p50" | "p99" | "rps") => median(rows[mode][key]);
    const t = (key: "p50" | "p99" | "rps") => median(tapped[key]);
    const fmt = (n: number, digits = 2) => n.toFixed(digits);
    const lines = [
      `router bench: ${ROUNDS} rounds, ${SEQUENTIAL} sequential calls per mode per round, then ${CONCURRENCY} concurrent for ${THROUGHPUT_MS} ms; medians of rounds`,
      "",
      "path                               p50 ms   p99 ms   req/s",
      `app → app (direct binding)         ${fmt(m("direct", "p50")).padStart(6)}   ${fmt(m("direct", "p99")).padStart(6)}   ${fmt(m("direct", "rps"), 0).padStart(5)}`,
      `app → relay → relay → app          ${fmt(m("relay", "p50")).padStart(6)}   ${fmt(m("relay", "p99")).padStart(6)}   ${fmt(m("relay", "rps"), 0).padStart(5)}`,
      `app → router → router → app        ${fmt(m("mesh", "p50")).padStart(6)}   ${fmt(m("mesh", "p99")).padStart(6)}   ${fmt(m("mesh", "rps"), 0).padStart(5)}`,
      `added by the two router hops       ${fmt(m("mesh", "p50") - m("direct", "p50")).padStart(6)}   ${fmt(m("mesh", "p99") - m("direct", "p99")).padStart(6)}   ×${fmt(m("mesh", "rps") / m("direct", "rps"))}`,
      `  of which two bare binding hops   ${fmt(m("relay", "p50") - m("direct", "p50")).padStart(6)}   ${fmt(m("relay", "p99") - m("direct", "p99")).padStart(6)}   ×${fmt(m("relay", "rps") / m("direct", "rps"))}`,
      `app → router → router → app, tapped ${fmt(t("p50")).padStart(5)}   ${fmt(t("p99")).padStart(6)}   ${fmt(t("rps"), 0).padStart(5)}   (×${fmt(t("rps") / m("mesh", "rps"))} of untapped)`,
      "",
      "target: the two router hops add under 1 ms at p50 locally",
    ];
    console.log(lines.join("\n"));
    console.log(
      JSON.stringify({
        bench: "router",
        added_p50_ms: Number(fmt(m("mesh", "p50") - m("direct", "p50"), 3)),
        added_p99_ms: Number(fmt(m("mesh", "p99") - m("direct", "p99"), 3)),
        rps_ratio_to_direct: Number(fmt(m("mesh", "rps") / m("direct", "rps"), 3)),
        relay_added_p50_ms: Number(fmt(m("relay", "p50") - m("direct", "p50"), 3)),
        direct_p50_ms: Number(fmt(m("direct", "p50"), 3)),
        mesh_p50_ms: Number(fmt(m("mesh", "p50"), 3)),
        direct_rps: Math.round(m("direct", "rps")),
        mesh_rps: Math.round(m("mesh", "rps")),
        tapped_p50_ms: Number(fmt(t("p50"), 3)),
        tapped_rps_ratio_to_untapped: Number(fmt(t("rps") / m("mesh", "rps"), 3)),
      }),
    );
  } finally {
    await routers.stop();
  }
} finally {
  await control.stop();
  await rm(dir, { recursive: true, force: true });
}
