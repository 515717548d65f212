/**
 * bench:http1 — what the sidecar's transport costs, without the mesh: a pair of chained
 * relays (load → relay → relay → upstream, all on loopback), built three ways and measured
 * in the same run, rounds interleaved:
 *
 * - `node:http` server + undici `Pool.dispatch` (the sidecar's transport before `sidecar/http1`),
 * - `node:http` server + `sidecar/http1`'s `Pool` (same handler code: the pool has undici's shape),
 * - `sidecar/http1`'s server + its `Pool`, when the server module is there.
 *
 * Figures: CPU time of the two relay processes per request (`process.cpuUsage()` over the
 * measured window, divided by the requests answered: the steadiest figure on a shared
 * machine) and requests per second, medians over the rounds, and each variant's ratio to the
 * first. The load generator is a child process of its own with BENCH_CONNECTIONS (default
 * 16) keep-alive connections in a closed loop; the upstream another, answering a fixed JSON
 * body. BENCH_SECONDS sets each run (default 3), BENCH_ROUNDS the rounds (default 5),
 * BENCH_WARMUP the seconds of load on each pair first (default 3). The last line of output
 * is one JSON object.
 */
import { fork } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createServer as createHttpServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import { connect, createServer as createNetServer } from "node:net";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { Pool as UndiciPool } from "undici";
import type { Dispatcher } from "undici";
import { Pool } from "../sidecar/http1/index.ts";
import { ResponseParser } from "../sidecar/http1/response-parser.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
/** Seconds of load on each pair before measuring (the first seconds run cold: JIT, pools). */
const WARMUP = Number(process.env.BENCH_WARMUP ?? 3);
const HOST = "127.0.0.1";
const BODY = '{"id":42,"status":"ok","items":[1,2,3],"note":"a fixed answer from the bench upstream"}';
const SERVER_MODULE = resolve(import.meta.dirname, "../sidecar/http1/server.ts");

type Variant = "node-http+undici" | "node-http+http1" | "http1+http1";
const VARIANTS: Variant[] = ["node-http+undici", "node-http+http1", ...(existsSync(SERVER_MODULE) ? (["http1+http1"] as const) : [])];

/** Hop-by-hop fields, not forwarded (RFC 9110 section 7.6.1). */
const HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"]);

function forwardable(raw: readonly (string | Buffer)[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString("latin1");
    if (!HOP.has(name.toLowerCase())) out.push(name, raw[i + 1]!.toString("latin1"));
  }
  return out;
}

/** What a relay's server side hands the client side; both servers fit it. */
interface Exchange {
  method: string;
  url: string;
  rawHeaders: string[];
  body: IncomingMessage | null;
  writeHead(status: number, headers: string[]): void;
  write(chunk: Uint8Array): boolean;
  end(): void;
  fail(): void;
  onDrain(resume: () => void): void;
}

/** One relay: a server on `port` sending each request on to `next` through the variant's client. */
async function relay(variant: Variant, port: number, next: string): Promise<void> {
  const dispatcher = variant === "node-http+undici" ? new UndiciPool(next, { keepAliveTimeout: 3_000, headersTimeout: 0, bodyTimeout: 0, connect: { noDelay: true } }) : new Pool(next);
  const forward = (x: Exchange) => {
    let resume: (() => void) | undefined;
    const handler = {
      onConnect() {},
      onHeaders(status: number, headers: readonly (string | Buffer)[], r: () => void) {
        resume = r;
        x.writeHead(status, forwardable(headers));
        return true;
      },
      onData(chunk: Buffer) {
        if (x.write(chunk)) return true;
        x.onDrain(() => resume?.());
        return false;
      },
      onComplete() {
        x.end();
      },
      onError() {
        x.fail();
      },
    };
    const options = { method: x.method, path: x.url, headers: forwardable(x.rawHeaders), body: x.body };
    if (dispatcher instanceof Pool) dispatcher.dispatch(options, handler);
    else dispatcher.dispatch(options as Dispatcher.DispatchOptions, handler as unknown as Dispatcher.DispatchHandler);
  };
  if (variant === "http1+http1") {
    const { createServer } = (await import(SERVER_MODULE)) as typeof import("../sidecar/http1/server.ts");
    const server = createServer((req, res) => {
      forward({
        method: req.method,
        url: req.target,
        rawHeaders: req.headers,
        body: null,
        writeHead: (status, headers) => res.writeHead(status, headers),
        write: (chunk) => res.write(chunk),
        end: () => res.end(),
        fail: () => res.fail(),
        onDrain: (resume) => res.onDrain(resume),
      });
    });
    await server.listen(port, HOST);
  } else {
    const server = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
      forward({
        method: req.method!,
        url: req.url!,
        rawHeaders: req.rawHeaders,
        body: req.method === "GET" || req.method === "HEAD" ? null : req,
        writeHead: (status, headers) => res.writeHead(status, headers),
        write: (chunk) => res.write(chunk),
        end: () => res.end(),
        fail: () => res.destroy(),
        onDrain: (resume) => res.once("drain", resume),
      });
    });
    server.keepAliveTimeout = 5_000;
    server.listen(port, HOST);
    await once(server, "listening");
  }
  let start = process.cpuUsage();
  process.on("message", (message: string) => {
    if (message === "start") start = process.cpuUsage();
    else if (message === "stop") {
      const used = process.cpuUsage(start);
      process.send!({ cpuMicros: used.user + used.system });
    }
  });
  process.send!("ready");
}

/** The upstream: answers every request with the same small JSON body, kept alive. */
async function upstream(port: number): Promise<void> {
  const answer = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`);
  const server = createNetServer((socket) => {
    socket.setNoDelay(true);
    let tail = "";
    socket.on("data", (chunk) => {
      const text = tail + chunk.toString("latin1");
      let count = 0;
      let at = text.indexOf("\r\n\r\n");
      let last = 0;
      while (at >= 0) {
        count++;
        last = at + 4;
        at = text.indexOf("\r\n\r\n", last);
      }
      tail = text.slice(last);
      for (let i = 0; i < count; i++) socket.write(answer);
    });
    socket.on("error", () => {});
  });
  server.listen(port, HOST);
  await once(server, "listening");
  process.send!("ready");
}

/** The load: `connections` keep-alive connections, each sending a GET as soon as the last answer ended. */
function load(port: number, seconds: number, connections: number): void {
  const request = Buffer.from(`GET /items/42 HTTP/1.1\r\nHost: orders\r\nAccept: application/json\r\n\r\n`);
  let answered = 0;
  let failed = 0;
  let running = true;
  for (let i = 0; i < connections; i++) {
    const socket = connect({ host: HOST, port, noDelay: true });
    const parser = new ResponseParser({
      onHead: (status) => {
        if (status !== 200) failed++;
      },
      onBody: () => {},
      onComplete: () => {
        answered++;
        if (!running) return socket.destroy();
        parser.expect("GET");
        socket.write(request);
      },
    });
    parser.expect("GET");
    socket.on("connect", () => socket.write(request));
    socket.on("data", (chunk) => {
      if (parser.execute(chunk) < 0) {
        failed++;
        socket.destroy();
      }
    });
    socket.on("error", () => failed++);
  }
  setTimeout(() => {
    running = false;
    process.send!({ answered, failed });
    setTimeout(() => process.exit(0), 200);
  }, seconds * 1000);
}

// ---- the parent -------------------------------------------------------------------------

async function freePort(): Promise<number> {
  const server = createNetServer();
  server.listen(0, HOST);
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return port;
}

function child(...args: string[]): ChildProcess {
  return fork(import.meta.filename, args, { stdio: ["ignore", "inherit", "inherit", "ipc"] });
}

async function ready(process: ChildProcess): Promise<void> {
  const [message] = (await once(process, "message")) as [unknown];
  if (message !== "ready") throw new Error(`unexpected ${JSON.stringify(message)}`);
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

async function main(): Promise<void> {
  const children: ChildProcess[] = [];
  const stop = () => children.forEach((c) => c.exitCode === null && c.kill("SIGKILL"));
  process.on("exit", stop);
  const upstreamPort = await freePort();
  const up = child("upstream", String(upstreamPort));
  children.push(up);
  await ready(up);

  const pairs = new Map<Variant, { port: number; relays: ChildProcess[] }>();
  for (const variant of VARIANTS) {
    const inner = await freePort();
    const outer = await freePort();
    const b = child("relay", variant, String(inner), `http://${HOST}:${upstreamPort}`);
    const a = child("relay", variant, String(outer), `http://${HOST}:${inner}`);
    children.push(a, b);
    await Promise.all([ready(a), ready(b)]);
    pairs.set(variant, { port: outer, relays: [a, b] });
  }

  const run = async (variant: Variant, seconds: number) => {
    const { port, relays } = pairs.get(variant)!;
    for (const r of relays) r.send("start");
    const gen = child("load", String(port), String(seconds), String(CONNECTIONS));
    const [result] = (await once(gen, "message")) as [{ answered: number; failed: number }];
    const cpu = await Promise.all(
      relays.map(async (r) => {
        r.send("stop");
        const [m] = (await once(r, "message")) as [{ cpuMicros: number }];
        return m.cpuMicros;
      }),
    );
    await once(gen, "exit");
    if (result.failed > 0 || result.answered === 0) throw new Error(`${variant}: ${result.failed} failed, ${result.answered} answered`);
    return { rps: result.answered / seconds, cpuPerRequest: (cpu[0]! + cpu[1]!) / result.answered };
  };

  // Warm each pair (JIT, connection pools) before measuring.
  for (const variant of VARIANTS) await run(variant, WARMUP);
  const results = new Map<Variant, { rps: number[]; cpu: number[] }>(VARIANTS.map((v) => [v, { rps: [], cpu: [] }]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
    for (const variant of order) {
      const r = await run(variant, SECONDS);
      results.get(variant)!.rps.push(r.rps);
      results.get(variant)!.cpu.push(r.cpuPerRequest);
    }
  }
  stop();

  const base = results.get(VARIANTS[0]!)!;
  const baseCpu = median(base.cpu);
  const baseRps = median(base.rps);
  console.log(`bench:http1 — relay pair, ${CONNECTIONS} connections, ${ROUNDS} rounds of ${SECONDS} s, medians (CPU of both relays per request)`);
  console.log("variant               CPU µs/req (pair)   req/s    CPU ratio  req/s ratio   CPU µs/req per round");
  const figures: Record<string, { cpuMicrosPerRequest: number; requestsPerSecond: number; cpuRatio: number; rpsRatio: number }> = {};
  for (const variant of VARIANTS) {
    const r = results.get(variant)!;
    const cpu = median(r.cpu);
    const rps = median(r.rps);
    figures[variant] = { cpuMicrosPerRequest: Math.round(cpu), requestsPerSecond: Math.round(rps), cpuRatio: +(cpu / baseCpu).toFixed(2), rpsRatio: +(rps / baseRps).toFixed(2) };
    console.log(
      `${variant.padEnd(22)}${String(Math.round(cpu)).padStart(10)}${String(Math.round(rps)).padStart(16)}${(cpu / baseCpu).toFixed(2).padStart(11)}${(rps / baseRps).toFixed(2).padStart(13)}   ${r.cpu.map((c) => Math.round(c)).join(" ")}`,
    );
  }
  console.log(JSON.stringify({ bench: "http1", connections: CONNECTIONS, rounds: ROUNDS, seconds: SECONDS, variants: figures }));
}

const [role, ...args] = process.argv.slice(2);
if (role === "relay") await relay(args[0] as Variant, Number(args[1]), args[2]!);
else if (role === "upstream") await upstream(Number(args[0]));
else if (role === "load") load(Number(args[0]), Number(args[1]), Number(args[2]));
else await main();
