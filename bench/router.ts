/**
 * `npm run bench:router`: what two router hops cost, in workerd. The same client app calls the
 * same no-op app either through the mesh (app → router a → router b → app) or over a direct
 * service binding (app → app), or through two plain forwarding workers (the floor cost of two
 * extra binding hops, with no mesh logic); all are driven over HTTP from Node, interleaved, in
 * the same run. Prints p50/p99 latency and requests per second of each, the added latency and
 * the throughput ratio; the last line is JSON. A fourth mode, `mesh+auth`, takes the mesh path
 * to a service whose router verifies an end-user JWT (RS256, its JWKS fetched once from a
 * loopback server and then cached) under a claims-based ALLOW: its ratio to `mesh` is what
 * end-user authentication costs.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startControl } from "../workers/control/local.ts";
import { startRouters } from "../workers/router/local.ts";
import { freePort } from "../workers/local.ts";
import { createServer } from "node:http";
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
    ],
  });
  const secrets: Record<string, string> = {};
  for (const service of ["a", "b", "b2"]) secrets[service] = await control.workerSecret(service);
  const port = await freePort();
  const routers = await startRouters({
    control: new URL(control.url).host,
    trustDomain: "weft.bench",
    persistDir: dir,
    routers: [
      { service: "a", secret: secrets.a!, app: { worker: "bench-client" } },
      { service: "b", secret: secrets.b!, app: { worker: "bench-upstream" } },
      { service: "b2", secret: secrets.b2!, app: { worker: "bench-upstream" } },
    ],
    apps: [
      { name: "bench-client", entry: "bench/router-client.ts", mesh: "a", services: { DIRECT: "bench-upstream", RELAY: "relay-a" }, port },
      { name: "relay-a", entry: "bench/router-relay.ts", services: { NEXT: "relay-b" } },
      { name: "relay-b", entry: "bench/router-relay.ts", services: { NEXT: "bench-upstream" } },
      { name: "bench-upstream", entry: "bench/router-upstream.ts" },
    ],
  });
  const base = `http://127.0.0.1:${port}`;
  const modes = { mesh: `${base}/mesh`, direct: `${base}/direct`, relay: `${base}/relay`, auth: `${base}/mesh-auth` } as const;
  try {
    // Warm up: tokens, config, JIT, connections.
    for (const url of Object.values(modes)) for (let i = 0; i < 300; i++) await once(url);
    const rows: Record<keyof typeof modes, { p50: number[]; p99: number[]; rps: number[] }> = {
      mesh: { p50: [], p99: [], rps: [] },
      direct: { p50: [], p99: [], rps: [] },
      relay: { p50: [], p99: [], rps: [] },
      auth: { p50: [], p99: [], rps: [] },
    };
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which mode goes first, so drift on a shared machine hits both alike.
      const orders = [["mesh", "auth", "direct", "relay"], ["auth", "direct", "relay", "mesh"], ["direct", "relay", "mesh", "auth"], ["relay", "mesh", "auth", "direct"]] as const;
      const order = orders[round % orders.length]!;
      for (const mode of order) {
        const { p50, p99 } = await latencies(modes[mode]);
        rows[mode].p50.push(p50);
        rows[mode].p99.push(p99);
      }
      for (const mode of order) rows[mode].rps.push(await throughput(modes[mode]));
    }
    const m = (mode: keyof typeof modes, key: "p50" | "p99" | "rps") => median(rows[mode][key]);
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
      `app → router → router+JWT → app    ${fmt(m("auth", "p50")).padStart(6)}   ${fmt(m("auth", "p99")).padStart(6)}   ${fmt(m("auth", "rps"), 0).padStart(5)}`,
      `end-user auth vs mesh (ratio)      ×${fmt(m("auth", "p50") / m("mesh", "p50"))}    ×${fmt(m("auth", "p99") / m("mesh", "p99"))}   ×${fmt(m("auth", "rps") / m("mesh", "rps"))}`,
      "",
      "target: with an end-user auth rule on (warm key cache), within 10 % of the mesh's figures",
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
