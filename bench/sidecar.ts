/**
 * bench:sidecar — what the Node sidecar pair costs a call, measured with a load generator
 * that is not ours (wrk) against one upstream (an nginx answering a fixed body), three ways in
 * the same run: directly, through Weft's outbound and inbound sidecars (identity, policy,
 * metrics, balancing: the whole stack), through a second Weft pair with tracing on
 * (`parentbased_traceidratio` at 0.1, spans exported over OTLP to a collector in the bench
 * process that accepts and discards them), and through two chained nginx reverse proxies. The
 * Weft and nginx pairs run twice: in plain HTTP between their two halves (the Weft pair with
 * `WEFT_MTLS=off`, identity by token), and with mutual TLS 1.3 between them (the Weft pair as
 * it ships; the nginx pair with `proxy_ssl_certificate` and `ssl_verify_client on`, keep-alive
 * and session reuse to its upstream). Handshakes per second: new TLS 1.3 connections with a
 * client certificate, one after another from four clients, against Weft's 4143 and the TLS
 * nginx. The traced, tapped and end-user pairs below run in plain HTTP, against the plain pair.
 *
 * Figures: throughput (closed loop, 32 connections), the proxies' CPU time per request
 * (utime + stime from /proc/<pid>/stat over the run, divided by the requests: the steadiest
 * figure on a shared machine), p50/p99 latency at about 1,000 requests per second, each
 * sidecar's peak RSS (VmHWM) and peak private memory (RssAnon, sampled every 100 ms while
 * measuring), and the plain Weft pair's GC pauses while measuring (V8's `--trace-gc` lines:
 * scavenges and mark-compacts, p50 and p99), with those during its paced run apart, since they
 * are what its p99 latency meets. Throughput rounds alternate between the paths and the
 * medians are reported. A fourth path is the Weft pair again while a `weft tap` session
 * (issue 14) samples its traffic at the default 100 calls a second: what tapping costs; the
 * plain Weft path is the pair with no tap, whose figures must not move from before taps.
 * Two more paths: `weft+auth` is the Weft pair to a service whose inbound
 * sidecar also verifies an end-user JWT (RS256, JWKS fetched once from a loopback server, then
 * cached) under an ALLOW that wants both the workload identity and the end user's claims;
 * `weft+token` sends the same requests, token included, to the service without the rule, so
 * `weft+auth` against `weft+token` is what end-user authentication costs, and `weft+token`
 * against `weft pair` what the token's 600-byte header costs on its own.
 *
 * wrk 4 has no fixed-rate mode (that is wrk2's `-R`): the latency runs pace wrk with its Lua
 * `delay()` hook, 10 connections each waiting 10 ms between requests, which offers a little
 * under 1,000 requests per second (each connection also waits for its response). They run in
 * BENCH_ROUNDS interleaved rounds too, and the medians of their p50 and p99 are reported: one
 * 4 s run's p99 (its 40 slowest calls) moved by several ms between runs on the shared machine.
 *
 * Needs `wrk` and `nginx` (Debian: `apt-get install -y wrk nginx`). BENCH_SECONDS sets the
 * length of each run (default 4), BENCH_ROUNDS the throughput rounds (default 3), BENCH_WARMUP
 * the seconds of load on the Weft pair before any measurement (default 10), BENCH_PROFILE a
 * folder where each sidecar writes a V8 CPU profile of the whole run, BENCH_NODE_FLAGS the
 * sidecars' V8 flags in place of the image's (`sidecar/node-flags.ts`), BENCH_ENV their extra environment
 * (`NAME=value ...`) in place of the image's (`SIDECAR_ENV`).
 *
 * Traffic tools (issue 16): the same pair, paced at ~1,000 rps, on three routes of the same
 * upstream, rounds interleaved: no filter (the baseline), a RequestMirror of every call to a
 * healthy mirror (the nginx upstream), and one to a mirror that accepts connections and never
 * answers. The p99 of each against the baseline's, medians over BENCH_TRAFFIC_ROUNDS (default 3).
 *
 * BENCH_AB_ENV="NAME=value ...", BENCH_AB_FLAGS="--flag ..." and BENCH_AB_ENTRY=<file>, any of
 * them, turn the traced pair into an A/B pair: it runs without tracing, with that environment,
 * those V8 flags and that bundle of the sidecar (in place of the one built from the tree;
 * BENCH_AB_ENTRY= with nothing after it keeps the tree's, an A/A run), against the plain
 * pair as the baseline (its rows and ratios are then the tracing rows'). Read A/B results
 * against an A/A run: the two pairs' figures differ by a few percent with the same settings.
 *
 * BENCH_LOOP_PROBE=1 loads `bench/loop-probe.ts` into the plain pair's two sidecars and into one
 * that idles meanwhile (the `weft+auth` path's server): once a second it reports how long each
 * event loop stood still and how much of that it spent on the CPU (its own work: GC, a burst of
 * requests) rather than waiting to be scheduled. The bench prints those figures for the pair
 * during its paced run, and for the idle sidecar then and during the nginx pair's paced run:
 * where the p99 comes from. The probe's timer costs each of them some CPU, so a probed run's
 * latency figures are not the ones to quote.
 *
 * BENCH_PATHS="weft,nginx" measures only the paths named (from `traced`, `tapped`, `token`,
 * `auth`, `weftTls`, `nginxTls`, `mirror`; `direct`, `weft` and `nginx` always run): a quicker
 * run when working on one figure. The figures of the paths left out print as NaN / null.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createServer } from "node:http";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createServer as createTcpServer, type Socket } from "node:net";
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import { connect as tlsConnect } from "node:tls";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { request } from "undici";
import { CA_ALGORITHM, createCsr, generateAuthority, generateWorkloadKey } from "../src/identity/ca.ts";
import { bundleSidecar } from "../sidecar/bundle.ts";
import { pem } from "../sidecar/pem.ts";
import { SIDECAR_ENV, SIDECAR_NODE_FLAGS } from "../sidecar/node-flags.ts";
import { startControl } from "../workers/control/local.ts";
import { ADMIN, TRUST_DOMAIN, admin, createCluster, freePort } from "../tests/sidecar/pods.ts";

const ROOT = resolve(import.meta.dirname, "..");
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** Load on the Weft pair before measuring: its CPU per request settles after ~10 s (see the warm-up below). */
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP ?? 10);
const HOST = "127.0.0.1";
/** BENCH_PROFILE=<dir>: the sidecars write V8 CPU profiles there (open in Chrome DevTools). */
const PROFILE_DIR = process.env.BENCH_PROFILE ? resolve(process.env.BENCH_PROFILE) : undefined;
/** BENCH_NODE_FLAGS="--flag ...": the sidecars' V8 flags instead of the image's (to tune them). */
const NODE_FLAGS = process.env.BENCH_NODE_FLAGS !== undefined ? process.env.BENCH_NODE_FLAGS.split(/\s+/).filter(Boolean) : SIDECAR_NODE_FLAGS;
/** An environment written `NAME=value ...` (BENCH_ENV, BENCH_AB_ENV). */
const envOf = (text: string): Record<string, string> =>
  Object.fromEntries(text.split(/\s+/).filter(Boolean).map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]));
/** BENCH_ENV="NAME=value ...": the sidecars' extra environment instead of the image's (`SIDECAR_ENV`), to tune it. */
const EXTRA_ENV: Record<string, string> = process.env.BENCH_ENV !== undefined ? envOf(process.env.BENCH_ENV) : { ...SIDECAR_ENV };
/** The upstream's answer: a small JSON body, as an API would send. */
const ALL_PATHS = ["direct", "weft", "nginx", "traced", "tapped", "token", "auth", "weftTls", "nginxTls", "mirror"];
/** The variables that make a run an A/B run, and those of them set. */
const AB_VARS = ["BENCH_AB_ENV", "BENCH_AB_FLAGS", "BENCH_AB_ENTRY"].filter((name) => process.env[name] !== undefined);
/** An A/B run (any of them set): the traced pair runs as the A/B pair. */
const AB_MODE = AB_VARS.length > 0;
/** The paths measured (BENCH_PATHS, comma-separated); the direct, Weft and nginx paths always. */
const ONLY = new Set(process.env.BENCH_PATHS ? ["direct", "weft", "nginx", ...process.env.BENCH_PATHS.split(",").map((name) => name.trim())] : ALL_PATHS);
for (const name of ONLY) if (!ALL_PATHS.includes(name)) throw new Error(`BENCH_PATHS: no path ${name} (paths: ${ALL_PATHS.join(", ")})`);
const BODY = '{"id":42,"status":"ok","items":[1,2,3],"note":"a fixed answer from the bench upstream"}';

function have(tool: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${tool}`]).status === 0;
}

if (!have("wrk") || !have("nginx")) {
  console.error("bench:sidecar needs wrk and nginx on PATH. On Debian or Ubuntu, as root: apt-get install -y wrk nginx");
  process.exit(1);
}

const dir = mkdtempSync(join(tmpdir(), "weft-bench-sidecar-"));
const children: ChildProcess[] = [];
let stopControl: (() => Promise<void>) | undefined;

async function cleanup() {
  if (PROFILE_DIR) {
    // Profiles are written when a process exits on its own: SIGTERM drains and exits.
    const exits = children.filter((child) => child.exitCode === null).map((child) => new Promise((done) => child.once("exit", done)));
    for (const child of children) if (child.exitCode === null) child.kill("SIGTERM");
    await Promise.race([Promise.all(exits), new Promise((done) => setTimeout(done, 15_000))]);
  }
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
  await stopControl?.().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
}
process.on("SIGINT", () => void cleanup().then(() => process.exit(130)));

/** Starts one single-process nginx (no master, one worker) with `server` blocks. */
function nginx(name: string, servers: string, upstreams = ""): ChildProcess {
  const conf = join(dir, `${name}.conf`);
  writeFileSync(
    conf,
    `daemon off;
master_process off;
worker_processes 1;
pid ${join(dir, `${name}.pid`)};
error_log ${join(dir, `${name}.error.log`)} error;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  ${upstreams}
  ${servers}
}
`,
  );
  const child = spawn("nginx", ["-c", conf, "-p", dir], { stdio: "ignore" });
  children.push(child);
  return child;
}

async function waitFor(url: string, headers: Record<string, string> = {}, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      // undici's request, not fetch: fetch does not let the Host header be set.
      const response = await request(url, { headers });
      await response.body.dump();
      if (response.statusCode === 200) return;
    } catch {
      // not up yet
    }
    if (Date.now() > until) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** CPU time (utime + stime) of `pids`, in microseconds. */
function cpuMicros(pids: number[]): number {
  const tick = 1e6 / 100; // USER_HZ is 100 on Linux
  let total = 0;
  for (const pid of pids) {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    total += (Number(fields[11]) + Number(fields[12])) * tick;
  }
  return total;
}

/** Peak resident set (VmHWM) of `pid`, in MB. */
function peakRssMb(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) / 1024 : NaN;
}

/** Private (anonymous) resident memory of `pid` now, in MB: RSS less the shared, file-backed pages of the binary. */
function privateMb(pid: number): number {
  const match = /RssAnon:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) / 1024 : NaN;
}

/** BENCH_LOOP_PROBE=1: each sidecar runs `bench/loop-probe.ts`, which reports its event loop's stalls once a second. */
const LOOP_PROBE = process.env.BENCH_LOOP_PROBE === "1";
/** One second of a sidecar's loop-stall probe while measuring: the stalls' count, wall time and on-CPU time (ms), and the run under way. */
interface LoopStalls {
  pid: number;
  windowMs: number;
  gaps: number;
  wallMs: number;
  cpuMs: number;
  phase: string;
}
const loopLog: LoopStalls[] = [];
/** The sidecars the probe runs in: the plain pair, and one that is idle during its paced run (the reference). */
const PROBED = new Set(["bench-client", "bench-upstream", "bench-upstream-auth"]);

/** BENCH_GC_LOG=<file>: the sidecars' `--trace-gc` lines while measuring are appended there, each after its pid. */
const GC_LOG = process.env.BENCH_GC_LOG ? resolve(process.env.BENCH_GC_LOG) : undefined;
/** One GC pause of a sidecar while measuring: its pid, kind, length (ms), and the run under way then. */
interface GcPause {
  pid: number;
  kind: "scavenge" | "markCompact";
  ms: number;
  phase: string;
}
/** The sidecars' GC pauses from `--trace-gc`, recorded only while `gcRecording`; `gcPhase` names the run under way. */
const gcLog: GcPause[] = [];
let gcRecording = false;
let gcPhase = "";

/**
 * Reads a child's `--trace-gc` lines, e.g. `[1:0x5a] 1204 ms: Scavenge 5.2 (7.6) -> 4.3 (8.4) MB,
 * pooled: 0 MB, 0.63 / 0.00 ms ...`: the pause is the figure before the slash.
 */
function traceGc(child: ChildProcess): void {
  let partial = "";
  child.stdout!.setEncoding("utf8").on("data", (text: string) => {
    const lines = (partial + text).split("\n");
    partial = lines.pop()!;
    if (!gcRecording) return;
    if (GC_LOG !== undefined) appendFileSync(GC_LOG, lines.map((line) => `${child.pid} ${line}\n`).join(""));
    for (const line of lines) {
      if (line.startsWith("weft-loop-probe ")) {
        const seen = JSON.parse(line.slice("weft-loop-probe ".length)) as Omit<LoopStalls, "pid" | "phase">;
        loopLog.push({ pid: child.pid!, ...seen, phase: gcPhase });
        continue;
      }
      const match = /ms: (Scavenge|Mark-Compact|Mark-sweep|Minor Mark-Sweep)\b.*? MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ [\d.]+ ms/.exec(line);
      if (match) gcLog.push({ pid: child.pid!, kind: match[1] === "Scavenge" || match[1] === "Minor Mark-Sweep" ? "scavenge" : "markCompact", ms: Number(match[2]), phase: gcPhase });
    }
  });
}

/** The `q` quantile of `values` (nearest rank), or 0 when there are none. */
function quantile(values: number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

interface WrkResult {
  rps: number;
  requests: number;
  p50: number;
  p99: number;
  errors: number;
}

const toMs = (text: string): number => {
  const match = /^([\d.]+)(us|ms|s)$/.exec(text.trim());
  if (!match) return NaN;
  return Number(match[1]) * (match[2] === "us" ? 0.001 : match[2] === "s" ? 1000 : 1);
};

/** A sidecar's latency histogram as its /metrics has it: cumulative counts by `le` (seconds), all series summed. */
async function latencyBuckets(adminUrl: string): Promise<Map<number, number>> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const buckets = new Map<number, number>();
  for (const match of text.matchAll(/^weft_response_latency_seconds_bucket\{[^}]*le="([^"]+)"[^}]*\} (\d+)/gm)) {
    const le = match[1] === "+Inf" ? Infinity : Number(match[1]);
    buckets.set(le, (buckets.get(le) ?? 0) + Number(match[2]));
  }
  return buckets;
}

/** The `q` quantile's bucket bound (ms) of what a histogram counted between `before` and `after`. */
function bucketQuantileMs(before: Map<number, number>, after: Map<number, number>, q: number): number {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  for (const le of bounds) if ((after.get(le) ?? 0) - (before.get(le) ?? 0) >= q * total) return le * 1000;
  return NaN;
}

/** Runs wrk against `url` (with `Host: host`), paced when `paced`. */
function wrk(url: string, host: string | undefined, seconds: number, paced: boolean, headers: string[] = []): Promise<WrkResult> {
  const args = ["-t1", paced ? "-c10" : "-c32", `-d${seconds}s`, "--latency"];
  if (host) args.push("-H", `Host: ${host}`);
  for (const header of headers) args.push("-H", header);
  if (paced) {
    const script = join(dir, "pace.lua");
    writeFileSync(script, "function delay()\n  return 10\nend\n");
    args.push("-s", script);
  }
  args.push(url);
  return new Promise((resolveRun, reject) => {
    const child = spawn("wrk", args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (t: string) => (out += t));
    child.on("error", reject);
    child.on("exit", () => {
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
      const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
      const p50 = toMs(/\s50%\s+(\S+)/.exec(out)?.[1] ?? "");
      const p99 = toMs(/\s99%\s+(\S+)/.exec(out)?.[1] ?? "");
      const errors = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) + Number(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)?.slice(1).reduce((a, b) => a + Number(b), 0) ?? 0);
      if (!Number.isFinite(rps) || !Number.isFinite(requests)) reject(new Error(`could not read wrk's output:\n${out}`));
      else resolveRun({ rps, requests, p50, p99, errors });
    });
  });
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

/** PEM of a PKCS #8 private key. */
async function keyPem(key: CryptoKey): Promise<string> {
  return pem("PRIVATE KEY", (await crypto.subtle.exportKey("pkcs8", key)) as ArrayBuffer);
}

/** A certificate for the nginx TLS pair, from its own CA: a DNS name (nginx checks names) and both EKUs. */
async function nginxCert(ca: { issuer: string; issuerKey: JsonWebKey }, name: string): Promise<{ cert: string; key: string }> {
  const keys = await generateWorkloadKey();
  const issuer = new x509.X509Certificate(ca.issuer);
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: Date.now().toString(16) + name.length,
    subject: `CN=${name}`,
    issuer: issuer.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 24 * 3600_000),
    signingKey: await crypto.subtle.importKey("jwk", ca.issuerKey, CA_ALGORITHM, false, ["sign"]),
    publicKey: keys.publicKey,
    signingAlgorithm: CA_ALGORITHM,
    extensions: [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: "dns", value: name }]),
    ],
  });
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  writeFileSync(certFile, `${leaf.toString("pem").trim()}\n${ca.issuer}`);
  writeFileSync(keyFile, await keyPem(keys.privateKey));
  return { cert: certFile, key: keyFile };
}

/**
 * New TLS 1.3 connections with a client certificate against `port`, one after another from
 * each of `clients` loops, for `seconds`: completed handshakes per second. No session resumption.
 */
async function handshakes(host: string, port: number, tls: { cert: string; key: string; ca: string }, seconds: number, clients = 4): Promise<number> {
  const until = Date.now() + seconds * 1000;
  let done = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < until) {
        const ok = await new Promise<boolean>((resolveOne) => {
          const socket = tlsConnect({ host, port, ...tls, minVersion: "TLSv1.3", checkServerIdentity: () => undefined }, () => {
            socket.destroy();
            resolveOne(true);
          });
          socket.once("error", () => resolveOne(false));
        });
        if (ok) done++;
        else failed++;
      }
    }),
  );
  if (failed > done) throw new Error(`handshakes to ${host}:${port} failed (${failed} of ${failed + done})`);
  return done / seconds;
}

try {
  // The upstream, and two chained nginx proxies in front of it (keep-alive to their upstreams).
  const [upstreamPort, nginxOuterPort, nginxInnerPort] = await Promise.all([freePort(HOST), freePort(HOST), freePort(HOST)]);
  nginx("upstream", `server { listen ${HOST}:${upstreamPort}; location / { default_type application/json; return 200 '${BODY}'; } }`);
  const proxyBlock = (listen: number, upstream: string) =>
    `server { listen ${HOST}:${listen}; location / { proxy_pass http://${upstream}; proxy_http_version 1.1; proxy_set_header Connection ""; } }`;
  const inner = nginx("nginx-inner", proxyBlock(nginxInnerPort, "app"), `upstream app { server ${HOST}:${upstreamPort}; keepalive 64; }`);
  const outer = nginx("nginx-outer", proxyBlock(nginxOuterPort, "inner"), `upstream inner { server ${HOST}:${nginxInnerPort}; keepalive 64; }`);
  // The same pair with mutual TLS 1.3 between its halves, under a CA of its own.
  const [tlsOuterPort, tlsInnerPort] = await Promise.all([freePort(HOST), freePort(HOST)]);
  const nginxCa = await generateAuthority("bench.test", Date.now(), Date.now());
  writeFileSync(join(dir, "nginx-ca.pem"), nginxCa.anchors[0]!);
  const innerCert = await nginxCert(nginxCa, "inner.bench");
  const outerCert = await nginxCert(nginxCa, "outer.bench");
  const tlsInner = nginx(
    "nginx-tls-inner",
    `server { listen ${HOST}:${tlsInnerPort} ssl; ssl_protocols TLSv1.3; ssl_certificate ${innerCert.cert}; ssl_certificate_key ${innerCert.key};
      ssl_client_certificate ${join(dir, "nginx-ca.pem")}; ssl_verify_client on; ssl_verify_depth 2; ssl_session_cache shared:bench:1m;
      location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; } }`,
    `upstream app { server ${HOST}:${upstreamPort}; keepalive 64; }`,
  );
  const tlsOuter = nginx(
    "nginx-tls-outer",
    `server { listen ${HOST}:${tlsOuterPort}; location / { proxy_pass https://inner; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_ssl_protocols TLSv1.3; proxy_ssl_certificate ${outerCert.cert}; proxy_ssl_certificate_key ${outerCert.key};
      proxy_ssl_trusted_certificate ${join(dir, "nginx-ca.pem")}; proxy_ssl_verify on; proxy_ssl_verify_depth 2; proxy_ssl_name inner.bench; proxy_ssl_session_reuse on; } }`,
    `upstream inner { server ${HOST}:${tlsInnerPort}; keepalive 64; }`,
  );

  // The Weft pair: a control plane, a cluster it trusts, and two sidecars run from the bundle
  // the container image ships (sidecar/bundle.ts), with the image's heap flags.
  // Profiling keeps the bundle beside the profiles, to map their line numbers back to modules.
  const entry = await bundleSidecar(join(PROFILE_DIR ?? dir, "sidecar.mjs"));
  // A mirror that never answers: it takes connections and holds them.
  const hungSockets: Socket[] = [];
  const hung = createTcpServer((socket) => (hungSockets.push(socket), socket.on("error", () => {})));
  await new Promise<void>((done) => hung.listen(0, HOST, done));
  const hungPort = (hung.address() as { port: number }).port;
  const control = await startControl({ adminToken: ADMIN, port: 0, trustDomain: TRUST_DOMAIN });
  stopControl = control.stop;
  const cluster = await createCluster(control);
  // An end-user issuer for `weft+auth`: an RS256 key, its JWKS on a loopback server, one token.
  const ISSUER = "https://login.bench.test/";
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: "bench-1", alg: "RS256", use: "sig" }] });
  const jwksServer = createServer((_, res) => res.writeHead(200, { "content-type": "application/json" }).end(jwks));
  await new Promise<void>((done) => jwksServer.listen(0, HOST, done));
  jwksServer.unref();
  const jwksUri = `http://${HOST}:${(jwksServer.address() as { port: number }).port}/jwks.json`;
  const endUserToken = await new SignJWT({ groups: ["bench"] }).setProtectedHeader({ alg: "RS256", kid: "bench-1" }).setIssuer(ISSUER).setSubject("bench-user").setAudience("bench-upstream-auth").setIssuedAt().setExpirationTime("2h").sign(privateKey);
  const authHeaders = [`Authorization: Bearer ${endUserToken}`];
  // A pair's routes: two that mirror (the traffic tools' paths) and the default one.
  const routesOf = (prefix: string, service: string) => [
    ...(["shadow", "hung"] as const).map((to) => ({
      kind: "Route",
      name: `${prefix}-mirror-${to}`,
      service,
      matches: [{ path: { type: "PathPrefix", value: `/mirror-${to}` } }],
      backends: [{ service }],
      filters: [{ type: "RequestMirror", requestMirror: { backendRef: { service: `bench-${to}` }, percent: 100 } }],
    })),
    { kind: "Route", name: `${prefix}-default`, service, backends: [{ service }] },
  ];
  await admin(control, "POST", "/v1/apply", {
    resources: [
      { kind: "Service", name: "bench-client", defaultPolicy: "all-authenticated" },
      { kind: "Service", name: "bench-upstream", defaultPolicy: "all-authenticated" },
      { kind: "AuthorizationPolicy", name: "bench-allow", target: { service: "bench-upstream" }, action: "ALLOW", from: [{ identities: [`spiffe://${TRUST_DOMAIN}/ns/bench/sa/*`] }] },
      { kind: "Service", name: "bench-shadow", endpoints: [{ id: "shadow-0", address: `http://${HOST}:${upstreamPort}` }] },
      { kind: "Service", name: "bench-hung", endpoints: [{ id: "hung-0", address: `http://${HOST}:${hungPort}` }] },
      ...routesOf("bench", "bench-upstream"),
      // The traced (or A/B) pair: the same config under other names, routes included.
      { kind: "Service", name: "traced-client", defaultPolicy: "all-authenticated" },
      { kind: "Service", name: "traced-upstream", defaultPolicy: "all-authenticated" },
      { kind: "AuthorizationPolicy", name: "traced-allow", target: { service: "traced-upstream" }, action: "ALLOW", from: [{ identities: [`spiffe://${TRUST_DOMAIN}/ns/bench/sa/*`] }] },
      ...routesOf("traced", "traced-upstream"),
      {
        kind: "Service",
        name: "bench-upstream-auth",
        defaultPolicy: "all-authenticated",
        requestAuthentication: { jwtRules: [{ issuer: ISSUER, jwksUri, audiences: ["bench-upstream-auth"], outputClaimToHeaders: [{ header: "x-user", claim: "sub" }] }] },
      },
      {
        kind: "AuthorizationPolicy",
        name: "bench-auth-allow",
        target: { service: "bench-upstream-auth" },
        action: "ALLOW",
        from: [{ identities: [`spiffe://${TRUST_DOMAIN}/ns/bench/sa/*`], issuers: [ISSUER], claims: [{ name: "groups", values: ["bench"] }] }],
      },
      { kind: "Service", name: "bench-client-tls", defaultPolicy: "all-authenticated" },
      { kind: "Service", name: "bench-upstream-tls", defaultPolicy: "all-authenticated" },
      { kind: "AuthorizationPolicy", name: "bench-allow-tls", target: { service: "bench-upstream-tls" }, action: "ALLOW", from: [{ identities: [`spiffe://${TRUST_DOMAIN}/ns/bench/sa/*`] }] },
    ],
  });
  // The collector of the traced pair: an OTLP/HTTP endpoint that reads each export and answers
  // 200, counting spans' bytes; it runs in this process, so its CPU is not the sidecars'.
  let exportedBytes = 0;
  let exports = 0;
  const collector = createServer((req, res) => {
    req.on("data", (chunk: Buffer) => (exportedBytes += chunk.length));
    req.on("end", () => {
      exports++;
      res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
    });
  });
  const collectorPort = await freePort(HOST);
  await new Promise<void>((done) => collector.listen(collectorPort, HOST, done));
  collector.unref();
  const TRACING_ENV = { OTEL_EXPORTER_OTLP_ENDPOINT: `http://${HOST}:${collectorPort}`, OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.1" };
  const sidecar = async (service: string, ip: string, appPort: number | undefined, mtls: boolean, extra: Record<string, string> = {}, nodeFlags = NODE_FLAGS, script = entry) => {
    const token = join(dir, `${service}.token`);
    await cluster.project(token, "bench", service, `${service}-0`);
    const [outboundPort, inboundPort, adminPort] = await Promise.all([freePort(ip), freePort(ip), freePort(ip)]);
    const env: Record<string, string> = {
      ...EXTRA_ENV,
      PATH: process.env.PATH ?? "",
      WEFT_SERVICE: service,
      WEFT_CONTROL_URL: control.url,
      WEFT_TRUST_DOMAIN: TRUST_DOMAIN,
      WEFT_TOKEN_PATH: token,
      WEFT_POD_NAME: `${service}-0`,
      WEFT_POD_IP: ip,
      WEFT_OUTBOUND_LISTEN: `${ip}:${outboundPort}`,
      WEFT_INBOUND_LISTEN: `${ip}:${inboundPort}`,
      WEFT_ADMIN_LISTEN: `${ip}:${adminPort}`,
      WEFT_LOG_LEVEL: "warn",
      WEFT_MTLS: mtls ? "on" : "off",
      ...extra,
    };
    if (appPort !== undefined) Object.assign(env, { WEFT_APP_PORT: String(appPort), WEFT_APP_HOST: HOST });
    const flags = [
      ...nodeFlags,
      ...(PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=${service}.cpuprofile`] : []),
      ...(LOOP_PROBE && PROBED.has(service) ? [`--import=${join(ROOT, "bench", "loop-probe.ts")}`] : []),
    ];
    const child = spawn(process.execPath, [...flags, "--trace-gc", script], { cwd: ROOT, env, stdio: ["ignore", "pipe", "inherit"] });
    children.push(child);
    traceGc(child);
    await waitFor(`http://${ip}:${adminPort}/ready`);
    return { child, outbound: `http://${ip}:${outboundPort}/`, admin: `http://${ip}:${adminPort}`, inboundPort };
  };
  // The plaintext pair (tokens between them) and the mutual TLS pair, each its own services;
  // the traced and end-user pairs in plain HTTP, as the pair they are compared with.
  const server = await sidecar("bench-upstream", "127.0.0.3", upstreamPort, false);
  const serverAuth = await sidecar("bench-upstream-auth", "127.0.0.4", upstreamPort, false);
  const client = await sidecar("bench-client", "127.0.0.2", undefined, false);
  // Any of the three makes the traced pair the A/B pair, without tracing (BENCH_AB_ENTRY alone
  // once left tracing on in it).
  const AB_ENV = AB_MODE ? envOf(process.env.BENCH_AB_ENV ?? "") : TRACING_ENV;
  const AB_FLAGS = process.env.BENCH_AB_FLAGS !== undefined ? process.env.BENCH_AB_FLAGS.split(/\s+/).filter(Boolean) : NODE_FLAGS;
  const AB_ENTRY = process.env.BENCH_AB_ENTRY ? resolve(process.env.BENCH_AB_ENTRY) : entry;
  const tracedServer = await sidecar("traced-upstream", "127.0.0.5", upstreamPort, false, AB_ENV, AB_FLAGS, AB_ENTRY);
  const tracedClient = await sidecar("traced-client", "127.0.0.4", undefined, false, AB_ENV, AB_FLAGS, AB_ENTRY);
  const tlsServer = await sidecar("bench-upstream-tls", "127.0.0.5", upstreamPort, true);
  const tlsClient = await sidecar("bench-client-tls", "127.0.0.4", undefined, true);
  // The client sidecars must have seen the servers' endpoint registrations.
  await waitFor(client.outbound, { host: "bench-upstream" });
  await waitFor(client.outbound, { host: "bench-upstream-auth", authorization: `Bearer ${endUserToken}` });
  await waitFor(tracedClient.outbound, { host: "traced-upstream" });
  await waitFor(tlsClient.outbound, { host: "bench-upstream-tls" });
  // A mesh client certificate for the handshake rate, from the control plane's CA as a pod gets one.
  const benchKeys = await generateWorkloadKey();
  const tokenFile = join(dir, "handshake.token");
  await cluster.project(tokenFile, "bench", "bench-client-tls", "handshake-0");
  const issued = await (
    await fetch(`${control.url}/v1/identity/certificate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ csr: await createCsr({ keys: benchKeys }), serviceAccountToken: readFileSync(tokenFile, "utf8") }),
    })
  ).json() as { certificate: string; chain: string[]; trustAnchors: string[] };
  const meshTls = { cert: [issued.certificate, ...issued.chain].map((p) => `${p.trim()}\n`).join(""), key: await keyPem(benchKeys.privateKey), ca: issued.trustAnchors.join("") };
  const nginxTls = { cert: readFileSync(outerCert.cert, "utf8"), key: readFileSync(outerCert.key, "utf8"), ca: nginxCa.anchors[0]! };

  const paths = {
    direct: { url: `http://${HOST}:${upstreamPort}/`, host: undefined, pids: [] as number[] },
    weft: { url: client.outbound, host: "bench-upstream", pids: [client.child.pid!, server.child.pid!] },
    traced: { url: tracedClient.outbound, host: "traced-upstream", pids: [tracedClient.child.pid!, tracedServer.child.pid!] },
    tapped: { url: client.outbound, host: "bench-upstream", pids: [client.child.pid!, server.child.pid!] },
    auth: { url: client.outbound, host: "bench-upstream-auth", pids: [client.child.pid!, serverAuth.child.pid!], headers: authHeaders },
    // The same requests, token included, to the service without the rule: what auth is compared with.
    token: { url: client.outbound, host: "bench-upstream", pids: [client.child.pid!, server.child.pid!], headers: authHeaders },
    nginx: { url: `http://${HOST}:${nginxOuterPort}/`, host: undefined, pids: [outer.pid!, inner.pid!] },
    weftTls: { url: tlsClient.outbound, host: "bench-upstream-tls", pids: [tlsClient.child.pid!, tlsServer.child.pid!] },
    nginxTls: { url: `http://${HOST}:${tlsOuterPort}/`, host: undefined, pids: [tlsOuter.pid!, tlsInner.pid!] },
  };
  for (const path of Object.values(paths)) if (!("headers" in path)) await waitFor(path.url, path.host ? { host: path.host } : {});

  // Warm-up: JIT-compile the sidecars' hot path, let V8 size their heaps, and open every
  // pooled connection. Measured on a 2-vCPU machine, a sidecar pair's CPU per request falls for
  // its first ~10 s under load and then holds (3 s rounds after a 2 s warm-up, µs/request:
  // 917, 916, 635, 536, 582, 546, 540, 575; a naive Node pair beside it: 683, 541, 466, 424,
  // 358, 424, 381, 489), so a 2 s warm-up measured start-up, not the steady state a sidecar
  // runs in. BENCH_WARMUP sets it (seconds).
  await wrk(paths.weft.url, paths.weft.host, WARMUP_SECONDS, false);
  if (ONLY.has("traced")) await wrk(paths.traced.url, paths.traced.host, WARMUP_SECONDS, false);
  if (ONLY.has("auth")) await wrk(paths.auth.url, paths.auth.host, WARMUP_SECONDS, false, paths.auth.headers);
  if (ONLY.has("weftTls")) await wrk(paths.weftTls.url, paths.weftTls.host, WARMUP_SECONDS, false);
  await wrk(paths.nginx.url, paths.nginx.host, 1, false);
  if (ONLY.has("nginxTls")) await wrk(paths.nginxTls.url, paths.nginxTls.host, 1, false);

  // From here on: GC pauses and private memory while measuring.
  gcRecording = true;
  // The plain pair's peak private memory (the figure the light-core issue sets a target for),
  // and the mutual TLS pair's beside it.
  let peakPrivate = 0;
  let peakPrivateTls = 0;
  let peakPrivateAb = 0;
  /** The run under way when the plain pair's private memory peaked. */
  let peakPrivateDuring = "";
  let currentRun = "";
  const sampler = setInterval(() => {
    try {
      const now = Math.max(privateMb(client.child.pid!), privateMb(server.child.pid!));
      if (now > peakPrivate) peakPrivateDuring = currentRun;
      peakPrivate = Math.max(peakPrivate, now);
      peakPrivateTls = Math.max(peakPrivateTls, privateMb(tlsClient.child.pid!), privateMb(tlsServer.child.pid!));
      peakPrivateAb = Math.max(peakPrivateAb, privateMb(tracedClient.child.pid!), privateMb(tracedServer.child.pid!));
    } catch {
      // a sidecar that exited shows in the results' errors
    }
  }, 100);
  const runs: Record<keyof typeof paths, { rps: number[]; cpu: number[]; errors: number }> = {
    direct: { rps: [], cpu: [], errors: 0 },
    weft: { rps: [], cpu: [], errors: 0 },
    traced: { rps: [], cpu: [], errors: 0 },
    tapped: { rps: [], cpu: [], errors: 0 },
    nginx: { rps: [], cpu: [], errors: 0 },
    auth: { rps: [], cpu: [], errors: 0 },
    token: { rps: [], cpu: [], errors: 0 },
    weftTls: { rps: [], cpu: [], errors: 0 },
    nginxTls: { rps: [], cpu: [], errors: 0 },
  };
  // A tap session on the benched service (default 100/s), started before and ended after each
  // tapped run; the sidecars learn of it on their snapshot long-poll, so a moment's wait is enough.
  const tapOn = async () => {
    const started = await admin(control, "POST", "/v1/taps", { service: "bench-upstream" });
    await new Promise((resolve) => setTimeout(resolve, 500));
    return started.json.id as string;
  };
  const tapOff = async (id: string) => {
    await admin(control, "DELETE", `/v1/taps/${id}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  };
  const exportsBefore = exports;
  for (let i = 0; i < ROUNDS; i++) {
    // The Weft pairs swap places each round, so drift on a shared machine hits them alike.
    const order =
      i % 2 === 0
        ? (["direct", "weft", "traced", "tapped", "token", "auth", "nginx", "weftTls", "nginxTls"] as const)
        : (["direct", "auth", "token", "tapped", "traced", "weft", "nginx", "nginxTls", "weftTls"] as const);
    for (const name of order) {
      if (!ONLY.has(name)) continue;
      const path = paths[name];
      currentRun = name;
      const tap = name === "tapped" ? await tapOn() : undefined;
      const before = cpuMicros(path.pids);
      const result = await wrk(path.url, path.host, SECONDS, false, "headers" in path ? path.headers : []);
      runs[name].rps.push(result.rps);
      runs[name].cpu.push(path.pids.length ? (cpuMicros(path.pids) - before) / result.requests : 0);
      runs[name].errors += result.errors;
      if (tap !== undefined) await tapOff(tap);
    }
  }
  const notRun: WrkResult = { rps: NaN, requests: NaN, p50: NaN, p99: NaN, errors: 0 };
  const pacedRun = (name: "direct" | "weft" | "traced" | "nginx" | "auth" | "token" | "weftTls" | "nginxTls"): Promise<WrkResult> => {
    const path = paths[name];
    if (!ONLY.has(name)) return Promise.resolve(notRun);
    gcPhase = `paced ${name}`;
    currentRun = gcPhase;
    return wrk(path.url, path.host, SECONDS, true, "headers" in path ? path.headers : []).finally(() => (gcPhase = ""));
  };
  // Paced (latency) runs, rounds interleaved as the throughput rounds, medians reported. What
  // each sidecar of the plain pair saw of its paced runs: its own latency histogram (from the
  // request's arrival in the stack to the response's head), against what wrk saw end to end.
  type PacedName = "direct" | "weft" | "traced" | "nginx" | "auth" | "token" | "weftTls" | "nginxTls";
  const pacedNames: PacedName[] = ["direct", "weft", "traced", "nginx", "auth", "token", "weftTls", "nginxTls"];
  const pacedRuns = Object.fromEntries(pacedNames.map((name) => [name, [] as WrkResult[]])) as Record<PacedName, WrkResult[]>;
  const seen = { outbound: new Map<number, number>(), inbound: new Map<number, number>() };
  const addDelta = (into: Map<number, number>, before: Map<number, number>, after: Map<number, number>) => {
    for (const [le, count] of after) into.set(le, (into.get(le) ?? 0) + count - (before.get(le) ?? 0));
  };
  for (let i = 0; i < ROUNDS; i++) {
    for (const name of i % 2 === 0 ? pacedNames : [...pacedNames].reverse()) {
      if (!ONLY.has(name)) continue;
      const before = name === "weft" ? await Promise.all([latencyBuckets(client.admin), latencyBuckets(server.admin)]) : undefined;
      pacedRuns[name].push(await pacedRun(name));
      if (before !== undefined) {
        const after = await Promise.all([latencyBuckets(client.admin), latencyBuckets(server.admin)]);
        addDelta(seen.outbound, before[0], after[0]);
        addDelta(seen.inbound, before[1], after[1]);
      }
    }
  }
  const none = new Map<number, number>();
  const seenP99 = { outbound: bucketQuantileMs(none, seen.outbound, 0.99), inbound: bucketQuantileMs(none, seen.inbound, 0.99) };
  const paced = Object.fromEntries(
    pacedNames.map((name) => {
      const results = pacedRuns[name];
      if (results.length === 0) return [name, notRun];
      const sum = (pick: (result: WrkResult) => number) => results.reduce((total, result) => total + pick(result), 0);
      return [name, { rps: median(results.map((r) => r.rps)), requests: sum((r) => r.requests), p50: median(results.map((r) => r.p50)), p99: median(results.map((r) => r.p99)), errors: sum((r) => r.errors) }];
    }),
  ) as Record<PacedName, WrkResult>;
  const handshakeRate = ONLY.has("weftTls")
    ? { weft: await handshakes("127.0.0.5", tlsServer.inboundPort, meshTls, SECONDS), nginx: await handshakes(HOST, tlsInnerPort, nginxTls, SECONDS) }
    : { weft: NaN, nginx: NaN };
  const exportsWhileMeasuring = exports - exportsBefore;
  clearInterval(sampler);
  gcRecording = false;

  // Traffic tools: mirroring's cost to the primary calls, paced, rounds interleaved.
  const TRAFFIC_ROUNDS = ONLY.has("mirror") ? Number(process.env.BENCH_TRAFFIC_ROUNDS ?? 3) : 0;
  const mirrorPaths = { baseline: `${client.outbound}plain`, mirror: `${client.outbound}mirror-shadow`, "mirror-hung": `${client.outbound}mirror-hung` };
  const mirrorRuns: Record<keyof typeof mirrorPaths, { p50: number[]; p99: number[]; errors: number }> = {
    baseline: { p50: [], p99: [], errors: 0 },
    mirror: { p50: [], p99: [], errors: 0 },
    "mirror-hung": { p50: [], p99: [], errors: 0 },
  };
  for (let i = 0; i < TRAFFIC_ROUNDS; i++) {
    for (const name of Object.keys(mirrorPaths) as (keyof typeof mirrorPaths)[]) {
      const result = await wrk(mirrorPaths[name], "bench-upstream", SECONDS, true);
      mirrorRuns[name].p50.push(result.p50);
      mirrorRuns[name].p99.push(result.p99);
      mirrorRuns[name].errors += result.errors;
    }
  }
  for (const socket of hungSockets) socket.destroy();
  hung.close();
  const mirrorP99 = { baseline: median(mirrorRuns.baseline.p99), mirror: median(mirrorRuns.mirror.p99), hung: median(mirrorRuns["mirror-hung"].p99) };
  const mirrorP50 = { baseline: median(mirrorRuns.baseline.p50), mirror: median(mirrorRuns.mirror.p50), hung: median(mirrorRuns["mirror-hung"].p50) };
  const rss = Math.max(peakRssMb(client.child.pid!), peakRssMb(server.child.pid!));
  const anon = Math.max(peakPrivate, privateMb(client.child.pid!), privateMb(server.child.pid!));
  // The plain pair's pauses: all while measuring, and those during its paced (latency) run.
  const pairPids = new Set(paths.weft.pids);
  const pairPauses = gcLog.filter((pause) => pairPids.has(pause.pid));
  const gcPauses = {
    scavenge: pairPauses.filter((pause) => pause.kind === "scavenge").map((pause) => pause.ms),
    markCompact: pairPauses.filter((pause) => pause.kind === "markCompact").map((pause) => pause.ms),
  };
  const pacedPauses = pairPauses.filter((pause) => pause.phase === "paced weft");
  const pacedGc = {
    scavenges: pacedPauses.filter((pause) => pause.kind === "scavenge").length,
    markCompacts: pacedPauses.filter((pause) => pause.kind === "markCompact").length,
    total: pacedPauses.reduce((sum, pause) => sum + pause.ms, 0),
    longest: Math.max(0, ...pacedPauses.map((pause) => pause.ms)),
  };
  const allPauses = [...gcPauses.scavenge, ...gcPauses.markCompact];
  // The loop-stall probe's seconds (BENCH_LOOP_PROBE): the plain pair's during its paced run,
  // and the idle reference's in the same seconds and during the nginx pair's.
  const stalls = (phase: string, pair: boolean) => {
    const seconds = loopLog.filter((entry) => entry.phase === phase && pairPids.has(entry.pid) === pair);
    const window = seconds.reduce((sum, entry) => sum + entry.windowMs, 0);
    const wall = seconds.reduce((sum, entry) => sum + entry.wallMs, 0);
    const onCpu = seconds.reduce((sum, entry) => sum + entry.cpuMs, 0);
    return window > 0 ? { msPerSecond: (wall / window) * 1000, onCpuShare: wall > 0 ? onCpu / wall : 0, perSecond: (seconds.reduce((sum, entry) => sum + entry.gaps, 0) / window) * 1000 } : undefined;
  };
  const loopStalls = { pair: stalls("paced weft", true), idle: stalls("paced weft", false), idleNginx: stalls("paced nginx", false) };
  const nginxRss = Math.max(peakRssMb(outer.pid!), peakRssMb(inner.pid!));

  const rps = { direct: median(runs.direct.rps), weft: median(runs.weft.rps), traced: median(runs.traced.rps), nginx: median(runs.nginx.rps), auth: median(runs.auth.rps), token: median(runs.token.rps), weftTls: median(runs.weftTls.rps), nginxTls: median(runs.nginxTls.rps) };
  const cpu = { weft: median(runs.weft.cpu), traced: median(runs.traced.cpu), nginx: median(runs.nginx.cpu), tapped: median(runs.tapped.cpu), auth: median(runs.auth.cpu), token: median(runs.token.cpu), weftTls: median(runs.weftTls.cpu), nginxTls: median(runs.nginxTls.cpu) };
  const tracedDropped = Number(/weft_trace_spans_dropped_total (\d+)/.exec(await (await fetch(`${tracedClient.admin}/metrics`)).text())?.[1] ?? NaN);
  const tappedRps = median(runs.tapped.rps);
  const row = (name: string, key: "weftTls" | "nginxTls", peak: string) => [
    name, rps[key].toFixed(0), (rps[key] / rps.direct).toFixed(2), cpu[key].toFixed(1), `${paced[key].p50.toFixed(3)} ms`, `${paced[key].p99.toFixed(3)} ms`, paced[key].rps.toFixed(0), peak, String(runs[key].errors + paced[key].errors),
  ];
  const rows = [
    ["path", "rps (median)", "× direct", "CPU µs/req (pair)", "p50 @~1k rps", "p99 @~1k rps", "paced rps", "peak RSS MB", "errors"],
    ["direct", rps.direct.toFixed(0), "1.00", "-", `${paced.direct.p50.toFixed(3)} ms`, `${paced.direct.p99.toFixed(3)} ms`, paced.direct.rps.toFixed(0), "-", String(runs.direct.errors + paced.direct.errors)],
    ["weft pair", rps.weft.toFixed(0), (rps.weft / rps.direct).toFixed(2), cpu.weft.toFixed(1), `${paced.weft.p50.toFixed(3)} ms`, `${paced.weft.p99.toFixed(3)} ms`, paced.weft.rps.toFixed(0), rss.toFixed(1), String(runs.weft.errors + paced.weft.errors)],
    ["weft pair, tracing 0.1", rps.traced.toFixed(0), (rps.traced / rps.direct).toFixed(2), cpu.traced.toFixed(1), `${paced.traced.p50.toFixed(3)} ms`, `${paced.traced.p99.toFixed(3)} ms`, paced.traced.rps.toFixed(0), "-", String(runs.traced.errors + paced.traced.errors)],
    ["weft pair, tapped", tappedRps.toFixed(0), (tappedRps / rps.direct).toFixed(2), cpu.tapped.toFixed(1), "-", "-", "-", "-", String(runs.tapped.errors)],
    ["weft+token", rps.token.toFixed(0), (rps.token / rps.direct).toFixed(2), cpu.token.toFixed(1), `${paced.token.p50.toFixed(3)} ms`, `${paced.token.p99.toFixed(3)} ms`, paced.token.rps.toFixed(0), "-", String(runs.token.errors + paced.token.errors)],
    ["weft+auth", rps.auth.toFixed(0), (rps.auth / rps.direct).toFixed(2), cpu.auth.toFixed(1), `${paced.auth.p50.toFixed(3)} ms`, `${paced.auth.p99.toFixed(3)} ms`, paced.auth.rps.toFixed(0), "-", String(runs.auth.errors + paced.auth.errors)],
    ["nginx pair", rps.nginx.toFixed(0), (rps.nginx / rps.direct).toFixed(2), cpu.nginx.toFixed(1), `${paced.nginx.p50.toFixed(3)} ms`, `${paced.nginx.p99.toFixed(3)} ms`, paced.nginx.rps.toFixed(0), nginxRss.toFixed(1), String(runs.nginx.errors + paced.nginx.errors)],
    row("weft pair, mTLS", "weftTls", Math.max(peakRssMb(tlsClient.child.pid!), peakRssMb(tlsServer.child.pid!)).toFixed(1)),
    row("nginx pair, mTLS", "nginxTls", Math.max(peakRssMb(tlsOuter.pid!), peakRssMb(tlsInner.pid!)).toFixed(1)),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  console.log(`\nbench:sidecar — ${ROUNDS} throughput rounds of ${SECONDS} s (wrk -t1 -c32), then ${ROUNDS} paced rounds of ${SECONDS} s at ~1,000 rps (wrk -c10 + Lua delay 10 ms); medians of the rounds`);
  for (const row of rows) console.log(row.map((cell, c) => cell.padEnd(widths[c]!)).join("  "));
  console.log(
    `\nthe Weft pair's GC pauses while measuring: ${gcPauses.scavenge.length} scavenges, p50 ${quantile(gcPauses.scavenge, 0.5).toFixed(2)} ms, p99 ${quantile(gcPauses.scavenge, 0.99).toFixed(2)} ms; ` +
      `${gcPauses.markCompact.length} mark-compacts, p50 ${quantile(gcPauses.markCompact, 0.5).toFixed(2)} ms, p99 ${quantile(gcPauses.markCompact, 0.99).toFixed(2)} ms; ` +
      `during its paced run: ${pacedGc.scavenges} scavenges and ${pacedGc.markCompacts} mark-compacts, ${pacedGc.total.toFixed(1)} ms paused in all, the longest ${pacedGc.longest.toFixed(2)} ms; ` +
      `p99 of that run as the sidecars' own histograms saw it (bucket bounds): outbound ≤ ${seenP99.outbound} ms, inbound ≤ ${seenP99.inbound} ms (wrk: ${paced.weft.p99.toFixed(2)} ms)`,
  );
  console.log(
    `weft pair vs nginx pair: ${cpu.weft.toFixed(1)} µs CPU per request (target ≤ 250), ${(rps.weft / rps.nginx).toFixed(2)}× the throughput (target ≥ 0.3), ` +
      `+${(paced.weft.p99 - paced.direct.p99).toFixed(3)} ms p99 at ~1k rps against the nginx pair's +${(paced.nginx.p99 - paced.direct.p99).toFixed(3)} ms (target ≤ 2 ms, or within 1 ms of the nginx pair), ` +
      `${anon.toFixed(1)} MB peak private memory per sidecar (during the ${peakPrivateDuring} run; target ≤ 50; ${rss.toFixed(1)} MB peak RSS, the rest the Node binary's shared, file-backed pages)`,
  );
  const mirrorRows = [
    ["route (paced ~1k rps)", "p50 (median)", "p99 (median)", "p99 × baseline", "errors"],
    ["no filter (baseline)", `${mirrorP50.baseline.toFixed(3)} ms`, `${mirrorP99.baseline.toFixed(3)} ms`, "1.00", String(mirrorRuns.baseline.errors)],
    ["mirror 100 % (healthy)", `${mirrorP50.mirror.toFixed(3)} ms`, `${mirrorP99.mirror.toFixed(3)} ms`, (mirrorP99.mirror / mirrorP99.baseline).toFixed(2), String(mirrorRuns.mirror.errors)],
    ["mirror 100 % (hung)", `${mirrorP50.hung.toFixed(3)} ms`, `${mirrorP99.hung.toFixed(3)} ms`, (mirrorP99.hung / mirrorP99.baseline).toFixed(2), String(mirrorRuns["mirror-hung"].errors)],
  ];
  const mirrorWidths = mirrorRows[0]!.map((_, c) => Math.max(...mirrorRows.map((r) => r[c]!.length)));
  console.log(`
traffic tools — ${TRAFFIC_ROUNDS} interleaved paced rounds of ${SECONDS} s per route`);
  for (const row of mirrorRows) console.log(row.map((cell, c) => cell.padEnd(mirrorWidths[c]!)).join("  "));
  if (AB_MODE) console.log(`A/B run: the rows "weft pair, tracing 0.1" and the tracing line below are the A/B pair (${AB_VARS.map((name) => `${name}=${process.env[name]}`).join(" ")}, no tracing) against the weft pair`);
  console.log(
    `tracing at ratio 0.1 (collector present: ${exportsWhileMeasuring} exports, ${(exportedBytes / 1024).toFixed(0)} KiB in all, ${tracedDropped} spans dropped by the client sidecar): ` +
      `${(cpu.traced / cpu.weft).toFixed(3)}× the CPU per request of the same pair without (target ≤ 1.10), ${(rps.traced / rps.weft).toFixed(3)}× its throughput, ` +
      `p99 at ~1k rps ${paced.traced.p99.toFixed(3)} ms against ${paced.weft.p99.toFixed(3)} ms`,
  );
  console.log(
    `weft+auth vs weft+token (the same requests, the rule on and off; end-user JWT verified, warm key cache): ×${(rps.auth / rps.token).toFixed(2)} throughput, ` +
      `×${(cpu.auth / cpu.token).toFixed(2)} CPU per request, p50 ${paced.auth.p50.toFixed(3)} vs ${paced.token.p50.toFixed(3)} ms at ~1k rps (target: within 10 %); ` +
      `the token's header alone, weft+token vs weft: ×${(rps.token / rps.weft).toFixed(2)} throughput, ×${(cpu.token / cpu.weft).toFixed(2)} CPU`,
  );
  console.log(
    `mutual TLS: weft pair ${(rps.weftTls / rps.nginxTls).toFixed(2)}× the TLS nginx pair's throughput (plaintext ${(rps.weft / rps.nginx).toFixed(2)}×), ` +
      `+${(paced.weftTls.p99 - paced.direct.p99).toFixed(3)} ms p99 at ~1k rps against the TLS nginx pair's +${(paced.nginxTls.p99 - paced.direct.p99).toFixed(3)} ms; ` +
      `${cpu.weftTls.toFixed(1)} µs CPU per request (nginx ${cpu.nginxTls.toFixed(1)}); handshakes/s with a client certificate (4 clients, no resumption): weft 4143 ${handshakeRate.weft.toFixed(0)}, nginx ${handshakeRate.nginx.toFixed(0)}; ` +
      `${peakPrivateTls.toFixed(1)} MB peak private memory per mutual TLS sidecar`,
  );
  if (loopStalls.pair !== undefined) {
    const describe = (seen: ReturnType<typeof stalls>) =>
      seen === undefined ? "not seen" : `${seen.msPerSecond.toFixed(1)} ms a second in ${seen.perSecond.toFixed(1)} stalls, ${(seen.onCpuShare * 100).toFixed(0)} % of it on the CPU`;
    console.log(
      `\nloop stalls (BENCH_LOOP_PROBE: a 2 ms timer late by more than 2 ms; on the CPU = the loop's own work, off it = waiting to be scheduled): ` +
        `the Weft pair during its paced run ${describe(loopStalls.pair)}; an idle sidecar in the same seconds ${describe(loopStalls.idle)}; ` +
        `the same idle sidecar during the nginx pair's paced run ${describe(loopStalls.idleNginx)}`,
    );
  }
  console.log(
    JSON.stringify({
      bench: "sidecar",
      mirror_p99_ratio: round(mirrorP99.mirror / mirrorP99.baseline, 3),
      mirror_hung_p99_ratio: round(mirrorP99.hung / mirrorP99.baseline, 3),
      mirror_baseline_p99_ms: round(mirrorP99.baseline, 3),
      added_p50_ms_at_1000rps: round(paced.weft.p50 - paced.direct.p50, 3),
      added_p99_ms_at_1000rps: round(paced.weft.p99 - paced.direct.p99, 3),
      nginx_pair_added_p99_ms_at_1000rps: round(paced.nginx.p99 - paced.direct.p99, 3),
      rps_ratio_to_nginx_pair: round(rps.weft / rps.nginx, 3),
      rps_ratio_to_direct: round(rps.weft / rps.direct, 3),
      cpu_us_per_request: round(cpu.weft, 1),
      cpu_us_per_request_tracing: round(cpu.traced, 1),
      tracing_cpu_ratio: round(cpu.traced / cpu.weft, 3),
      tracing_rps_ratio: round(rps.traced / rps.weft, 3),
      tracing_added_p99_ms_at_1000rps: round(paced.traced.p99 - paced.weft.p99, 3),
      nginx_pair_cpu_us_per_request: round(cpu.nginx, 1),
      peak_rss_mb: round(rss, 1),
      peak_private_mb: round(anon, 1),
      mtls_peak_private_mb: round(peakPrivateTls, 1),
      traced_peak_private_mb: round(peakPrivateAb, 1),
      gc_pause_p50_ms: round(quantile(allPauses, 0.5), 2),
      gc_pause_p99_ms: round(quantile(allPauses, 0.99), 2),
      gc_scavenge_p99_ms: round(quantile(gcPauses.scavenge, 0.99), 2),
      gc_mark_compact_p99_ms: round(quantile(gcPauses.markCompact, 0.99), 2),
      paced_gc_pauses: pacedPauses.length,
      paced_gc_longest_ms: round(pacedGc.longest, 2),
      paced_outbound_seen_p99_ms: seenP99.outbound,
      paced_inbound_seen_p99_ms: seenP99.inbound,
      loop_stall_pair_ms_per_s: loopStalls.pair ? round(loopStalls.pair.msPerSecond, 1) : null,
      loop_stall_pair_on_cpu_share: loopStalls.pair ? round(loopStalls.pair.onCpuShare, 2) : null,
      loop_stall_idle_ms_per_s: loopStalls.idle ? round(loopStalls.idle.msPerSecond, 1) : null,
      loop_stall_idle_during_nginx_ms_per_s: loopStalls.idleNginx ? round(loopStalls.idleNginx.msPerSecond, 1) : null,
      tapped_rps_ratio_to_untapped: round(tappedRps / rps.weft, 3),
      tapped_cpu_us_per_request: round(cpu.tapped, 1),
      auth_rps_ratio_to_weft: round(rps.auth / rps.weft, 3),
      auth_cpu_ratio_to_weft: round(cpu.auth / cpu.weft, 3),
      auth_rps_ratio_to_token: round(rps.auth / rps.token, 3),
      auth_cpu_ratio_to_token: round(cpu.auth / cpu.token, 3),
      token_cpu_ratio_to_weft: round(cpu.token / cpu.weft, 3),
      auth_cpu_us_per_request: round(cpu.auth, 1),
      auth_p50_ms_at_1000rps: round(paced.auth.p50, 3),
      weft_p50_ms_at_1000rps: round(paced.weft.p50, 3),
      mtls_rps_ratio_to_nginx_mtls_pair: round(rps.weftTls / rps.nginxTls, 3),
      mtls_added_p50_ms_at_1000rps: round(paced.weftTls.p50 - paced.direct.p50, 3),
      mtls_added_p99_ms_at_1000rps: round(paced.weftTls.p99 - paced.direct.p99, 3),
      nginx_mtls_pair_added_p99_ms_at_1000rps: round(paced.nginxTls.p99 - paced.direct.p99, 3),
      mtls_cpu_us_per_request: round(cpu.weftTls, 1),
      nginx_mtls_pair_cpu_us_per_request: round(cpu.nginxTls, 1),
      mtls_handshakes_per_second: round(handshakeRate.weft, 0),
      nginx_mtls_handshakes_per_second: round(handshakeRate.nginx, 0),
    }),
  );
} finally {
  await cleanup();
}
