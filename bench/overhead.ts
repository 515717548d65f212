/**
 * Overhead benchmark: what the outbound stack costs per request over calling the upstream
 * directly. In process, with a no-op upstream (`async () => new Response("ok")`), so all that
 * is measured is the mesh's own work. The stack is the real one `createProxy` assembles:
 * route match → metrics → request deadline (a 2 s service timeout, so its timer and signal
 * are live) → retry (limit 1, Linkerd's budget) → split → peak-EWMA P2C over three endpoints
 * → failure accrual → [identity] → deadline propagation → connect. It is run without identity
 * and with it (a token source over an in-process issuer; the token is fetched once and then
 * held, so this measures the warm path every call but the first takes).
 *
 * Baselines, measured in the same run: `new Request(url)` alone (the unit the stack's cost is
 * also counted in); the bare call, the same upstream called with a fresh Request; and the bare
 * call plus one copy of the request with a signal of its own, which is the least a deadline
 * costs when it must reach the upstream as `request.signal` (the stack makes that one copy;
 * its other layers edit the copy in place). Every variant makes a fresh Request per call, as
 * an app would. Variants are interleaved (A/B/C/... then again) over several rounds, each
 * round after a warm-up, and medians are reported. Calls are sequential: µs per request is
 * the time of one call through, requests per second its inverse on one core.
 *
 * The same stack is also run on the light requests and responses the Node sidecar hands it
 * (`OwnedRequest` over a `HeaderList`, answered by a light upstream), against the bare call
 * of that light upstream: the sidecar's figure. The target (the light-core issue): the stack
 * on light objects costs at most 12 µs per request over the bare call; the Web-`Request`
 * figure stands beside it, as the router worker pays it.
 *
 * Both are also run with tracing on (`parentbased_traceidratio` at 0.1, no incoming context,
 * so each call starts a trace: ids made, the sampler asked, `traceparent` written; one in ten
 * records its outbound and try spans), the spans encoded as OTLP protobuf and handed to an
 * exporter whose collector is an in-process `fetch` that answers 200: what tracing adds to a
 * request, the encoding of its share of batches included.
 *
 * Run: sh scripts/node.sh node bench/overhead.ts [--quick]
 */
import { SnapshotSchema, type Snapshot } from "../src/core/config/index.ts";
import { OwnedRequest, type Fetch, type MeshRequest } from "../src/core/fetch.ts";
import { HeaderList, flatHeaders } from "../src/core/headers.ts";
import { createRegistry } from "../src/core/metrics/index.ts";
import { systemClock } from "../src/core/clock.ts";
import { createTracing } from "../src/core/trace/index.ts";
import { createIssuer, createTokenSource, memoryKeyStore } from "../src/identity/index.ts";
import { createProxy } from "../src/proxy/index.ts";

const QUICK = process.argv.includes("--quick");
const ROUNDS = QUICK ? 3 : 9;
const CALLS = QUICK ? 2_000 : 10_000;
const WARMUP = QUICK ? 2_000 : 10_000;
/** The light-core issue's target for the stack on the sidecar's light objects, µs over bare. */
const TARGET_US = 12;
const URL_ = "http://orders/api/items?page=2";
const SELF = "spiffe://weft.local/ns/shop/sa/web";

/** The no-op upstream: every endpoint answers at once. */
const upstream: Fetch = async () => new Response("ok");

/** The no-op upstream as the sidecar's transport answers: a light response. */
const lightUpstream: Fetch = async () => ({ status: 200, headers: new HeaderList(["content-length", "2"]), body: null });

/** A request as the sidecar's listener builds it from the wire: a few headers, no body. */
const lightRequest = () => new OwnedRequest("GET", URL_, new HeaderList(["host", "orders", "user-agent", "bench", "accept", "*/*"]), null);

const snapshot: Snapshot = SnapshotSchema.parse({
  version: 1,
  services: [
    {
      name: "orders",
      timeout: "2s",
      retry: { limit: 1, on: ["5xx", "reset"] },
      failureAccrual: {},
      endpoints: [
        { id: "o1", address: "http://127.0.0.1:9001" },
        { id: "o2", address: "http://127.0.0.1:9002" },
        { id: "o3", address: "http://127.0.0.1:9003" },
      ],
    },
  ],
  routes: [
    { name: "orders-api", service: "orders", matches: [{ path: { type: "PathPrefix", value: "/api" } }], backends: [{ service: "orders", weight: 1 }] },
    { name: "orders-rest", service: "orders", backends: [{ service: "orders", weight: 1 }] },
  ],
  policies: [],
  jwks: { keys: [] },
});

/** Spans exported by the traced variants, and the bytes of their batches. */
let exportedBytes = 0;

/** Tracing at ratio 0.1 with an in-process collector that reads each batch and answers 200. */
const tracing = () =>
  createTracing(
    { endpoint: "http://collector.invalid/v1/traces", headers: [], sampler: { parentBased: true, ratio: 0.1 }, samplerFromEnv: true, serviceName: undefined, timeoutMs: 10_000, scheduleDelayMs: 5_000, maxQueue: 2_048, maxBatch: 512 },
    {
      service: "web",
      host: "sidecar",
      clock: systemClock,
      timer: true,
      background: () => {},
      fetch: async (request) => {
        exportedBytes += (await request.arrayBuffer()).byteLength;
        return new Response(null, { status: 200 });
      },
    },
  );

async function outbound(identity: boolean, light = false, traced = false): Promise<Fetch> {
  const answer = light ? lightUpstream : upstream;
  const issuer = createIssuer({ issuer: "http://127.0.0.1:8788", trustDomain: "weft.local", keys: memoryKeyStore() });
  const tokens = identity ? createTokenSource({ fetchToken: (audience) => issuer.mint(SELF, audience) }) : undefined;
  let probe: MeshRequest | undefined;
  let probing = true;
  const proxy = createProxy({
    service: "web",
    identity: SELF,
    registry: createRegistry(),
    connect: () => (request) => {
      if (probing) probe = request;
      return answer(request);
    },
    app: answer,
    ...(tokens && { tokens }),
    ...(traced && { tracer: tracing().tracer }),
  });
  proxy.update(snapshot);
  // The first call fetches the token and builds the route stacks; it must get through with
  // the headers the stack adds, or the figures would be for some other stack.
  const first = await proxy.outbound(light ? lightRequest() : new Request(URL_));
  probing = false;
  const sent = probe?.headers;
  const complete = sent?.get("weft-attempt") === "1" && Number(sent.get("weft-timeout-ms")) > 0 && sent.has("weft-identity") === identity;
  if (first.status !== 200 || !complete) throw new Error(`the stack answered ${first.status} and sent ${JSON.stringify(sent ? flatHeaders(sent).filter((_, i) => i % 2 === 0) : [])}`);
  return proxy.outbound;
}

interface Variant {
  name: string;
  /** One call, as the benchmark loop makes it. */
  run: () => Promise<unknown> | unknown;
}

/** Wall-clock and CPU (user + system, all threads, so GC included) µs per call of `n` sequential calls. */
async function time(run: Variant["run"], n: number): Promise<{ wall: number; cpu: number }> {
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await run();
  const wall = Number(process.hrtime.bigint() - start) / 1_000 / n;
  const used = process.cpuUsage(cpu);
  return { wall, cpu: (used.user + used.system) / n };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const plain = await outbound(false);
const withIdentity = await outbound(true);
const lightPlain = await outbound(false, true);
const lightIdentity = await outbound(true, true);
const tracedPlain = await outbound(false, false, true);
const tracedLight = await outbound(false, true, true);
const variants: Variant[] = [
  { name: "new Request(url)", run: () => new Request(URL_) },
  { name: "bare call", run: () => upstream(new Request(URL_)) },
  // The least a deadline costs in a Request-based stack: one copy of the request carrying a
  // signal of its own (the signal is what makes a copy dear in Node).
  { name: "bare + 1 Request copy", run: () => upstream(new Request(new Request(URL_), { signal: new AbortController().signal })) },
  { name: "stack", run: () => plain(new Request(URL_)) },
  { name: "stack + identity", run: () => withIdentity(new Request(URL_)) },
  { name: "light: bare call", run: () => lightUpstream(lightRequest()) },
  { name: "light: stack", run: () => lightPlain(lightRequest()) },
  { name: "light: stack + identity", run: () => lightIdentity(lightRequest()) },
  { name: "stack + tracing 0.1", run: () => tracedPlain(new Request(URL_)) },
  { name: "light: stack + tracing 0.1", run: () => tracedLight(lightRequest()) },
];

for (const variant of variants) await time(variant.run, WARMUP);
const wall = new Map<string, number[]>(variants.map((v) => [v.name, []]));
const cpu = new Map<string, number[]>(variants.map((v) => [v.name, []]));
for (let round = 0; round < ROUNDS; round++) {
  // Interleaved, in a rotated order each round, so drift, GC and other load fall on every variant.
  for (let k = 0; k < variants.length; k++) {
    const variant = variants[(k + round) % variants.length]!;
    const sample = await time(variant.run, CALLS);
    wall.get(variant.name)!.push(sample.wall);
    cpu.get(variant.name)!.push(sample.cpu);
  }
}

const us = (name: string) => median(wall.get(name)!);
const cpuUs = (name: string) => median(cpu.get(name)!);
const bare = us("bare call");
const bareCpu = cpuUs("bare call");
const request = us("new Request(url)");
const rows = variants.map(({ name }) => {
  const m = us(name);
  const all = wall.get(name)!;
  return {
    variant: name,
    "µs/req": m.toFixed(2),
    "(min..max)": `${Math.min(...all).toFixed(1)}..${Math.max(...all).toFixed(1)}`,
    "req/s": Math.round(1e6 / m).toLocaleString("en-US"),
    "over bare µs": (m - bare).toFixed(2),
    "× bare": (m / bare).toFixed(2),
    "= Requests": (m / request).toFixed(1),
    "cpu µs/req": cpuUs(name).toFixed(2),
    "cpu over bare": (cpuUs(name) - bareCpu).toFixed(2),
  };
});

console.log(
  `outbound stack overhead: medians of ${ROUNDS} interleaved rounds × ${CALLS.toLocaleString("en-US")} sequential calls per variant; no-op upstream in process; node ${process.version}`,
);
console.table(rows);
const stackUs = us("stack") - bare;
const identityUs = us("stack + identity") - bare;
const lightBare = us("light: bare call");
const lightUs = us("light: stack") - lightBare;
const lightIdentityUs = us("light: stack + identity") - lightBare;
const verdict = (value: number) => (value <= TARGET_US ? `within the ${TARGET_US} µs target` : `OVER the ${TARGET_US} µs target`);
console.log(`light objects (the sidecar): stack over bare ${lightUs.toFixed(2)} µs (${verdict(lightUs)}); with identity ${lightIdentityUs.toFixed(2)} µs (${verdict(lightIdentityUs)})`);
console.log(`Web Requests (the router worker): stack over bare ${stackUs.toFixed(2)} µs; with identity ${identityUs.toFixed(2)} µs`);
console.log(
  `in CPU time (steadier when other processes share the machine): ${(cpuUs("stack") - bareCpu).toFixed(2)} µs; with identity ${(cpuUs("stack + identity") - bareCpu).toFixed(2)} µs`,
);
const tracingUs = us("stack + tracing 0.1") - us("stack");
const lightTracingUs = us("light: stack + tracing 0.1") - us("light: stack");
const lightTracingCpu = cpuUs("light: stack + tracing 0.1") - cpuUs("light: stack");
console.log(
  `tracing at 0.1 adds ${lightTracingUs.toFixed(2)} µs per request on light objects (${lightTracingCpu.toFixed(2)} µs CPU), ${tracingUs.toFixed(2)} µs on Web Requests; ` +
    `${(exportedBytes / 1024).toFixed(0)} KiB of OTLP exported in all`,
);
console.log(
  JSON.stringify({
    bench: "overhead",
    light_tracing_added_us_per_request: round2(lightTracingUs),
    light_tracing_added_cpu_us_per_request: round2(lightTracingCpu),
    tracing_added_us_per_request: round2(tracingUs),
    light_stack_us_per_request: round2(lightUs),
    light_stack_identity_us_per_request: round2(lightIdentityUs),
    light_ratio_to_bare: round2(us("light: stack") / lightBare),
    light_stack_cpu_us_per_request: round2(cpuUs("light: stack") - cpuUs("light: bare call")),
    stack_us_per_request: round2(stackUs),
    ratio_to_bare: round2(us("stack") / bare),
    stack_identity_us_per_request: round2(identityUs),
    ratio_identity_to_bare: round2(us("stack + identity") / bare),
    stack_cpu_us_per_request: round2(cpuUs("stack") - bareCpu),
    stack_identity_cpu_us_per_request: round2(cpuUs("stack + identity") - bareCpu),
    bare_us_per_request: round2(bare),
    request_construction_us: round2(request),
    stack_rps: Math.round(1e6 / us("stack")),
    bare_rps: Math.round(1e6 / bare),
    target_us: TARGET_US,
  }),
);

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}
