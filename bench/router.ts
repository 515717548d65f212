/**
 * `npm run bench:router`: what two router hops cost, in workerd. The same client app calls the
 * same no-op app either through the mesh (app → router a → router b → app) or over a direct
 * service binding (app → app), or through two plain forwarding workers (the floor cost of two
 * extra binding hops, with no mesh logic), or through a second pair of routers with tracing on
 * (`parentbased_traceidratio` at 0.1, spans exported over OTLP/HTTP to a collector in this
 * process that accepts and discards them); all are driven over HTTP from Node, interleaved, in
 * the same run. Prints p50/p99 latency and requests per second of each, the added latency, the
 * throughput ratio and the workerd processes' CPU time per request during the throughput runs
 * (utime + stime from /proc); the last line is JSON. A further mode, `mesh+auth`, takes the mesh
 * path to a service whose router verifies an end-user JWT (RS256, its JWKS fetched once from a
 * loopback server and then cached) under a claims-based ALLOW: its ratio to `mesh` is what
 * end-user authentication costs.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startControl } from "../workers/control/local.ts";
import { startRouters } from "../workers/router/local.ts";
import { freePort } from "../workers/local.ts";
import { SignJWT, exportJWK, generateKeyPair } from "jose";

const ROUNDS = 3;
const SEQUENTIAL = 800; // calls per round and mode, one at a time, for latency
const CONCURRENCY = 16;
const THROUGHPUT_MS = 2_000; // per round and mode

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

// The end user's token for `mesh+auth`, set once its issuer is up.
let authorization = "";

async function once(url: string): Promise<void> {
  const response = await fetch(url, url.endsWith("/mesh-auth") ? { headers: { authorization } } : {});
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

/** The workerd processes this bench started (Miniflare's children), found once they run. */
function workerdPids(): number[] {
  const out = spawnSync("pgrep", ["-P", String(process.pid), "workerd"], { encoding: "utf8" }).stdout;
  return out.split("\n").filter(Boolean).map(Number);
}

/** CPU time (utime + stime) of `pids`, in microseconds (USER_HZ 100). */
function cpuMicros(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      total += (Number(fields[11]) + Number(fields[12])) * 1e4;
    } catch {
      // gone
    }
  }
  return total;
}

let cpuOfRun = 0;
async function throughput(url: string): Promise<number> {
  const pids = workerdPids();
  const before = cpuMicros(pids);
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
  cpuOfRun = (cpuMicros(pids) - before) / done;
  return done / ((performance.now() - started) / 1000);
}

const dir = await mkdtemp(join(tmpdir(), "weft-bench-router-"));
const ADMIN = "bench-router-admin-token-0123456789";
const control = await startControl({ adminToken: ADMIN, port: 0, persistDir: dir, trustDomain: "weft.bench", publishIntervalMs: 0 });
// An end-user issuer: an RS256 key, its JWKS on a loopback server, one token for b2.
const ISSUER = "https://login.bench.test/";
const { privateKey, publicKey } = await generateKeyPair("RS256");
const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: "bench-1", alg: "RS256", use: "sig" }] });
const jwksServer = createServer((_, res) => res.writeHead(200, { "content-type": "application/json" }).end(jwks));
await new Promise<void>((resolve) => jwksServer.listen(0, "127.0.0.1", resolve));
const jwksUri = `http://127.0.0.1:${(jwksServer.address() as { port: number }).port}/jwks.json`;
const token = await new SignJWT({ groups: ["bench"] }).setProtectedHeader({ alg: "RS256", kid: "bench-1" }).setIssuer(ISSUER).setSubject("bench-user").setAudience("b2").setIssuedAt().setExpirationTime("1h").sign(privateKey);
authorization = `Bearer ${token}`;
try {
  await control.admin("POST", "/v1/apply", {
    resources: [
      { kind: "Service", name: "a", endpoints: [{ id: "a", address: "binding:A" }] },
      { kind: "Service", name: "b", endpoints: [{ id: "b", address: "binding:B" }] },
      {
        kind: "Service",
        name: "b2",
        endpoints: [{ id: "b2", address: "binding:B2" }],
        requestAuthentication: { jwtRules: [{ issuer: ISSUER, jwksUri, audiences: ["b2"], outputClaimToHeaders: [{ header: "x-user", claim: "sub" }] }] },
      },
      { kind: "AuthorizationPolicy", name: "b2-users", target: { service: "b2" }, action: "ALLOW", from: [{ issuers: [ISSUER], claims: [{ name: "groups", values: ["bench"] }] }] },
      { kind: "Service", name: "at", endpoints: [{ id: "at", address: "binding:AT" }] },
      { kind: "Service", name: "bt", endpoints: [{ id: "bt", address: "binding:BT" }] },
    ],
  });
  const secrets: Record<string, string> = {};
  for (const service of ["a", "b", "at", "bt", "b2"]) secrets[service] = await control.workerSecret(service);
  // The traced routers' collector: reads each export and answers 200.
  let exports = 0;
  let exportedBytes = 0;
  const collector = createServer((req, res) => {
    req.on("data", (chunk: Buffer) => (exportedBytes += chunk.length));
    req.on("end", () => {
      exports++;
      res.writeHead(200).end();
    });
  });
  const collectorPort = await freePort();
  await new Promise<void>((done) => collector.listen(collectorPort, "127.0.0.1", done));
  collector.unref();
  const tracing = { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collectorPort}`, OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.1" };
  const tracedPort = await freePort();
  const port = await freePort();
  const routers = await startRouters({
    control: new URL(control.url).host,
    trustDomain: "weft.bench",
    persistDir: dir,
    routers: [
      { service: "a", secret: secrets.a!, app: { worker: "bench-client" } },
      { service: "b", secret: secrets.b!, app: { worker: "bench-upstream" } },
      { service: "at", secret: secrets.at!, app: { worker: "traced-client" }, vars: tracing },
      { service: "bt", secret: secrets.bt!, app: { worker: "bench-upstream" }, vars: tracing },
      { service: "b2", secret: secrets.b2!, app: { worker: "bench-upstream" } },
    ],
    apps: [
      { name: "bench-client", entry: "bench/router-client.ts", mesh: "a", services: { DIRECT: "bench-upstream", RELAY: "relay-a" }, port },
      { name: "relay-a", entry: "bench/router-relay.ts", services: { NEXT: "relay-b" } },
      { name: "relay-b", entry: "bench/router-relay.ts", services: { NEXT: "bench-upstream" } },
      { name: "bench-upstream", entry: "bench/router-upstream.ts" },
      { name: "traced-client", entry: "bench/router-client.ts", mesh: "at", services: { DIRECT: "bench-upstream", RELAY: "relay-a" }, vars: { TARGET: "bt" }, port: tracedPort },
    ],
  });
  const base = `http://127.0.0.1:${port}`;
  const modes = { mesh: `${base}/mesh`, direct: `${base}/direct`, relay: `${base}/relay`, tracing: `http://127.0.0.1:${tracedPort}/mesh`, auth: `${base}/mesh-auth` } as const;
  try {
    // Warm up: tokens, config, JIT, connections.
    for (const url of Object.values(modes)) for (let i = 0; i < 300; i++) await once(url);
    const rows: Record<keyof typeof modes, { p50: number[]; p99: number[]; rps: number[]; cpu: number[] }> = {
      mesh: { p50: [], p99: [], rps: [], cpu: [] },
      direct: { p50: [], p99: [], rps: [], cpu: [] },
      relay: { p50: [], p99: [], rps: [], cpu: [] },
      tracing: { p50: [], p99: [], rps: [], cpu: [] },
      auth: { p50: [], p99: [], rps: [], cpu: [] },
    };
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which mode goes first, so drift on a shared machine hits both alike.
      const orders = [["mesh", "tracing", "auth", "direct", "relay"], ["direct", "auth", "relay", "tracing", "mesh"], ["relay", "mesh", "direct", "auth", "tracing"]] as const;
      const order = orders[round % orders.length]!;
      for (const mode of order) {
        const { p50, p99 } = await latencies(modes[mode]);
        rows[mode].p50.push(p50);
        rows[mode].p99.push(p99);
      }
      for (const mode of order) {
        rows[mode].rps.push(await throughput(modes[mode]));
        rows[mode].cpu.push(cpuOfRun);
      }
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
    const m = (mode: keyof typeof modes, key: "p50" | "p99" | "rps" | "cpu") => median(rows[mode][key]);
    const t = (key: "p50" | "p99" | "rps") => median(tapped[key]);
    const fmt = (n: number, digits = 2) => n.toFixed(digits);
    const lines = [
      `router bench: ${ROUNDS} rounds, ${SEQUENTIAL} sequential calls per mode per round, then ${CONCURRENCY} concurrent for ${THROUGHPUT_MS} ms; medians of rounds`,
      "",
      "path                               p50 ms   p99 ms   req/s",
      `app → app (direct binding)         ${fmt(m("direct", "p50")).padStart(6)}   ${fmt(m("direct", "p99")).padStart(6)}   ${fmt(m("direct", "rps"), 0).padStart(5)}`,
      `app → relay → relay → app          ${fmt(m("relay", "p50")).padStart(6)}   ${fmt(m("relay", "p99")).padStart(6)}   ${fmt(m("relay", "rps"), 0).padStart(5)}`,
      `app → router → router → app        ${fmt(m("mesh", "p50")).padStart(6)}   ${fmt(m("mesh", "p99")).padStart(6)}   ${fmt(m("mesh", "rps"), 0).padStart(5)}`,
      `  the same, tracing at 0.1         ${fmt(m("tracing", "p50")).padStart(6)}   ${fmt(m("tracing", "p99")).padStart(6)}   ${fmt(m("tracing", "rps"), 0).padStart(5)}`,
      `added by the two router hops       ${fmt(m("mesh", "p50") - m("direct", "p50")).padStart(6)}   ${fmt(m("mesh", "p99") - m("direct", "p99")).padStart(6)}   ×${fmt(m("mesh", "rps") / m("direct", "rps"))}`,
      `  of which two bare binding hops   ${fmt(m("relay", "p50") - m("direct", "p50")).padStart(6)}   ${fmt(m("relay", "p99") - m("direct", "p99")).padStart(6)}   ×${fmt(m("relay", "rps") / m("direct", "rps"))}`,
      `app → router → router → app, tapped ${fmt(t("p50")).padStart(5)}   ${fmt(t("p99")).padStart(6)}   ${fmt(t("rps"), 0).padStart(5)}   (×${fmt(t("rps") / m("mesh", "rps"))} of untapped)`,
      `app → router → router+JWT → app    ${fmt(m("auth", "p50")).padStart(6)}   ${fmt(m("auth", "p99")).padStart(6)}   ${fmt(m("auth", "rps"), 0).padStart(5)}`,
      `end-user auth vs mesh (ratio)      ×${fmt(m("auth", "p50") / m("mesh", "p50"))}    ×${fmt(m("auth", "p99") / m("mesh", "p99"))}   ×${fmt(m("auth", "rps") / m("mesh", "rps"))}`,
      "",
      "target: with an end-user auth rule on (warm key cache), within 10 % of the mesh's figures",
      "target: the two router hops add under 1 ms at p50 locally",
      "",
      `workerd CPU per request (all workers of the path): mesh ${fmt(m("mesh", "cpu"), 1)} µs, with tracing at 0.1 ${fmt(m("tracing", "cpu"), 1)} µs ` +
        `(×${fmt(m("tracing", "cpu") / m("mesh", "cpu"), 3)}; target ≤ 1.10); throughput ×${fmt(m("tracing", "rps") / m("mesh", "rps"), 3)}; ` +
        `the collector got ${exports} exports, ${(exportedBytes / 1024).toFixed(0)} KiB`,
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
        cpu_us_per_request: Number(fmt(m("mesh", "cpu"), 1)),
        cpu_us_per_request_tracing: Number(fmt(m("tracing", "cpu"), 1)),
        tracing_cpu_ratio: Number(fmt(m("tracing", "cpu") / m("mesh", "cpu"), 3)),
        tracing_rps_ratio: Number(fmt(m("tracing", "rps") / m("mesh", "rps"), 3)),
        tracing_p50_ms: Number(fmt(m("tracing", "p50"), 3)),
        tracing_exports: exports,
        tapped_p50_ms: Number(fmt(t("p50"), 3)),
        tapped_rps_ratio_to_untapped: Number(fmt(t("rps") / m("mesh", "rps"), 3)),
        auth_p50_ms: Number(fmt(m("auth", "p50"), 3)),
        auth_rps: Math.round(m("auth", "rps")),
        auth_p50_ratio_to_mesh: Number(fmt(m("auth", "p50") / m("mesh", "p50"), 3)),
        auth_rps_ratio_to_mesh: Number(fmt(m("auth", "rps") / m("mesh", "rps"), 3)),
      }),
    );
  } finally {
    await routers.stop();
  }
} finally {
  jwksServer.closeAllConnections();
  jwksServer.close();
  await control.stop();
  await rm(dir, { recursive: true, force: true });
}
