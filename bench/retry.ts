/**
 * Retry benchmark: what retries buy a caller and what they cost the upstream, when 10% and
 * 30% of responses fail. A simulation on a virtual clock, in process: 200 requests a second
 * for 60 virtual seconds through the real `retry()` layer to an upstream that answers 503
 * with the given probability after 10 ms. Three ways are run side by side on the same
 * traffic: no retries (the baseline), retries with no budget, and retries under Linkerd's
 * default budget (ratio 0.2, 10 per second, 10 s window). Each is run over 3 seeds and the
 * medians are printed. Success is the share of requests the caller saw succeed; extra load
 * is retries ÷ original requests. The targets: the budget holds the extra load at or under
 * 20% + the per-second minimum (10/s ÷ 200/s = 5%), and at 10% failures success is ≥ 99%.
 *
 * Run: sh scripts/node.sh node bench/retry.ts
 */
import { sleep } from "../src/core/clock.ts";
import { stack, type Fetch } from "../src/core/fetch.ts";
import { DEFAULT_RETRY_BUDGET, createRetryBudget, retry, type RetryBudget } from "../src/core/retry/index.ts";
import { seededRandom } from "../src/testing/index.ts";
import { virtualClock } from "./virtual-clock.ts";

const RPS = 200;
const SECONDS = 60;
const LATENCY_MS = 10;
const LIMIT = 2;
const SEEDS = [1, 2, 3];
const FAILURE_RATES = [0.1, 0.3];

/** A budget that never refuses: retries limited only by `limit`. */
const unlimited: RetryBudget = { deposit() {}, withdraw: () => true };

type Mode = "no retries" | "retries, no budget" | "retries, budget";

interface Result {
  success: number;
  extraLoad: number;
}

async function simulate(failureRate: number, mode: Mode, seed: number): Promise<Result> {
  const clock = virtualClock();
  const failures = seededRandom(seed);
  let tries = 0;
  const upstream: Fetch = async () => {
    tries++;
    const fails = failures() < failureRate;
    await sleep(clock, LATENCY_MS);
    return new Response(null, { status: fails ? 503 : 200 });
  };
  const layers =
    mode === "no retries"
      ? []
      : [
          retry({
            limit: LIMIT,
            on: ["5xx", "reset"],
            budget: mode === "retries, budget" ? createRetryBudget({ ...DEFAULT_RETRY_BUDGET, clock }) : unlimited,
            clock,
            random: seededRandom(seed + 1_000),
          }),
        ];
  const fetch = stack(upstream, ...layers);

  const total = RPS * SECONDS;
  let ok = 0;
  for (let i = 0; i < total; i++) {
    clock.setTimeout(() => {
      fetch(new Request("http://orders/items")).then((response) => {
        if (response.status === 200) ok++;
      });
    }, (i * 1_000) / RPS);
  }
  await clock.drain();
  return { success: ok / total, extraLoad: (tries - total) / total };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const started = performance.now();
const bound = DEFAULT_RETRY_BUDGET.ratio + DEFAULT_RETRY_BUDGET.minPerSecond / RPS;
const modes: Mode[] = ["no retries", "retries, no budget", "retries, budget"];
const results = new Map<string, Result>();
for (const rate of FAILURE_RATES) {
  for (const mode of modes) {
    const runs: Result[] = [];
    for (const seed of SEEDS) runs.push(await simulate(rate, mode, seed));
    results.set(`${rate}/${mode}`, { success: median(runs.map((r) => r.success)), extraLoad: median(runs.map((r) => r.extraLoad)) });
  }
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
console.log(`retry: ${RPS} req/s for ${SECONDS} virtual s, upstream 503s at random after ${LATENCY_MS} ms, limit ${LIMIT}, backoff 25→250 ms`);
console.log(`budget: ratio ${DEFAULT_RETRY_BUDGET.ratio}, ${DEFAULT_RETRY_BUDGET.minPerSecond}/s minimum, ${DEFAULT_RETRY_BUDGET.ttl / 1_000} s window; extra-load bound ${pct(bound)}; medians of ${SEEDS.length} seeds`);
console.log("");
console.log(["failing", "mode", "success", "vs baseline", "extra load", "within bound"].map((h, i) => (i < 2 ? h.padEnd(20) : h.padStart(14))).join(""));
for (const rate of FAILURE_RATES) {
  const baseline = results.get(`${rate}/no retries`)!;
  for (const mode of modes) {
    const r = results.get(`${rate}/${mode}`)!;
    const row = [
      pct(rate).padEnd(20),
      mode.padEnd(20),
      pct(r.success).padStart(14),
      `×${(r.success / baseline.success).toFixed(3)}`.padStart(14),
      pct(r.extraLoad).padStart(14),
      (r.extraLoad <= bound + 1e-9 ? "yes" : "no").padStart(14),
    ];
    console.log(row.join(""));
  }
}
const at10 = results.get("0.1/retries, budget")!;
const at30 = results.get("0.3/retries, budget")!;
const met = at10.success >= 0.99 && at10.extraLoad <= bound && at30.extraLoad <= bound;
console.log("");
console.log(`targets (success ≥ 99% at 10%, extra load ≤ ${pct(bound)} under the budget): ${met ? "met" : "NOT met"}; ran in ${((performance.now() - started) / 1_000).toFixed(1)} s`);
const round = (x: number) => Math.round(x * 10_000) / 10_000;
console.log(
  JSON.stringify({
    bench: "retry",
    success_at_10pct: round(at10.success),
    extra_load_at_10pct: round(at10.extraLoad),
    success_at_30pct: round(at30.success),
    extra_load_at_30pct: round(at30.extraLoad),
    baseline_success_at_10pct: round(results.get("0.1/no retries")!.success),
    baseline_success_at_30pct: round(results.get("0.3/no retries")!.success),
    unbudgeted_extra_load_at_30pct: round(results.get("0.3/retries, no budget")!.extraLoad),
    extra_load_bound: round(bound),
  }),
);
