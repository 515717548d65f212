/**
 * Balancer benchmark: what each algorithm does to latency and success when one endpoint of
 * five goes bad. A discrete-event simulation on a virtual clock, in process, through the real
 * `balance()` and `createEndpointSet()` (failure accrual on, Linkerd's defaults).
 *
 * The model, fixed before any result was seen:
 * - open loop: requests arrive as a Poisson process at half the healthy cluster's capacity,
 *   whatever the answers, for 30 virtual seconds (every request counts, warm-up included);
 * - each endpoint is a server with 4 workers and a FIFO queue; service times are lognormal
 *   (median 20 ms, σ 0.5, so p99 ≈ 64 ms); the network adds 0.5 ms each way;
 * - scenarios: all healthy (the baseline); one endpoint 10× slower (every service time × 10,
 *   so it also has a tenth of the capacity); one endpoint failing (answers 503 in 1 ms).
 *
 * Latency is from sending the request to its response headers, over every request
 * (failures too). Each run is repeated over 3 seeds and the medians are printed; the ratio
 * is the scenario's p99 over the same algorithm's all-healthy p99.
 * Target: p2c-ewma's ratio ≤ 1.5 with one endpoint of five 10× slower.
 *
 * Run: sh scripts/node.sh node bench/balancer.ts
 */
import { balance, createEndpointSet, type Algorithm } from "../src/core/balance/index.ts";
import type { Clock } from "../src/core/clock.ts";
import type { Fetch } from "../src/core/fetch.ts";
import { seededRandom } from "../src/testing/index.ts";
import { virtualClock } from "./virtual-clock.ts";

const ENDPOINTS = 5;
const WORKERS = 4;
const MEDIAN_MS = 20;
const SIGMA = 0.5;
const NETWORK_MS = 0.5;
const UTILIZATION = 0.5;
const SECONDS = 30;
const SLOW_FACTOR = 10;
const SEEDS = [1, 2, 3];
const ALGORITHMS: Algorithm[] = ["p2c-ewma", "round-robin", "random"];
type Scenario = "healthy" | "one 10x slower" | "one failing";
const SCENARIOS: Scenario[] = ["healthy", "one 10x slower", "one failing"];

// Mean of a lognormal = median · e^(σ²/2); capacity = workers ÷ mean service time.
const MEAN_SERVICE_MS = MEDIAN_MS * Math.exp((SIGMA * SIGMA) / 2);
const RATE_PER_MS = (UTILIZATION * ENDPOINTS * WORKERS) / MEAN_SERVICE_MS;

/** A standard normal draw (Box–Muller). */
function normal(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

const OK = new Response(null, { status: 200 });
const UNAVAILABLE = new Response(null, { status: 503 });

/** An endpoint: `workers` at a time, the rest wait in order; answers after network + queue + service. */
function server(clock: Clock, random: () => number, options: { slowdown: number; failing: boolean; served: () => void }): Fetch {
  let busy = 0;
  const queue: (() => void)[] = [];
  const serviceTime = () => MEDIAN_MS * Math.exp(SIGMA * normal(random)) * options.slowdown;
  return () =>
    new Promise<Response>((resolve) => {
      options.served();
      const reply = (response: Response) => clock.setTimeout(() => resolve(response), NETWORK_MS);
      clock.setTimeout(() => {
        if (options.failing) return reply(UNAVAILABLE);
        const start = () => {
          busy++;
          clock.setTimeout(() => {
            busy--;
            queue.shift()?.();
            reply(OK);
          }, serviceTime());
        };
        if (busy < WORKERS) start();
        else queue.push(start);
      }, NETWORK_MS);
    });
}

interface Run {
  p50: number;
  p99: number;
  success: number;
  /** Share of requests sent to the bad endpoint (endpoint 0). */
  badShare: number;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

async function simulate(algorithm: Algorithm, scenario: Scenario, seed: number): Promise<Run> {
  const clock = virtualClock();
  const arrivals = seededRandom(seed);
  const served = new Array<number>(ENDPOINTS).fill(0);
  const endpoints = Array.from({ length: ENDPOINTS }, (_, i) => ({
    id: `e${i}`,
    fetch: server(clock, seededRandom(seed * 1_000 + i), {
      slowdown: i === 0 && scenario === "one 10x slower" ? SLOW_FACTOR : 1,
      failing: i === 0 && scenario === "one failing",
      served: () => served[i]!++,
    }),
  }));
  const set = createEndpointSet(endpoints, { failureAccrual: { clock, random: seededRandom(seed * 1_000 + 500) } });
  const fetch = balance(set, { algorithm, clock, random: seededRandom(seed * 1_000 + 900) });

  const request = new Request("http://orders/items");
  const latencies: number[] = [];
  let ok = 0;
  const send = async () => {
    const start = clock.now();
    try {
      const response = await fetch(request);
      if (response.status < 500) ok++;
    } catch {
      // A mesh error (no-endpoints) is a failed request like a 5xx.
    }
    latencies.push(clock.now() - start);
  };
  const end = SECONDS * 1_000;
  const arrive = () => {
    void send();
    const gap = -Math.log(1 - arrivals()) / RATE_PER_MS;
    if (clock.now() + gap < end) clock.setTimeout(arrive, gap);
  };
  clock.setTimeout(arrive, 0);
  await clock.drain();

  const sorted = Float64Array.from(latencies).sort();
  return {
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    success: ok / latencies.length,
    badShare: served[0]! / latencies.length,
  };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[(sorted.length - 1) >> 1]!;
};

const started = performance.now();
const results = new Map<string, Run>();
for (const scenario of SCENARIOS) {
  for (const algorithm of ALGORITHMS) {
    const runs: Run[] = [];
    for (const seed of SEEDS) runs.push(await simulate(algorithm, scenario, seed));
    results.set(`${scenario}/${algorithm}`, {
      p50: median(runs.map((r) => r.p50)),
      p99: median(runs.map((r) => r.p99)),
      success: median(runs.map((r) => r.success)),
      badShare: median(runs.map((r) => r.badShare)),
    });
  }
}
const elapsed = (performance.now() - started) / 1_000;

const ratio = (scenario: Scenario, algorithm: Algorithm) => results.get(`${scenario}/${algorithm}`)!.p99 / results.get(`healthy/${algorithm}`)!.p99;
const round = (n: number, digits = 2) => Number(n.toFixed(digits));

console.log(
  `balancer: ${ENDPOINTS} endpoints × ${WORKERS} workers, lognormal service (median ${MEDIAN_MS} ms, σ ${SIGMA}), ` +
    `Poisson arrivals at ${Math.round(RATE_PER_MS * 1_000)}/s (${UTILIZATION * 100}% of healthy capacity), ${SECONDS} virtual s, ` +
    `medians of ${SEEDS.length} seeds, ${elapsed.toFixed(1)} s wall`,
);
console.log("");
const header = ["scenario", "algorithm", "p50 ms", "p99 ms", "success", "to bad endpoint", "p99 ÷ healthy p99"];
const rows = SCENARIOS.flatMap((scenario) =>
  ALGORITHMS.map((algorithm) => {
    const run = results.get(`${scenario}/${algorithm}`)!;
    return [
      scenario,
      algorithm,
      run.p50.toFixed(1),
      run.p99.toFixed(1),
      `${(run.success * 100).toFixed(2)}%`,
      scenario === "healthy" ? "-" : `${(run.badShare * 100).toFixed(2)}%`,
      scenario === "healthy" ? "1.00 (baseline)" : ratio(scenario, algorithm).toFixed(2),
    ];
  }),
);
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
console.log(line(header));
console.log(widths.map((w) => "-".repeat(w)).join("  "));
for (const row of rows) console.log(line(row));
console.log("");
console.log(
  "note: round-robin and random send the slow endpoint a fifth of the traffic at a tenth of its capacity (5× overload); " +
    "its queue grows for the whole run, so their p99 grows with the run's length.",
);
const p2c = ratio("one 10x slower", "p2c-ewma");
console.log(`target: p2c-ewma p99 within 1.5× of all-healthy with one endpoint of five 10× slower: ${p2c <= 1.5 ? "met" : "MISSED"} (${p2c.toFixed(2)}×)`);
console.log(
  JSON.stringify({
    bench: "balancer",
    p2c_ewma_p99_ratio: round(p2c),
    round_robin_p99_ratio: round(ratio("one 10x slower", "round-robin")),
    random_p99_ratio: round(ratio("one 10x slower", "random")),
    healthy_p99_ms: Object.fromEntries(ALGORITHMS.map((a) => [a, round(results.get(`healthy/${a}`)!.p99, 1)])),
    failing_success: Object.fromEntries(ALGORITHMS.map((a) => [a, round(results.get(`one failing/${a}`)!.success, 4)])),
  }),
);
